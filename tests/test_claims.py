"""The claims check: paired intervals against hand computations, and verdicts on synthetic stores
whose answers are known by construction."""
import json
import math

import pytest

import statistics

from scipy import stats

from lth.claims import (EQUIVALENT, GENERIC_SOURCE, NONINFERIOR, Claim, ClaimSet, holm, is_near_threshold, judge,
                        mark_fragile, paired_interval, t95, text_table)
from lth.early_stop import early_stop
from lth.presets import claims_of
from lth.cli import main
from lth.report import CLAIMS_FILE, write_report
from lth.store import METRICS_FILE, Store, write_json, write_jsonl
from conftest import tiny_config

SEEDS = [0, 1, 2, 3, 4]
NOISE = [0.004, -0.003, 0.001, -0.002, 0.000]  # seed-to-seed noise, mean 0, spread 0.27 points
SPREAD = [0.030, -0.025, 0.020, -0.030, 0.005]  # a large noise: mean 0, spread 2.6 points


def test_paired_interval_matches_the_t_table_by_hand():
    mean, low, high = paired_interval([1.0, 2.0, 3.0])  # sd 1, n 3, t(2) = 4.303
    assert mean == 2.0
    assert low == pytest.approx(2 - 4.303 / math.sqrt(3), abs=1e-3) and high == pytest.approx(2 + 4.303 / math.sqrt(3), abs=1e-3)
    assert t95(4) == pytest.approx(2.776, abs=1e-3) and t95(100) == pytest.approx(1.984, abs=1e-3)
    mean, low, high = paired_interval([0.5])
    assert mean == 0.5 and math.isnan(low) and math.isnan(high)


def _t2_two_sided(t: float) -> float:
    """Two-sided p of Student's t with 2 degrees of freedom, in closed form: 1 - |t| / sqrt(2 + t^2)."""
    return 1 - abs(t) / math.sqrt(2 + t * t)


def test_directional_verdicts_from_the_t_test():
    claim = judge("a > b", "src", "here", {0: 0.70, 1: 0.71, 2: 0.73}, {0: 0.60, 1: 0.62, 2: 0.61, 9: 0.0})
    assert claim.seeds == 3 and claim.difference == pytest.approx(0.10333, abs=1e-4) and claim.verdict == "holds"
    differences = [0.10, 0.09, 0.12]  # t = mean / (sd / sqrt 3)
    t = statistics.fmean(differences) / (statistics.stdev(differences) / math.sqrt(3))
    assert claim.p == pytest.approx(_t2_two_sided(t), rel=1e-6) and claim.p < 0.05
    assert Claim.from_json(json.loads(json.dumps(claim.to_json()))) == claim
    assert "a > b" in text_table([claim]) and "+10.33 points" in text_table([claim])
    worse = judge("a > b", "", "", {0: 1.0, 1: 2.0, 2: 3.0}, {0: 3.0, 1: 4.0, 2: 6.0})  # d = -2, -2, -3
    assert worse.verdict == "contradicted"
    wide = judge("a > b", "", "", {0: 1.0, 1: 2.0, 2: 3.0})  # t = 2 sqrt 3: p = 0.074 > 0.05
    assert wide.p == pytest.approx(_t2_two_sided(2 * math.sqrt(3)), rel=1e-6) and wide.verdict == "undecided"
    assert judge("a > b", "", "", {0: 1.0}, {1: 0.0}) is None  # no seed in common: nothing to judge
    assert judge("a > b", "", "", {0: 0.5}, {0: 0.0}).verdict == "one seed"


def test_equivalence_needs_both_one_sided_tests():
    zero = {s: 0.0 for s in range(5)}
    tight = judge("a matches b", "", "", dict(zip(range(5), NOISE)), zero, 0.01, test=EQUIVALENT)
    assert tight.verdict == "equivalent"  # mean 0, spread 0.27 points: inside ±1 point
    loose = judge("a matches b", "", "", dict(zip(range(5), SPREAD)), zero, 0.01, test=EQUIVALENT)
    assert loose.verdict == "undecided"  # mean 0 too, but spread 2.6 points: the seeds cannot show ±1
    assert "undecided" != "equivalent" and loose.low < -0.01 < 0.01 < loose.high
    apart = judge("a matches b", "", "", {s: 0.05 + n for s, n in enumerate(NOISE)}, zero, 0.01, test=EQUIVALENT)
    assert apart.verdict == "not equivalent"  # 5 points apart
    # TOST by hand: both one-sided t statistics against the margins, df 4
    n = statistics.stdev(NOISE) / math.sqrt(5)
    mean = statistics.fmean(NOISE)
    assert tight.p == pytest.approx(max(stats.t.sf((mean + 0.01) / n, 4), stats.t.cdf((mean - 0.01) / n, 4)))
    noninferior = judge("a matches or beats b", "", "", {s: -0.005 + n for s, n in enumerate(NOISE)}, zero, 0.01,
                        test=NONINFERIOR)
    assert noninferior.verdict == "holds" and noninferior.tested() == "> -1.00"  # 0.5 points worse, margin 1


