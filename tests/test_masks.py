import torch
from torch import nn

from lth.config import PruneConfig
from lth.masks import Mask, layer_fractions, layer_kinds, magnitude_prune, random_prune


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 3)
        self.bn = nn.BatchNorm1d(4)
        self.fc1 = nn.Linear(40, 30)
        self.out = nn.Linear(30, 10)


def _weights(net, seed=0):
    torch.manual_seed(seed)
    return {n: torch.randn_like(p) for n, p in net.named_parameters()}


def test_only_conv_and_linear_weights_are_prunable():
    assert layer_kinds(Net()) == {"conv.weight": "conv", "fc1.weight": "linear", "out.weight": "linear"}


def test_layerwise_pruning_removes_exactly_the_rounded_fraction_per_layer_and_nests():
    net = Net()
    fractions = layer_fractions(net, PruneConfig(0.2, "layerwise", {"output": 0.1, "conv": 0.5}))
    assert fractions == {"conv.weight": 0.5, "fc1.weight": 0.2, "out.weight": 0.1}
    mask = Mask.ones(net)
    # round(fraction x remaining) per level, halves up: conv 12 x 0.5 -> 6, 3, 1.5 -> 2 gone, 0.5 -> 1 gone
    expected = {"conv.weight": [12, 6, 3, 1, 0, 0, 0, 0], "fc1.weight": [1200, 960, 768, 614, 491, 393, 314, 251],
                "out.weight": [300, 270, 243, 219, 197, 177, 159, 143]}
    for level in range(1, 8):
        previous = mask
        mask = magnitude_prune(mask, _weights(net, level), fractions, "layerwise", 0.2)
        for name in fractions:
            assert mask.per_layer()[name][0] == expected[name][level]
            assert not (mask[name] & ~previous[name]).any()  # pruned weights never come back


def test_layerwise_pruning_removes_the_smallest_magnitudes():
    net = Net()
    weights = _weights(net)
    mask = magnitude_prune(Mask.ones(net), weights, {"fc1.weight": 0.25}, "layerwise", 0.25)
    kept, dropped = weights["fc1.weight"].abs()[mask["fc1.weight"]], weights["fc1.weight"].abs()[~mask["fc1.weight"]]
    assert dropped.numel() == 300 and kept.min() >= dropped.max()


def test_global_pruning_uses_one_threshold_and_skips_ignored_layers():
    net = Net()
    fractions = layer_fractions(net, PruneConfig(0.3, "global", ignore=("output",)))
    weights = _weights(net)
    mask = magnitude_prune(Mask.ones(net), weights, fractions, "global", 0.3)
    pool = ["conv.weight", "fc1.weight"]
    assert sum(mask.per_layer()[n][0] for n in pool) == 848  # 1212 - round(363.6)
    assert bool(mask["out.weight"].all())
    kept = torch.cat([weights[n].abs()[mask[n]] for n in pool])
    dropped = torch.cat([weights[n].abs()[~mask[n]] for n in pool])
    assert kept.min() >= dropped.max()


def test_ties_are_broken_by_position_and_never_over_prune():
    net = Net()
    weights = {n: torch.ones_like(p) for n, p in net.named_parameters()}  # every magnitude ties
    mask = magnitude_prune(Mask.ones(net), weights, {"fc1.weight": 0.2}, "layerwise", 0.2)
    flat = mask["fc1.weight"].flatten()
    assert int((~flat).sum()) == 240 and not flat[:240].any() and flat[240:].all()


def test_random_pruning_keeps_every_layers_count_but_not_its_positions():
    net = Net()
    fractions = layer_fractions(net, PruneConfig(0.5, "layerwise"))
    ticket = magnitude_prune(Mask.ones(net), _weights(net), fractions, "layerwise", 0.5)
    shuffled = random_prune(ticket, torch.Generator().manual_seed(0))
    assert shuffled.per_layer() == ticket.per_layer()
    assert not torch.equal(shuffled["fc1.weight"], ticket["fc1.weight"])


def test_random_pruning_does_not_depend_on_the_order_of_the_layers():
    # safetensors returns a file's tensors in an order that varies between processes: a random
    # mask drawn in dict order differed between a job process and the driver
    net = Net()
    ticket = magnitude_prune(Mask.ones(net), _weights(net), layer_fractions(net, PruneConfig(0.5)), "layerwise", 0.5)
    backwards = Mask({name: ticket[name] for name in reversed(list(ticket))})
    a = random_prune(ticket, torch.Generator().manual_seed(3))
    b = random_prune(backwards, torch.Generator().manual_seed(3))
    assert all(torch.equal(a[name], b[name]) for name in ticket)


def test_mask_save_load_and_apply(tmp_path):
    net = Net()
    mask = magnitude_prune(Mask.ones(net), _weights(net), layer_fractions(net, PruneConfig(0.5)), "layerwise", 0.5)
    mask.save(tmp_path / "mask.safetensors")
    assert Mask.load(tmp_path / "mask.safetensors") == mask
    mask.apply_(net)
    for name in mask:
        assert (dict(net.named_parameters())[name][~mask[name]] == 0).all()
