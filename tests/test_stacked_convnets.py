"""Every registry network stacks: K conv-net replicas as one computation (grouped convolutions over
K x C channels, batch norm over K x C channels) train as each would alone, to float rounding.

Tolerances: a stacked and a lone run compute the same sums in another blocking (a grouped
convolution's kernel, a [K, B, in] batched matmul). In float64 that leaves ~1e-16 per operation, and
a few steps stay below 1e-12: the test of exactness. In float32 single operations differ by ~1e-7
relative; batch norm over few values divides by small deviations, and a randomly masked VGG on
random data amplifies any float difference (changing the thread count of a lone run moves its
weights by 1e-3 after 6 steps), so the float32 check uses the ResNets, where 3 steps stay below 1e-4.
Pruned weights are compared exactly: zero in every replica, at the start and the end."""
import pytest
import torch

from lth.config import TrainConfig
from lth.data.loader import TensorDataset
from lth.masks import Mask
from lth.models import build_model
from lth.replicas import replica_state, stack_masks, stack_models
from lth.connectivity import interpolation_curve
from lth.experiment import prepare
from lth.train import ResumeCadence, train, train_replicas
from conftest import tiny_config

ATOL = {torch.float64: 1e-12, torch.float32: 1e-4}
FAMILIES = {  # small widths of each family, on inputs of its shape
    "resnet20": ({"width": 4}, (3, 16, 16)),
    "vgg11": ({}, (3, 16, 16)),
    "conv2": ({"image_size": 16}, (3, 16, 16)),
    "resnet18": ({"num_classes": 10}, (3, 16, 16)),
    "mnist1d_resnet": ({"widths": [8, 16]}, (40,)),
}


def _data(shape: tuple[int, ...], seed: int = 0, dtype: torch.dtype = torch.float32) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    return TensorDataset("synthetic", torch.randn(48, *shape, generator=generator).to(dtype),
                         torch.randint(0, 10, (48,), generator=generator),
                         torch.randn(24, *shape, generator=generator).to(dtype),
                         torch.randint(0, 10, (24,), generator=generator), 10)


def _config(iterations: int = 6) -> TrainConfig:
    return TrainConfig(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=1e-4, batch_size=4,
                       iterations=f"{iterations}it", eval_every="3it")


def _masks(models) -> list[Mask]:
    """A different random half of every prunable layer per replica."""
    masks = []
    for seed, model in enumerate(models):
        generator = torch.Generator().manual_seed(100 + seed)
        ones = Mask.ones(model)
        masks.append(Mask({n: torch.rand(ones[n].shape, generator=generator) < 0.5 for n in ones}))
    return masks


def _close(a: dict, b: dict, atol: float = ATOL[torch.float32]) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k].double(), b[k].double(), atol=atol) for k in a)


CASES = [pytest.param(name, dtype, marks=[pytest.mark.slow] if name in ("vgg11", "resnet18") else [],
                      id=f"{name}-{str(dtype).removeprefix('torch.')}")
         for name in FAMILIES for dtype in (torch.float64, torch.float32)
         if dtype is torch.float64 or name in ("resnet20", "mnist1d_resnet")]


@pytest.mark.parametrize(("name", "dtype"), CASES)
def test_each_replica_of_a_stacked_convnet_trains_as_it_would_alone(name, dtype):
    options, shape = FAMILIES[name]
    data, config = _data(shape, dtype=dtype), _config(iterations=3)
    models = [build_model(name, options, seed).to(dtype) for seed in range(3)]
    masks = _masks(models)
    alone = []
    for seed, mask in enumerate(masks):
        model = build_model(name, options, seed).to(dtype)
        alone.append((train(model, data, config, mask=mask, data_seed=10 + seed, quiet=True), model))
    stacked = stack_models(models)
    results = train_replicas(stacked, data, config, [10, 11, 12], mask=stack_masks(masks), quiet=True)
    for index, (result, (lone, model)) in enumerate(zip(results, alone)):
        state = replica_state(stacked.state_dict(), index)
        assert _close(state, model.state_dict(), ATOL[dtype]), name  # weights, BN running averages, batch counts
        assert all((state[n][~masks[index][n]] == 0).all() for n in masks[index])  # pruned: exactly zero
        assert result.final["test_loss"] == pytest.approx(lone.final["test_loss"], rel=1e-4)
        assert result.final["train_loss"] == pytest.approx(lone.final["train_loss"], rel=1e-4)
    # each replica saw its own batches: replica 0 differs from replica 1 by far more than the tolerance
    first, second = replica_state(stacked.state_dict(), 0), replica_state(stacked.state_dict(), 1)
    assert not _close(first, second)