def test_holm_adjusts_the_family():
    def claim(p: float) -> Claim:
        return Claim("c", "", "", 0.01, 0.0, 0.02, 5, "holds", p=p, p_holm=p)

    judged = holm([claim(0.04), claim(0.01), claim(0.03), Claim("one", "", "", 0.0, math.nan, math.nan, 1, "one seed")])
    # sorted 0.01, 0.03, 0.04: x3 = 0.03, x2 = 0.06, x1 = 0.04 -> 0.06 (monotone)
    assert [c.p_holm for c in judged[:3]] == pytest.approx([0.06, 0.03, 0.06])
    assert [c.verdict for c in judged] == ["undecided", "holds", "undecided", "one seed"]


def _run(store: Store, seed: int, rewind: str, kind: str, accuracies: dict[int, float], lr: float = 0.05,
         preset: str = "synthetic") -> None:
    config = tiny_config(seed=seed, rewind=rewind, kind=kind, preset=preset).override({"train.lr": lr})
    run = store.run(config).create()
    start = 0 if rewind == "0it" or kind in ("reinit", "reset-init") else int(rewind.removesuffix("it"))
    for level, accuracy in accuracies.items():
        write_json(run.level_dir(level) / "summary.json",
                   {"level": level, "kind": kind, "seed": seed, "weights_remaining": 0.8 ** level,
                    "test_accuracy": accuracy, "test_loss": 1.0, "train_loss": 1.0, "start_iteration": start})
    return run


def _stability(store: Store, seed: int, rewind: str, barrier: float, accuracy: float, preset: str = "synthetic") -> None:
    copy = store.run(tiny_config(seed=seed, rewind=rewind, kind="data-order", data_seed=seed + 99,
                                 preset=preset)).create()
    curve = [{"alpha": a / 2, "test_error": 0.3, "train_error": 0.2} for a in range(3)]
    write_json(copy.level_dir(2) / "stability_30pt_bn-recompute_5000.json",
               {"level": 2, "rewind": rewind, "rewind_iteration": int(rewind.removesuffix("it")), "seed": seed,
                "weights_remaining": 0.64, "test_accuracy": accuracy, "batch_norm": "none",
                "run": "x", "copy_run": copy.hash, "curve": curve, "barrier_test": barrier, "barrier_train": barrier,
                **{f"{what}_{m}": 1.0 for what in ("pruning", "data_order") for m in ("l2", "l2_normalized", "angle")}})


@pytest.fixture
def synthetic(tmp_path):
    """Five seeds. Rewound tickets beat dense by 3 points and reinit by 2 (holds); random pruning equals
    the ticket up to a large noise (undecided); tickets reset to 0 beat rewound ones by 2 points
    (the rewinding claim is contradicted); the barrier falls from 10% to 1% (holds) while the accuracy
    falls with it (the stabler ticket is the less accurate one: contradicted)."""
    store = Store(tmp_path / "store")
    for seed, noise, spread in zip(SEEDS, NOISE, SPREAD):
        dense, ticket = 0.70 + noise, 0.73 - noise
        _run(store, seed, "10it", "imp", {0: dense, 1: 0.72, 2: ticket})
        _run(store, seed, "0it", "imp", {0: dense, 1: 0.73, 2: ticket + 0.02 + noise})
        _run(store, seed, "10it", "reinit", {1: 0.70, 2: ticket - 0.02 + noise})
        _run(store, seed, "10it", "random-prune", {1: 0.70, 2: ticket + spread})
        _stability(store, seed, "0it", 0.10 + noise, ticket + 0.02 + noise)
        _stability(store, seed, "10it", 0.01 - noise, ticket)
    return store


