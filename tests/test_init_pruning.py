"""Pruning at initialization (lth.init_pruning): scores against hand computations, SynFlow's
conservation law, exact counts and ties, the sanity-check transforms, errors."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import DEVICES
from lth.errors import ConfigError
from lth.init_pruning import (GRASP_TEMPERATURE, METHODS, class_balanced_batch, prune_at_init, reinitialize,
                              score, shuffle_within_layers)
from lth.masks import Mask
from lth.models import build_model


def two_layer(seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(dtype)


def fixed_batch(dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    return torch.randn(5, 3, generator=g, dtype=dtype), torch.tensor([0, 1, 1, 0, 1])


def hand_gradient(w1, b1, w2, b2, x, y, temperature=1.0):
    """dL/dW1, dL/dW2 of mean cross-entropy(tanh(x W1' + b1) W2' + b2) / T), by the chain rule."""
    h = torch.tanh(x @ w1.T + b1)
    p = torch.softmax((h @ w2.T + b2) / temperature, dim=1)
    dz2 = (p - F.one_hot(y, 2).to(p.dtype)) / (len(y) * temperature)
    dh = dz2 @ w2
    dz1 = dh * (1 - h ** 2)
    return dz1.T @ x, dz2.T @ h


def params(net):
    return net[0].weight.detach(), net[0].bias.detach(), net[2].weight.detach(), net[2].bias.detach()


def test_snip_scores_are_abs_weight_times_hand_computed_gradient():
    net, (x, y) = two_layer(), fixed_batch()
    w1, b1, w2, b2 = params(net)
    g1, g2 = hand_gradient(w1, b1, w2, b2, x, y)
    scores = score("snip", net, (x, y))
    assert set(scores) == {"0.weight", "2.weight"}
    torch.testing.assert_close(scores["0.weight"], (w1 * g1).abs(), rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(scores["2.weight"], (w2 * g2).abs(), rtol=1e-12, atol=1e-15)
    # two batches: the gradients add up (the mask is the same; the scores double)
    doubled = score("snip", net, [(x, y), (x, y)])
    torch.testing.assert_close(doubled["0.weight"], 2 * scores["0.weight"])


def test_grasp_scores_are_minus_weight_times_hessian_gradient_product():
    net, (x, y) = two_layer(), fixed_batch()
    w1, b1, w2, b2 = params(net)
    t = GRASP_TEMPERATURE

    def loss(theta):  # the same loss as a function of the flat weights, biases held fixed
        a, b = theta[:12].view(4, 3), theta[12:].view(2, 4)
        return F.cross_entropy((torch.tanh(x @ a.T + b1) @ b.T + b2) / t, y)

    theta = torch.cat([w1.flatten(), w2.flatten()])
    g1, g2 = hand_gradient(w1, b1, w2, b2, x, y, temperature=t)
    hessian = torch.autograd.functional.hessian(loss, theta)  # the full 20 x 20 matrix
    hg = hessian @ torch.cat([g1.flatten(), g2.flatten()])
    expected = -theta * hg
    scores = score("grasp", net, (x, y))
    torch.testing.assert_close(torch.cat([scores["0.weight"].flatten(), scores["2.weight"].flatten()]), expected,
                               rtol=1e-9, atol=1e-18)
    assert expected.abs().max() > 0 and (expected > 0).any() and (expected < 0).any()  # a real test of the sign
    # GraSP removes the highest -w*Hg (Wang et al. 2020): every kept score <= every removed score
    mask = prune_at_init("grasp", net, 0.4, (x, y))
    kept = torch.cat([scores[n][mask[n]] for n in mask])
    dropped = torch.cat([scores[n][~mask[n]] for n in mask])
    assert len(kept) == 8 and kept.max() <= dropped.min()
    abs_scores = score("grasp_abs", net, (x, y))
    torch.testing.assert_close(abs_scores["2.weight"], scores["2.weight"].abs())


def test_synflow_scores_conserve_synaptic_flow_neuron_by_neuron_and_layer_by_layer():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(5, 7, bias=False), nn.ReLU(), nn.Linear(7, 6, bias=False), nn.ReLU(),
                        nn.Linear(6, 3, bias=False))
    scores = score("synflow", net, input_shape=(5,))
    s1, s2, s3 = scores["0.weight"], scores["2.weight"], scores["4.weight"]
    assert s1.dtype == torch.float64
    # into each hidden neuron == out of it (Tanaka et al. 2020, Theorem 1)
    torch.testing.assert_close(s1.sum(1), s2.sum(0), rtol=1e-12, atol=0)
    torch.testing.assert_close(s2.sum(1), s3.sum(0), rtol=1e-12, atol=0)
    # each layer's total is the synaptic flow R = 1' |W3| |W2| |W1| 1 (the network's own sign ignored)
    w = [m.weight.detach().double().abs() for m in (net[0], net[2], net[4])]
    flow = (w[2] @ w[1] @ w[0]).sum()
    for s in (s1, s2, s3):
        torch.testing.assert_close(s.sum(), flow, rtol=1e-12, atol=0)


def test_synflow_prunes_in_rounds_and_rescores_after_each():
    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4))
    # by hand: round 1 keeps round(0.5 x 80) = 40 by the dense scores, round 2 rescored with that mask keeps 20
    dense = score("synflow", net, input_shape=(6,))
    first = _top(dense, 40)
    second = _top(score("synflow", net, input_shape=(6,), mask=first), 20, alive=first)
    assert prune_at_init("synflow", net, 0.25, input_shape=(6,), rounds=2) == second
    assert prune_at_init("synflow", net, 0.25, input_shape=(6,), rounds=1) == _top(dense, 20)
    assert prune_at_init("synflow", net, 0.25, input_shape=(6,)).remaining() == 20  # the default, 100 rounds


def _top(scores, count, alive=None):
    """The `count` highest scores among the alive weights (distinct scores assumed)."""
    names = list(scores)
    alive = alive or Mask({n: torch.ones_like(s, dtype=torch.bool) for n, s in scores.items()})
    values = torch.cat([torch.where(alive[n], scores[n], -torch.inf).flatten() for n in names])
    keep = torch.zeros_like(values, dtype=torch.bool)
    keep[torch.topk(values, count).indices] = True
    out, start = {}, 0
    for n in names:
        out[n] = keep[start:start + scores[n].numel()].view_as(scores[n])
        start += scores[n].numel()
    return Mask(out)


@pytest.fixture(scope="module")
def mlp_and_batch():
    g = torch.Generator().manual_seed(0)
    return build_model("mnist1d_mlp", {"hidden": 32}, seed=0), (torch.randn(64, 40, generator=g),
                                                                torch.randint(0, 10, (64,), generator=g))


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_keeps_exactly_the_rounded_fraction(method, mlp_and_batch):
    model, batch = mlp_and_batch
    total = 40 * 32 + 32 * 32 + 32 * 10  # 2624 prunable weights
    for fraction, kept in ((1.0, 2624), (0.5, 1312), (0.2, 525), (0.05, 131), (0.0125, 33), (0.01, 26)):
        mask = prune_at_init(method, model, fraction, batch)
        assert mask.total() == total and mask.remaining() == kept, (method, fraction)
    ignored = prune_at_init(method, model, 0.1, batch, ignore=("output",))
    assert ignored["fc3.weight"].all() and ignored.remaining() == 320 + 230  # round(0.1 x 2304)
    layerwise = prune_at_init(method, model, 0.1, batch, scope="layerwise")
    assert {n: c for n, (c, _) in layerwise.per_layer().items()} == {"fc1.weight": 128, "fc2.weight": 102,
                                                                     "fc3.weight": 32}


@pytest.mark.parametrize("device", DEVICES)
def test_masks_are_deterministic_and_on_the_cpu(device, mlp_and_batch):
    model, batch = mlp_and_batch
    model = build_model("mnist1d_mlp", {"hidden": 32}, seed=0).to(device)
    for method in METHODS:
        first = prune_at_init(method, model, 0.1, batch)
        assert first == prune_at_init(method, model, 0.1, batch)
        assert all(first[n].device.type == "cpu" for n in first)


def test_ties_go_in_layer_then_row_major_order_both_ways():
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        net[0].weight.fill_(0.5)
        net[1].weight.fill_(0.5)
    mask = prune_at_init("magnitude", net, 0.5, None)  # 6 weights, keep 3: the first 3 go
    assert mask["0.weight"].tolist() == [[False, False], [False, True]] and mask["1.weight"].all()
    inverted = prune_at_init("magnitude", net, 0.5, None, invert=True)  # the same order of removal
    assert inverted == mask


def test_invert_keeps_the_complement_ordering(mlp_and_batch):
    model, batch = mlp_and_batch  # distinct scores: a quarter inverted is the complement of three quarters
    for method in METHODS:
        inverted = prune_at_init(method, model, 0.25, batch, invert=True)
        straight = prune_at_init(method, model, 0.75, batch, rounds=1)
        assert inverted.remaining() == 656
        if method != "synflow":  # iterative: inverted rounds rescore another network
            assert all(torch.equal(inverted[n], ~straight[n]) for n in inverted), method
    scores = score("snip", model, batch)
    mask = prune_at_init("snip", model, 0.25, batch, invert=True)
    kept = torch.cat([scores[n][mask[n]] for n in mask])
    dropped = torch.cat([scores[n][~mask[n]] for n in mask])
    assert kept.max() <= dropped.min()  # inverted SNIP keeps the lowest |w dL/dw|


def test_shuffle_keeps_per_layer_counts_and_moves_the_weights(mlp_and_batch):
    model, batch = mlp_and_batch
    mask = prune_at_init("snip", model, 0.1, batch)
    shuffled = shuffle_within_layers(mask, torch.Generator().manual_seed(7))
    assert shuffled.per_layer() == mask.per_layer()
    for n in mask:
        assert (shuffled[n] != mask[n]).sum() > mask.per_layer()[n][0] // 2  # most kept positions moved
    assert shuffled == shuffle_within_layers(mask, torch.Generator().manual_seed(7))
    assert shuffled != shuffle_within_layers(mask, torch.Generator().manual_seed(8))
    via_option = prune_at_init("snip", model, 0.1, batch, generator=torch.Generator().manual_seed(7), shuffle=True)
    assert via_option == shuffled
    ignored = prune_at_init("snip", model, 0.1, batch, ignore=("output",),
                            generator=torch.Generator().manual_seed(7), shuffle=True)
    assert ignored["fc3.weight"].all()


def test_reinitialize_draws_fresh_weights_under_the_same_mask(mlp_and_batch):
    model, batch = mlp_and_batch
    mask = prune_at_init("magnitude", model, 0.2, batch)
    fresh = reinitialize("mnist1d_mlp", {"hidden": 32}, 1, mask)
    other = build_model("mnist1d_mlp", {"hidden": 32}, seed=1)
    for n, p in fresh.named_parameters():
        if n in mask:
            assert torch.equal(p[mask[n]], other.get_parameter(n)[mask[n]]) and not p[~mask[n]].any()
            assert not torch.equal(p, model.get_parameter(n))


def test_the_callers_model_is_left_alone():
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    net.eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
    for method in METHODS:
        prune_at_init(method, net, 0.3, (x, y), invert=True)
        score(method, net, (x, y))
    assert not net.training and all(p.grad is None and p.requires_grad and p.dtype == torch.float32
                                    for p in net.parameters())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_class_balanced_batch_takes_the_first_examples_of_each_class():
    x, y = torch.arange(10.0).view(10, 1), torch.tensor([2, 0, 1, 0, 2, 1, 0, 1, 2, 2])
    bx, by = class_balanced_batch(x, y, 2)
    assert by.tolist() == [0, 0, 1, 1, 2, 2] and bx.flatten().tolist() == [1, 3, 2, 5, 0, 4]
    with pytest.raises(ConfigError):
        class_balanced_batch(x, y, 4)


def test_errors_say_what_to_do(mlp_and_batch):
    model, batch = mlp_and_batch
    with pytest.raises(ConfigError, match="unknown pruning-at-init method 'snipp'; known: magnitude, snip, grasp"):
        prune_at_init("snipp", model, 0.1, batch)
    for bad in (0.0, -0.2, 1.5, float("nan")):
        with pytest.raises(ConfigError, match="must be in"):
            prune_at_init("magnitude", model, bad)
    with pytest.raises(ConfigError, match="rounds to no weight"):
        prune_at_init("magnitude", model, 1e-4)
    with pytest.raises(ConfigError, match="batch=\\(inputs, labels\\)"):
        prune_at_init("grasp", model, 0.1)
    with pytest.raises(ConfigError, match="input_shape"):
        prune_at_init("synflow", model, 0.1)
    with pytest.raises(ConfigError, match="generator"):
        prune_at_init("snip", model, 0.1, batch, shuffle=True)
    with pytest.raises(ConfigError, match="unknown layer 'fc9.weight'"):
        prune_at_init("snip", model, 0.1, batch, ignore=("fc9.weight",))
    with pytest.raises(ConfigError, match="scope"):
        prune_at_init("snip", model, 0.1, batch, scope="local")