def test_a_diverged_replica_fails_alone_and_leaves_the_others_bit_for_bit():
    options, shape = FAMILIES["resnet20"]
    data, config = _data(shape), _config()
    results, states = [], []
    for blow_up in (False, True):
        models = [build_model("resnet20", options, seed) for seed in range(3)]
        if blow_up:
            with torch.no_grad():
                models[1].fc.weight.mul_(1e38)  # replica 1's logits overflow: its loss is inf/NaN
        stacked = stack_models(models)
        results.append(train_replicas(stacked, data, config, [0, 1, 2], quiet=True))
        states.append(stacked.state_dict())
    clean, broken = results
    assert broken[1].failure and "training loss became" in broken[1].failure
    assert clean[1].failure is None and broken[0].failure is None and broken[2].failure is None
    for index in (0, 2):
        assert broken[index].metrics == clean[index].metrics
        a, b = replica_state(states[0], index), replica_state(states[1], index)
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_killed_stacked_convnet_resumes_to_the_bits_of_an_uninterrupted_run(tmp_path):
    options, shape = FAMILIES["resnet20"]
    data, config = _data(shape), _config(iterations=9)

    def fresh():
        return stack_models([build_model("resnet20", options, seed) for seed in range(2)])

    whole = fresh()
    expected = train_replicas(whole, data, config, [0, 1], quiet=True)

    def kill(iteration, model, optimizer):
        raise KeyboardInterrupt

    resume = tmp_path / "resume.pt"
    with pytest.raises(KeyboardInterrupt):
        train_replicas(fresh(), data, config, [0, 1], quiet=True, resume_path=resume, resume_every=ResumeCadence(4),
                       checkpoints={6: kill})
    assert resume.exists()
    resumed = fresh()
    got = train_replicas(resumed, data, config, [0, 1], quiet=True, resume_path=resume, resume_every=ResumeCadence(4))
    assert [r.metrics for r in got] == [r.metrics for r in expected]
    assert all(torch.equal(resumed.state_dict()[k], whole.state_dict()[k]) for k in whole.state_dict())


def test_interpolation_with_recomputed_batch_norm_is_per_replica(tmp_path):
    """Stability evaluates several points of the line as one stacked network: each point's recomputed
    batch-norm statistics and errors are those of that point alone."""
    options, shape = FAMILIES["resnet20"]
    config = tiny_config(**{"model.name": "resnet20", "model.options": options, "train.batch_size": 8})
    setup = prepare(config, data=_data(shape), device="cpu")
    a = build_model("resnet20", options, 0).state_dict()
    b = build_model("resnet20", options, 1).state_dict()
    one = interpolation_curve(setup.new_model(), setup, a, b, points=4, train_examples=32, per_pass=1)
    stacked = interpolation_curve(setup.new_model(), setup, a, b, points=4, train_examples=32, per_pass=4)
    assert [p["alpha"] for p in one] == [p["alpha"] for p in stacked]
    for p, q in zip(one, stacked):
        assert p["test_error"] == pytest.approx(q["test_error"], abs=1e-9)
        assert p["train_error"] == pytest.approx(q["train_error"], abs=1e-9)