def test_synthetic_study_gets_the_verdicts_it_was_built_for(synthetic, tmp_path, capsys):
    (report,) = write_report(synthetic.root, tmp_path / "report")
    found = {c["claim"]: c for c in json.loads((report / CLAIMS_FILE).read_text())["claims"]}
    assert found["ticket (rewind 10it) matches or beats dense"]["verdict"] == "holds"
    assert found["ticket (rewind 10it) matches or beats dense"]["difference"] == pytest.approx(0.03)
    assert found["ticket (rewind 10it) > random reinitialisation"]["verdict"] == "holds"
    assert found["ticket (rewind 10it) > random pruning"]["verdict"] == "undecided"
    assert found["ticket rewound to 10it > ticket reset to 0"]["verdict"] == "contradicted"
    assert found["barrier falls from rewind 0it to 10it"]["verdict"] == "holds"
    assert found["barrier falls from rewind 0it to 10it"]["difference"] == pytest.approx(0.09)
    stabler = next(c for name, c in found.items() if name.startswith("stabler tickets"))
    assert stabler["verdict"] == "contradicted" and stabler["seeds"] == 5
    assert all(c["seeds"] == 5 for c in found.values())
    family = json.loads((report / CLAIMS_FILE).read_text())["family"]
    assert family.startswith(f"{len(found)} claims tested as one family")
    assert all(c["p_holm"] >= c["p"] for c in found.values())  # Holm only ever raises a p-value
    # reset-init is not claimed at k = 0 (there it is the IMP run itself); k = 0 has no baselines here
    assert not any("rewind 0it) >" in name for name in found)
    markdown = (report / "report.md").read_text()
    assert markdown.index("Claims of the papers") < markdown.index("accuracy_vs_weights.png")
    assert "| ticket (rewind 10it) > random pruning | level 2 (64.0% weights), rewind 10it |" in markdown
    assert "Warning" not in markdown
    assert main(["report", str(synthetic.root), "--out", str(tmp_path / "r2"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["claims"][0]["claims"]) == len(found)


def test_fewer_than_three_seeds_warns_and_one_seed_has_no_verdict(tmp_path, capsys):
    store = Store(tmp_path / "store")
    for seed in (0, 1):
        _run(store, seed, "10it", "imp", {0: 0.70, 1: 0.72 + 0.01 * seed})
        _run(store, seed, "10it", "reinit", {1: 0.70})
    assert main(["report", str(store.root), "--out", str(tmp_path / "two")]) == 0
    printed = capsys.readouterr().out
    assert "warning: only 2 seeds" in printed
    claims = json.loads((tmp_path / "two" / CLAIMS_FILE).read_text())
    assert claims["warnings"] and "only 2 seeds" in claims["warnings"][0]
    # +2 and +3 points over dense: t(1) = 12.7 makes the interval [-3.9, +8.9] points
    matching = next(c for c in claims["claims"] if "matches" in c["claim"])
    assert matching["verdict"] == "undecided" and matching["low"] == pytest.approx(-0.0385, abs=1e-4)
    store1 = Store(tmp_path / "one")
    _run(store1, 0, "10it", "imp", {0: 0.70, 1: 0.72})
    write_report(store1.root, tmp_path / "r1")
    (claim,) = json.loads((tmp_path / "r1" / CLAIMS_FILE).read_text())["claims"]
    assert claim["verdict"] == "one seed" and claim["low"] is None


def test_stability_measured_with_other_settings_is_a_group_of_its_own(synthetic, tmp_path):
    """Measurements with other interpolation points are shown apart and never averaged as seeds."""
    copy = next(r for r in synthetic.runs() if r.config.kind == "data-order" and r.config.seed == 0
                and r.config.rewind == "10it")
    row = json.loads((copy.level_dir(2) / "stability_30pt_bn-recompute_5000.json").read_text())
    write_json(copy.level_dir(2) / "stability_5pt_bn-recompute_5000.json", {**row, "barrier_test": 0.5})
    (report,) = write_report(synthetic.root, tmp_path / "report")
    markdown = (report / "report.md").read_text()
    rows = [line for line in markdown.splitlines() if line.startswith("| 10it | 2 |")]
    assert len(rows) == 2  # one row per settings group
    assert any("| 5 | none | 30pt_bn-recompute_5000 |" in r for r in rows)  # five seeds at the default settings
    assert any("50.00 ± 0.00" in r and "| 1 | none | 5pt_bn-recompute_5000 |" in r for r in rows)
    found = {c["claim"]: c for c in json.loads((report / CLAIMS_FILE).read_text())["claims"]}
    assert found["barrier falls from rewind 0it to 10it"]["difference"] == pytest.approx(0.09)


def test_a_store_with_two_studies_gets_an_index_with_both_claims_tables(synthetic, tmp_path):
    for seed in SEEDS:  # a second study: another learning rate, where reinit beats the ticket
        _run(synthetic, seed, "10it", "imp", {0: 0.70, 2: 0.70 + NOISE[seed]}, lr=0.5)
        _run(synthetic, seed, "10it", "reinit", {2: 0.75}, lr=0.5)
    reports = write_report(synthetic.root, tmp_path / "report")
    assert len(reports) == 2 and all((r / CLAIMS_FILE).exists() for r in reports)
    index = (tmp_path / "report" / "report.md").read_text()
    assert "differ in: `train.lr`" in index and "(train.lr=0.05)" in index and "(train.lr=0.5)" in index
    assert index.count("| claim | compared at |") == 2
    assert "| ticket (rewind 10it) > random reinitialisation | level 2 (64.0% weights), rewind 10it | -5.00 points" in index
    assert "<h2>synthetic (train.lr=0.5)</h2>" in (tmp_path / "report" / "report.html").read_text()


def test_the_early_stopping_point_is_the_first_evaluation_of_least_test_loss():
    records = [{"iteration": 50, "test_loss": 0.40, "test_accuracy": 0.90}, {"iteration": 100, "test_loss": 0.21,
               "test_accuracy": 0.95}, {"iteration": 150, "test_loss": 0.21, "test_accuracy": 0.96},
               {"iteration": 200, "test_loss": 0.30, "test_accuracy": 0.97}]
    found = early_stop(records)
    assert (found.iteration, found.accuracy, found.split) == (100, 0.95, "test")  # not the last, most accurate one
    assert early_stop([]) is None


def test_verdicts_near_the_threshold_or_turned_by_one_seed_are_fragile():
    assert [is_near_threshold(p) for p in (0.0124, 0.0125, 0.014, 0.2, 0.21)] == [False, True, True, True, False]
    # p 0.0079 (< alpha / 4): holds, but without seed 0 the two left give t(1) = 7.96, p 0.08: undecided
    turned = mark_fragile(holm([judge("a > b", "", "", {0: 1.0, 1: 1.01, 2: 1.3})]))[0]
    assert turned.verdict == "holds" and turned.p_holm == pytest.approx(0.00786, abs=1e-5) and turned.fragile
    solid = mark_fragile(holm([judge("a > b", "", "", {0: 1.0, 1: 1.1, 2: 0.9, 3: 1.05, 4: 0.95})]))[0]
    assert solid.verdict == "holds" and not solid.fragile  # p 9e-6, and every four seeds of five still hold
    near = mark_fragile(holm([judge("a > b", "", "", {0: 1.0, 1: 2.0, 2: 3.0})]))[0]  # p 0.074: undecided
    assert near.verdict == "undecided" and near.fragile and "undecided (fragile)" in text_table([near])
    assert Claim.from_json(json.loads(json.dumps(turned.to_json()))) == turned  # (seed, difference) pairs survive


def _early_stopping_log(run, level: int, best: int) -> None:
    """metrics.jsonl whose test loss is least at iteration `best` (evaluations every 50 of 300)."""
    write_jsonl(run.level_dir(level) / METRICS_FILE, [
        {"iteration": i, "test_loss": 0.1 + abs(i - best) / 1000, "test_accuracy": 0.9 + i / 10000,
         "train_loss": 0.0, "train_accuracy": 1.0} for i in range(50, 301, 50)])


def _lth_study(store: Store, preset: str) -> None:
    """Reset-to-init (k = 0) tickets that beat dense, reinit and random pruning and stop 100 iterations before
    dense and before reinit (at 200 vs 300), five seeds, levels 0-2."""
    for seed, noise in zip(SEEDS, NOISE):
        ticket = _run(store, seed, "0it", "imp", {0: 0.70 + noise, 1: 0.72, 2: 0.73 - noise}, preset=preset)
        reinit = _run(store, seed, "0it", "reinit", {1: 0.70, 2: 0.70 + noise}, preset=preset)
        _run(store, seed, "0it", "random-prune", {1: 0.69, 2: 0.69 + noise}, preset=preset)
        for level, best in ((0, 300 - 50 * (seed % 2)), (1, 200), (2, 200)):
            _early_stopping_log(ticket, level, best)
        for level in (1, 2):
            _early_stopping_log(reinit, level, 300 - 50 * (seed % 2))


def test_an_lth_preset_is_judged_on_its_papers_claims_including_learning_faster(tmp_path, capsys):
    assert claims_of("lenet300_mnist5k") is ClaimSet.LTH and claims_of("conv2_cifar10") is ClaimSet.LTH
    assert claims_of("mnist1d_mlp_scale") is ClaimSet.SCALE and claims_of("no such preset") is ClaimSet.GENERIC
    store = Store(tmp_path / "store")
    _lth_study(store, "lenet300_mnist5k")
    (report,) = write_report(store.root, tmp_path / "report")
    found = {c["claim"]: c for c in json.loads((report / CLAIMS_FILE).read_text())["claims"]}
    assert set(found) == {"ticket (rewind 0it) matches or beats dense", "ticket (rewind 0it) > random reinitialisation",
                          "ticket (rewind 0it) > random pruning",
                          "ticket (rewind 0it) stops earlier than dense (iteration of min test loss)",
                          "ticket (rewind 0it) stops earlier than random reinitialisation (iteration of min test loss)"}
    faster = found["ticket (rewind 0it) stops earlier than dense (iteration of min test loss)"]
    # dense stops at 300 or 250 (seeds alternate), the ticket at 200: +80 iterations on average, level 2 (64%)
    assert faster["difference"] == pytest.approx(80.0) and faster["unit"] == "iterations"
    assert faster["where"].startswith("level 2 (64.0% weights)") and faster["verdict"] == "holds"
    assert all(c["source"].startswith("[LTH] §2–3") for c in found.values())
    assert (report / "early_stopping.png").exists()
    assert "| imp rewind 0it | 2 | 64.00 | 73.00 ± 0.27 | 200 ± 0 | 92.00 ± 0.00 | 5 |" in (report / "report.md").read_text()
    assert main(["report", str(store.root), "--out", str(tmp_path / "r2")]) == 0
    printed = capsys.readouterr().out
    assert "source" in printed and "[LTH] §2–3 (early stopping)" in printed  # the terminal shows each claim's source


def test_a_scale_preset_is_judged_on_scales_claims_and_no_preset_on_generic_comparisons(synthetic, tmp_path):
    (generic,) = write_report(synthetic.root, tmp_path / "generic")
    claims = json.loads((generic / CLAIMS_FILE).read_text())["claims"]
    assert {c["source"] for c in claims} == {GENERIC_SOURCE}
    store = Store(tmp_path / "scale")
    for seed, noise in zip(SEEDS, NOISE):
        ticket = 0.73 - noise
        _run(store, seed, "10it", "imp", {0: 0.70 + noise, 1: 0.72, 2: ticket}, preset="mnist1d_mlp_scale")
        _run(store, seed, "0it", "imp", {0: 0.70 + noise, 1: 0.73, 2: ticket}, preset="mnist1d_mlp_scale")
        _run(store, seed, "0it", "reinit", {2: ticket - noise}, preset="mnist1d_mlp_scale")
        _run(store, seed, "10it", "reinit", {2: ticket - 0.02 + noise}, preset="mnist1d_mlp_scale")
        _stability(store, seed, "0it", 0.10 + noise, ticket, preset="mnist1d_mlp_scale")
        _stability(store, seed, "10it", 0.01 - noise, ticket + 0.01, preset="mnist1d_mlp_scale")
    (report,) = write_report(store.root, tmp_path / "report")
    found = {c["claim"]: c for c in json.loads((report / CLAIMS_FILE).read_text())["claims"]}
    # k = 0: only "no winning ticket" ([SCALE] does not claim a ticket there); k = 10: a ticket, and stability
    assert set(found) == {"no winning ticket at rewind 0it: ticket matches random reinitialisation",
                          "ticket (rewind 10it) matches or beats dense", "ticket (rewind 10it) > random reinitialisation",
                          "ticket rewound to 10it > ticket reset to 0", "barrier falls from rewind 0it to 10it",
                          "stabler tickets are more accurate (−Δacc/Δbarrier > 0)"}
    assert found["no winning ticket at rewind 0it: ticket matches random reinitialisation"]["verdict"] == "equivalent"
    assert found["no winning ticket at rewind 0it: ticket matches random reinitialisation"]["source"] == \
        "[LTH] §4; [SCALE] §3"
    assert found["barrier falls from rewind 0it to 10it"]["source"] == "[SCALE] §4; [LMC] §4"
