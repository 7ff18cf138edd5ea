"""Pruning at initialization as branches of an IMP run ([PaI]): masks with exactly the ticket's count
of weights, from W_k, trained from step k; the sanity checks keep what they must; the claims."""
import json

import pytest
import torch

from conftest import tiny_config
from lth.api import run_branch
from lth.branches import branch_config
from lth.kinds import BRANCHES
from lth.cli import main
from lth.masks import Mask
from lth.report import CLAIMS_FILE, write_report
from lth.store import Store, load_tensors
from lth.options import RunOptions

LEVELS = 2


def _mask(result, level: int) -> Mask:
    return Mask.load(f"{result.run_dir}/level_{level}/mask.safetensors")


@pytest.fixture(scope="module")
def branches(tmp_path_factory, mnist1d):
    """SNIP and its three sanity checks off one IMP chain rewound to step 10, 2 levels."""
    store = tmp_path_factory.mktemp("pai")
    config = tiny_config(rewind="10it")
    found = {kind: run_branch(kind, config, LEVELS, store, options=RunOptions(quiet=True, data=mnist1d))
             for kind in ("snip", "snip+shuffle", "snip+invert", "snip+reinit", "synflow")}
    return store, config, found


def test_each_level_keeps_exactly_the_tickets_count_and_starts_at_k(branches):
    store, config, found = branches
    imp = Store(store).run(config)
    for kind, result in found.items():
        assert [row["level"] for row in result.levels] == list(range(LEVELS + 1))
        for level in range(1, LEVELS + 1):
            ticket, mask = Mask.load(imp.level_dir(level) / "mask.safetensors"), _mask(result, level)
            assert mask.remaining() == ticket.remaining() and mask.total() == ticket.total(), kind
            summary = result.levels[level]
            assert summary["kind"] == kind and summary["start_iteration"] == 10
            assert summary["weights_remaining"] == ticket.fraction_remaining()  # the same x as the ticket
    snip, ticket = _mask(found["snip"], 2), Mask.load(imp.level_dir(2) / "mask.safetensors")
    assert snip != ticket  # another criterion, ranked globally: other layers' shares
    assert snip.per_layer() != ticket.per_layer()


def test_sanity_checks_keep_what_they_must(branches):
    store, config, found = branches
    imp = Store(store).run(config)
    w_k = load_tensors(imp.level_dir(0) / "step_10it.safetensors")
    for level in range(1, LEVELS + 1):
        snip, shuffled = _mask(found["snip"], level), _mask(found["snip+shuffle"], level)
        assert shuffled.per_layer() == snip.per_layer() and shuffled != snip  # same counts, other positions
        inverted = _mask(found["snip+invert"], level)
        # more than half kept: the inverted mask prunes SNIP's top scores, so no weight is pruned by both
        assert snip.fraction_remaining() > 0.5 and inverted.remaining() == snip.remaining()
        assert sum(int((~snip[n] & ~inverted[n]).sum()) for n in snip) == 0
        assert _mask(found["snip+reinit"], level) == snip  # the mask is scored on W_k ...
        start = load_tensors(f"{found['snip+reinit'].run_dir}/level_{level}/start.safetensors")
        name = next(iter(snip))
        assert not torch.equal(start[name], w_k[name] * snip[name])  # ... the weights are new
        start = load_tensors(f"{found['snip'].run_dir}/level_{level}/start.safetensors")
        assert torch.equal(start[name], w_k[name] * snip[name])  # the method itself trains from W_k


def test_pruning_at_init_kinds_are_content_addressed_and_unknown_ones_are_refused(capsys):
    config = tiny_config()
    hashes = {branch_config(config, kind).hash() for kind in BRANCHES}
    assert len(hashes) == len(BRANCHES)
    assert {"magnitude-init", "snip", "grasp", "synflow", "grasp+shuffle", "synflow+invert"} <= set(BRANCHES)
    try:
        code = main(["branch", "snap", "--levels", "1"])
    except SystemExit as exit:  # argparse's choices
        code = exit.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "invalid choice: 'snap'" in err[-1]


def test_every_method_runs_with_ignored_layers_left_whole(tmp_path, mnist1d):
    config = tiny_config(rewind="0it", **{"prune.ignore": ["output"], "prune.layer_fractions": {}})
    for kind in ("magnitude-init", "grasp"):
        result = run_branch(kind, config, 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
        mask = _mask(result, 1)
        last = list(mask)[-1]
        assert bool(mask[last].all()), kind  # the output layer is never pruned
        ticket = Mask.load(Store(tmp_path).run(config).level_dir(1) / "mask.safetensors")
        assert mask.remaining() == ticket.remaining()


def _summary(store: Store, seed: int, kind: str, accuracies: dict[int, float]) -> None:
    from lth.store import write_json

    run = store.run(tiny_config(seed=seed, rewind="0it", kind=kind, preset="synthetic")).create()
    for level, accuracy in accuracies.items():
        write_json(run.level_dir(level) / "summary.json",
                   {"level": level, "kind": kind, "seed": seed, "weights_remaining": 0.8 ** level,
                    "test_accuracy": accuracy, "test_loss": 1.0, "train_loss": 1.0, "start_iteration": 0})


def test_claims_judge_imp_against_each_method_and_the_shuffle_check(tmp_path):
    """Tickets beat SNIP by 5 points (holds); SNIP's shuffled mask is within 0.1 point of SNIP's with
    tiny noise (equivalent within ±1 point); GraSP equals the ticket up to a large noise (undecided)."""
    store = Store(tmp_path / "store")
    noise, spread = [0.001, -0.001, 0.0005], [0.03, -0.03, 0.01]
    for seed in range(3):
        _summary(store, seed, "imp", {0: 0.70, 1: 0.72, 2: 0.74})
        _summary(store, seed, "snip", {1: 0.70, 2: 0.69 + noise[seed]})
        _summary(store, seed, "snip+shuffle", {1: 0.70, 2: 0.69 + noise[seed] + 0.001})
        _summary(store, seed, "grasp", {2: 0.74 + spread[seed]})
    (report,) = write_report(store.root, tmp_path / "report")
    found = {c["claim"]: c for c in json.loads((report / CLAIMS_FILE).read_text())["claims"]}
    assert found["ticket (rewind 0it) > snip"]["verdict"] == "holds"
    assert found["ticket (rewind 0it) > snip"]["difference"] == pytest.approx(0.05, abs=1e-3)
    assert found["snip shuffled within layers matches snip"]["verdict"] == "equivalent"
    assert found["ticket (rewind 0it) > grasp"]["verdict"] == "undecided"
    assert "ticket (rewind 0it) > synflow" not in found  # no runs, no claim
    assert "snip+shuffle" in (report / "report.md").read_text()  # a line of the figure and the table
