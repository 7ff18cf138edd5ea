import importlib
import itertools
from types import SimpleNamespace

import pytest
import torch

from lth.config import PruneConfig, TrainConfig
from lth.masks import Mask, layer_fractions, magnitude_prune
from lth.models import build_model
from lth.levels import AUTO_CHECKPOINT_SECONDS, resume_cadence
from lth.train import ResumeCadence, Schedule, train
from conftest import DEVICES, tiny_config
from lth.data.cifar import random_crop_flip
from lth.data.loader import TensorDataset


def _ticket(config, seed=0):
    model = build_model(config.model.name, config.model.options, seed)
    torch.manual_seed(99)
    weights = {n: torch.randn_like(p) for n, p in model.named_parameters()}
    mask = magnitude_prune(Mask.ones(model), weights, layer_fractions(model, PruneConfig(0.7)), "layerwise", 0.7)
    return model, mask


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_pruned_weights_stay_exactly_zero_and_negative_survivors_still_learn(mnist1d, optimizer, device):
    config = tiny_config(**{"train.optimizer": optimizer, "train.weight_decay": "0.01"})
    model, mask = _ticket(config)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train(model, mnist1d, config.train, mask=mask, quiet=True, device=device)
    params = {n: p.detach().cpu() for n, p in model.named_parameters()}
    for name in mask:
        assert (params[name][~mask[name]] == 0).all()
        negative_survivors = mask[name] & (before[name] < 0)
        assert (params[name][negative_survivors] != before[name][negative_survivors]).float().mean() > 0.9


def test_same_seeds_give_the_same_bits_and_other_data_seed_differs(mnist1d):
    config = tiny_config()
    runs = []
    for data_seed in (0, 0, 1):
        model = build_model(config.model.name, config.model.options, seed=3)
        train(model, mnist1d, config.train, data_seed=data_seed, quiet=True)
        runs.append(model.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_the_checkpoint_at_k_holds_the_weights_after_k_steps(mnist1d):
    """Data order and lr schedule are functions of the iteration: a checkpoint taken at k holds exactly
    the weights a straight run has after k steps."""
    config = tiny_config()
    saved = {}
    model = build_model(config.model.name, config.model.options, 0)
    train(model, mnist1d, config.train, checkpoints={10: lambda it, m, o: saved.update({k: v.clone() for k, v in m.state_dict().items()})}, quiet=True)
    model_k = build_model(config.model.name, config.model.options, 0)
    train(model_k, mnist1d, config.train, stop=10, quiet=True)
    assert all(torch.equal(saved[k], v) for k, v in model_k.state_dict().items())


class Killed(Exception):
    pass


def _killed_at_37(model, data, config, mask, path, resume_every) -> None:
    """Train with a resume file until an exception stops it at iteration 37, as a kill would."""
    def kill(iteration, m, o):
        raise Killed

    with pytest.raises(Killed):
        train(model, data, config.train, mask=mask, resume_path=path, resume_every=resume_every,
              checkpoints={37: kill}, quiet=True)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])  # fp16: the gradient scaler's state is resumed too
def test_a_killed_training_resumes_to_the_same_bits(mnist1d, tmp_path, precision):
    config = tiny_config(**{"train.optimizer": "adam", "train.lr": "0.01", "train.precision": precision})
    model, mask = _ticket(config)
    reference = build_model(config.model.name, config.model.options, 0)
    expected = train(reference, mnist1d, config.train, mask=mask, quiet=True)

    path = tmp_path / "resume.pt"
    _killed_at_37(model, mnist1d, config, mask, path, 15)
    assert path.exists()
    resumed_model = build_model(config.model.name, config.model.options, 0)
    resumed = train(resumed_model, mnist1d, config.train, mask=mask, resume_path=path, resume_every=15, quiet=True)
    assert all(torch.equal(v, resumed_model.state_dict()[k]) for k, v in reference.state_dict().items())
    assert resumed.metrics == expected.metrics
    assert not path.exists()


