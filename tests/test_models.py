"""The model zoo: published parameter counts, output shapes, seeded initialisation, prunable layers."""
import pytest
import torch

from lth.errors import ConfigError
from lth.masks import layer_kinds
from lth.models import MODELS, build_model, parameter_count

# name -> (parameters, prunable layers, input shape), default options (10 classes; ImageNet 1000).
ZOO = {
    # [LTH] Fig. 2 gives 4.3M / 2.4M / 1.7M. Conv-2 and Conv-4 match; Conv-6 built as Fig. 2 lists its
    # layers has 2.26M (as Ramanujan et al. 2020 list it), so [LTH]'s 1.7M cannot be matched.
    "conv2": (4_301_642, 2 + 3, (2, 3, 32, 32)),
    "conv4": (2_425_930, 4 + 3, (2, 3, 32, 32)),
    "conv6": (2_262_602, 6 + 3, (2, 3, 32, 32)),
    # open_lth models/test/test_cifar_vgg.py (conv biases + BN); [LTH] Fig. 2: VGG-19 20.0M.
    "vgg11": (9_231_114, 8 + 1, (2, 3, 32, 32)),
    "vgg16": (14_728_266, 13 + 1, (2, 3, 32, 32)),
    "vgg19": (20_040_522, 16 + 1, (2, 3, 32, 32)),
    # open_lth models/test/test_cifar_resnet.py: ResNet-20 272,474 ([LTH]/PAPERS.md: 0.27M), ResNet-110
    # 1,730,714. ResNet-56 (855,770) is the same formula; He et al. 2016 Table 6 rounds it to 0.85M.
    # Prunable: stem + 6n block convs + 2 projection shortcuts + fc.
    "resnet20": (272_474, 1 + 18 + 2 + 1, (2, 3, 32, 32)),
    "resnet56": (855_770, 1 + 54 + 2 + 1, (2, 3, 32, 32)),
    "resnet110": (1_730_714, 1 + 108 + 2 + 1, (2, 3, 32, 32)),
    # torchvision's documented counts (resnet18 / resnet50 weights tables): 11,689,512 and 25,557,032.
    "resnet18": (11_689_512, 1 + 16 + 3 + 1, (2, 3, 224, 224)),
    "resnet50": (25_557_032, 1 + 48 + 4 + 1, (1, 3, 224, 224)),
    # PAPERS.md: the 1-D ResNet of the independent MNIST-1D runs has 241K parameters.
    "mnist1d_resnet": (241_194, 1 + 12 + 2 + 1, (2, 40)),
}


@pytest.fixture(scope="module")
def models():
    return {name: build_model(name, seed=0) for name in ZOO}


def test_every_family_is_registered():
    assert set(ZOO) <= set(MODELS)


@pytest.mark.parametrize("name", ZOO)
def test_parameter_count_and_prunable_layers(models, name):
    params, prunable, _ = ZOO[name]
    model = models[name]
    assert parameter_count(model) == params
    kinds = layer_kinds(model)
    assert len(kinds) == prunable
    assert list(kinds)[-1] == ("classifier.4.weight" if name.startswith("conv") else "fc.weight")
    assert kinds[list(kinds)[-1]] == "linear"
    assert list(kinds.values()).count("linear") == (3 if name.startswith("conv") else 1)


@pytest.mark.parametrize("name", ZOO)
def test_forward_shape(models, name):
    *_, shape = ZOO[name]
    model = models[name].eval()  # eval: batch norm with its running statistics accepts batch 1
    with torch.no_grad():
        out = model(torch.randn(shape))
    assert out.shape == (shape[0], 1000 if name in ("resnet18", "resnet50") else 10)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["conv2", "vgg11", "resnet20", "mnist1d_resnet", "resnet18"])
def test_init_is_a_function_of_the_seed(name):
    model = build_model(name, seed=3)
    first, again, other = model.state_dict(), build_model(name, seed=3).state_dict(), build_model(name, seed=4).state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert all(not torch.equal(first[k], other[k]) for k in layer_kinds(model))  # every prunable layer differs


def test_initialisation_rules():
    conv = build_model("conv2")
    w = conv.features[0].weight  # Glorot normal: std sqrt(2 / (fan_in + fan_out)) = sqrt(2 / (27 + 576))
    assert w.std().item() == pytest.approx((2 / (27 + 576)) ** 0.5, rel=0.1)
    assert not conv.features[0].bias.any()
    vgg = build_model("vgg19")
    w = vgg.layers[-1].conv.weight  # Kaiming normal, fan-in: std sqrt(2 / (512 * 9))
    assert w.std().item() == pytest.approx((2 / (512 * 9)) ** 0.5, rel=0.02)
    bn = vgg.layers[-1].bn
    assert torch.equal(bn.weight, torch.ones(512)) and not bn.bias.any()
    r50 = build_model("resnet50")  # torchvision: Kaiming normal, fan-out
    assert r50.conv1.weight.std().item() == pytest.approx((2 / (64 * 49)) ** 0.5, rel=0.02)


def test_options():
    assert build_model("resnet20", {"width": 32})(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    assert parameter_count(build_model("resnet20", {"width": 32})) > 4 * 272_474 * 0.9  # ~ quadratic in width
    assert build_model("vgg11", {"num_classes": 100}).fc.out_features == 100
    assert build_model("conv2", {"in_channels": 1, "image_size": 28})(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    small = build_model("mnist1d_resnet", {"widths": [8, 16], "blocks_per_stage": 1})
    assert small(torch.randn(3, 40)).shape == (3, 10)
    assert len(layer_kinds(small)) == 1 + 4 + 1 + 1
    with pytest.raises(ConfigError):
        build_model("mnist1d_resnet", {"widths": []})
    with pytest.raises(ConfigError):
        build_model("resnet20", {"depth": 32})  # depth is fixed by the registered name