def test_the_auto_cadence_saves_by_training_time_and_resumes_to_the_same_bits(mnist1d, tmp_path, monkeypatch):
    loop = importlib.import_module("lth.train")  # (the package's `lth.train` is the function)
    config = tiny_config(**{"train.optimizer": "adam", "train.lr": "0.01"})
    model, mask = _ticket(config)
    reference = build_model(config.model.name, config.model.options, 0)
    expected = train(reference, mnist1d, config.train, mask=mask, quiet=True)
    clock = itertools.count()  # a fake clock: one second passes at every reading
    monkeypatch.setattr(loop, "time", SimpleNamespace(monotonic=lambda: float(next(clock))))
    saved_at = []
    save = loop._save_resume
    monkeypatch.setattr(loop, "_save_resume", lambda path, m, o, s, iteration, *rest: (
        saved_at.append(iteration), save(path, m, o, s, iteration, *rest)))

    path, cadence = tmp_path / "resume.pt", ResumeCadence(seconds=10)
    _killed_at_37(model, mnist1d, config, mask, path, cadence)
    assert saved_at == [10, 20, 30]  # 10 readings (seconds) apart; each save reads the clock once more
    resumed_model = build_model(config.model.name, config.model.options, 0)
    resumed = train(resumed_model, mnist1d, config.train, mask=mask, resume_path=path, resume_every=cadence, quiet=True)
    assert all(torch.equal(v, resumed_model.state_dict()[k]) for k, v in reference.state_dict().items())
    assert resumed.metrics == expected.metrics


def test_checkpoint_every_auto_is_time_based_and_a_step_is_iterations():
    assert resume_cadence("auto", 40) == ResumeCadence(seconds=AUTO_CHECKPOINT_SECONDS)
    assert resume_cadence("2ep", 40) == ResumeCadence(iterations=80)
    assert ResumeCadence(iterations=50).due(100, 0.0) and not ResumeCadence(iterations=50).due(101, 1e9)


def test_schedule_warms_up_linearly_then_drops():
    s = Schedule.from_config(TrainConfig(lr=0.1, iterations="100it", warmup="10it", lr_drops=("50it", "1ep"), eval_every="10it"), 80)
    assert s.lr_at(0) == pytest.approx(0.01) and s.lr_at(9) == pytest.approx(0.1) and s.lr_at(49) == pytest.approx(0.1)
    assert s.lr_at(50) == pytest.approx(0.01) and s.lr_at(80) == pytest.approx(0.001)


def test_evaluations_follow_the_cadence_and_the_end(mnist1d):
    config = tiny_config(**{"train.iterations": "50it"})
    model = build_model(config.model.name, config.model.options, 0)
    result = train(model, mnist1d, config.train, start=10, quiet=True)
    assert [m["iteration"] for m in result.metrics] == [20, 40, 50]
    assert all(0.0 <= m["test_accuracy"] <= 1.0 for m in result.metrics)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_masked_and_close_to_fp32(mnist1d, precision, device):
    results = {}
    for p in ("fp32", precision):
        config = tiny_config(**{"train.precision": p, "train.iterations": "200it"})
        model, mask = _ticket(config)
        final = train(model, mnist1d, config.train, mask=mask, quiet=True, device=device).final
        results[p] = (final, {k: v.cpu() for k, v in model.state_dict().items()})
        params = {n: p.detach().cpu() for n, p in model.named_parameters()}
        assert all((params[name][~mask[name]] == 0).all() for name in mask)
        assert all(v.dtype == torch.float32 for v in model.state_dict().values())  # weights stay fp32
    (full, full_state), (mixed, mixed_state) = results["fp32"], results[precision]
    assert not all(torch.equal(full_state[k], mixed_state[k]) for k in full_state)  # autocast was on
    assert abs(full["test_accuracy"] - mixed["test_accuracy"]) < 0.05
    assert abs(full["train_loss"] - mixed["train_loss"]) < 0.1 * full["train_loss"]


@pytest.mark.slow
def test_compiled_training_matches_eager_to_float_tolerance(mnist1d):
    config = tiny_config()
    states = []
    for compile in (False, True):
        model, mask = _ticket(config)
        train(model, mnist1d, config.train, mask=mask, quiet=True, compile=compile)
        states.append(model.state_dict())
    assert all(torch.allclose(states[0][k], states[1][k], atol=1e-5) for k in states[0])


@pytest.mark.parametrize("device", DEVICES)
def test_a_batch_norm_conv_net_trains_masked_on_augmented_batches_on_the_device(device):
    """ResNet-20 on CIFAR-shaped data, crop+flip drawn on the device (channels_last on CUDA)."""
    generator = torch.Generator().manual_seed(0)
    data = TensorDataset("cifar-shaped", torch.rand(64, 3, 32, 32, generator=generator),
                         torch.randint(0, 10, (64,), generator=generator), torch.rand(32, 3, 32, 32, generator=generator),
                         torch.randint(0, 10, (32,), generator=generator), 10, augment=random_crop_flip)
    config = TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-4, batch_size=16, iterations="6it",
                         eval_every="3it")
    model = build_model("resnet20", {}, 0)
    mask = magnitude_prune(Mask.ones(model), dict(model.named_parameters()), layer_fractions(model, PruneConfig(0.5)),
                           "layerwise", 0.5)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = train(model, data, config, mask=mask, augment=True, device=device, quiet=True)
    params = {n: p.detach().cpu() for n, p in model.named_parameters()}
    assert [m["iteration"] for m in result.metrics] == [3, 6]
    for name in mask:
        assert (params[name][~mask[name]] == 0).all() and not torch.equal(params[name], before[name])
    assert all(torch.isfinite(p).all() for p in params.values())


def _dropout_net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(40, 32), torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(32, 10))


def test_a_model_with_dropout_trains_reproducibly_and_resumes_to_the_same_bits(mnist1d, tmp_path):
    """train() seeds the global generators per (data seed, iteration): dropout masks are a function
    of the step, so two runs agree bit for bit and a killed run resumes to the same bits."""
    config = tiny_config()
    callers = torch.manual_seed(123).get_state()
    runs = []
    for _ in range(2):
        model = _dropout_net()
        torch.manual_seed(7 + len(runs))  # whatever state the caller's generator is in
        result = train(model, mnist1d, config.train, quiet=True)
        runs.append((model.state_dict(), result.metrics))
    assert all(torch.equal(v, runs[1][0][k]) for k, v in runs[0][0].items()) and runs[0][1] == runs[1][1]
    model = _dropout_net()
    torch.set_rng_state(callers)
    train(model, mnist1d, config.train, quiet=True)
    assert torch.equal(torch.get_rng_state(), callers)  # the caller's generator is left as it was

    path = tmp_path / "resume.pt"
    _killed_at_37(_dropout_net(), mnist1d, config, None, path, 15)
    resumed = _dropout_net()
    result = train(resumed, mnist1d, config.train, resume_path=path, resume_every=15, quiet=True)
    assert all(torch.equal(v, resumed.state_dict()[k]) for k, v in runs[0][0].items()) and result.metrics == runs[0][1]
    other = _dropout_net()
    train(other, mnist1d, config.train, data_seed=1, quiet=True)
    assert not torch.equal(other.state_dict()["0.weight"], runs[0][0]["0.weight"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_training_replayed_as_cuda_graphs_matches_eager_and_keeps_pruned_weights_zero(mnist1d):
    config = tiny_config()
    states = []
    for compile in (False, "reduce-overhead"):
        model, mask = _ticket(config)
        result = train(model, mnist1d, config.train, mask=mask, quiet=True, compile=compile, device="cuda")
        states.append({k: v.cpu() for k, v in model.state_dict().items()})
        assert all((states[-1][name][~mask[name]] == 0).all() for name in mask)
        assert [m["iteration"] for m in result.metrics] == [20, 40, 60]
    assert all(torch.allclose(states[0][k], states[1][k], atol=1e-4) for k in states[0])
