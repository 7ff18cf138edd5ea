import csv
import json
import shutil
import subprocess

import pytest
from PIL import Image

import lth
import lth.api
import lth.levels
from lth.cli import main
from lth.report import write_report
from lth.reproduce import StudyPlan, reproduce
from lth.store import Store
from lth.options import RunOptions
from conftest import tiny_config

PLAN = StudyPlan(levels=2, rewind_points=("0it", "10it"), stability_level=2, seeds=(0, 1), baseline_rewinds=("0it",))


@pytest.fixture(scope="module")
def study(tmp_path_factory, mnist1d):
    store = tmp_path_factory.mktemp("study")
    config = tiny_config(preset="tiny")
    reproduce(config, PLAN, store, log=lambda _: None, options=RunOptions(quiet=True, data=mnist1d, replicas=2))
    return config, store, write_report(store, store / "report")


def test_reproduce_twice_trains_nothing_the_second_time(study, mnist1d, monkeypatch):
    config, store, _ = study

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(lth.levels, "train_replicas", no_training)  # (the one place levels are trained)
    files = {p: p.stat().st_mtime_ns for p in store.glob("*/level_*/*.safetensors")}
    first = json.loads(next(store.glob("_studies/*.json")).read_text())
    again = reproduce(config, PLAN, store, log=lambda _: None, options=RunOptions(quiet=True, data=mnist1d, replicas=2))
    assert len(files) > 50 and {p: p.stat().st_mtime_ns for p in store.glob("*/level_*/*.safetensors")} == files
    assert {key: sorted(again[key]) for key in ("imp", "branches", "stability")} == \
        {key: sorted(first[key]) for key in ("imp", "branches", "stability")}  # the same runs, read back


def test_report_writes_every_figure_and_the_csv_equals_the_store(study):
    config, store, (report,) = study
    for name in ("accuracy_vs_weights.png", "early_stopping.png", "stability_vs_rewind.png", "accuracy_vs_stability.png",
                 "interpolation.png"):
        with Image.open(report / name) as image:
            assert image.format == "PNG" and image.size[0] >= 600 and image.size[1] >= 400
        assert (report / name).stat().st_size > 20_000
    rows = list(csv.DictReader(open(report / "results.csv")))
    runs = {run.hash: run for run in Store(store).runs()}
    checked = 0
    for row in rows:
        if row["kind"] != "stability":
            summary = runs[row["run"]].summary(int(row["level"]))
            assert float(row["value"]) == summary[row["metric"]]
            checked += 1
    # IMP at 2 rewind points x 2 seeds x 3 levels, 3 baselines x 2 seeds x 2 levels, data-order copies
    assert checked >= 3 * (2 * 2 * 3 + 3 * 2 * 2)
    assert {r["kind"] for r in rows} == {"imp", "reset-init", "reinit", "random-prune", "data-order", "stability"}
    markdown = (report / "report.md").read_text()
    assert "Stability by rewind step" in markdown and config.hash() in markdown and "Missing" not in markdown
    html = (report / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5 and "<table>" in html and "Claims of the papers" in html
    # baselines off both chains; reset-init only where it differs from IMP (k > 0)
    kinds = {(r.config.kind, r.config.rewind) for r in Store(store).runs()}
    assert {("reinit", "0it"), ("random-prune", "0it"), ("reset-init", "10it")} <= kinds
    assert ("reset-init", "0it") not in kinds
    claims = {c["claim"]: c for c in json.loads((report / "claims.json").read_text())["claims"]}
    assert {"ticket (rewind 0it) > random reinitialisation", "ticket (rewind 10it) > reset to init",
            "ticket rewound to 10it > ticket reset to 0", "barrier falls from rewind 0it to 10it"} <= set(claims)
    assert all(c["seeds"] == 2 for c in claims.values()) and "only 2 seeds" in markdown
    assert "| executed on |" in markdown and " cpu 2thr fp32 K2 torch " in markdown  # seeds stacked by two
    with Image.open(report / "accuracy_vs_weights.png") as image:  # one panel per chain with baselines
        assert image.size[0] > image.size[1] * 1.8


def test_report_on_empty_and_partial_stores_says_what_is_missing(tmp_path, mnist1d, capsys):
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r")]) == 0
    assert "No finished runs" in (tmp_path / "r" / "report.md").read_text()
    lth.api.run_imp(tiny_config(), 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    (report,) = write_report(tmp_path, tmp_path / "r2")
    text = (report / "report.md").read_text()
    assert "no `reinit` baseline yet" in text and "no stability measurements yet" in text
    assert (report / "accuracy_vs_weights.png").exists() and not (report / "interpolation.png").exists()
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_report_takes_its_store_as_every_command_does(study, tmp_path, capsys):
    """`lth report DIR` and `lth report --store DIR` write the same report; two different stores are refused."""
    _, store, _ = study
    assert main(["report", str(store), "--out", str(tmp_path / "positional"), "--json"]) == 0
    positional = json.loads(capsys.readouterr().out)
    assert main(["report", "--store", str(store), "--out", str(tmp_path / "flag"), "--json"]) == 0
    flag = json.loads(capsys.readouterr().out)
    assert len(flag["reports"]) == len(positional["reports"]) == 1 and flag["claims"] == positional["claims"]
    assert main(["report", str(store), "--store", str(tmp_path), "--out", str(tmp_path / "both")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lth: error: two stores given") and "\n" not in err and not (tmp_path / "both").exists()


def test_version_names_lth_and_torch(capsys):
    import torch

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"lth {lth.__version__} (torch {torch.__version__}, Python 3.")


def test_ls_lists_runs_with_kind_and_levels(study, capsys):
    _, store, _ = study
    assert main(["ls", "--store", str(store), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    kinds = sorted({(r["kind"], r["levels_done"]) for r in rows})
    assert ("imp", 3) in kinds and ("reinit", 2) in kinds and ("data-order", 1) in kinds
    assert all(r["status"] == "ok" for r in rows)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (CI installs it)")
def test_report_html_renders_in_headless_chromium(study, tmp_path):
    _, _, (report,) = study
    shot = tmp_path / "shot.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                    f"--screenshot={shot}", "--window-size=1200,2400", f"file://{report / 'report.html'}"],
                   check=True, capture_output=True, timeout=120)
    with Image.open(shot) as image:
        grey = image.convert("L")
        dark = sum(grey.histogram()[:128]) / (grey.width * grey.height)
    assert 0.005 < dark < 0.5  # not a blank (or black) page: text and figures are drawn


def test_study_plan_stages_are_the_one_definition_of_a_study():
    from lth.jobs import study_jobs
    from lth.reproduce import Stage

    config = tiny_config()  # rewind 10it
    plan = StudyPlan(levels=3, rewind_points=("0it", "10it", "20it"), stability_level=2, seeds=(0, 1),
                     baseline_rewinds=("0it",), baseline_levels=(1, 3))
    assert plan.stages(config) == [
        Stage("imp", "10it", 3), Stage("reset-init", "10it", 3, (1, 3)), Stage("reinit", "10it", 3, (1, 3)),
        Stage("random-prune", "10it", 3, (1, 3)), Stage("imp", "0it", 3), Stage("reinit", "0it", 3, (1, 3)),
        Stage("random-prune", "0it", 3, (1, 3)), Stage("stability", "0it", 2), Stage("stability", "10it", 2),
        Stage("stability", "20it", 2)]
    jobs = study_jobs(config, plan, replicas=2)
    # both seeds in each job (stacked): the dense run, 2 chains x 4 levels, 5 baselines x 2 levels, the
    # 20it chain to level 2, 3 data-order copies and 3 measurements
    assert len(jobs) == 1 + 8 + 10 + 3 + 3 + 3 and all(len(job.configs) == 2 for job in jobs)
    [dense] = [job for job in jobs if job.what == "dense"]
    assert dense.dense_steps == ("10it", "0it", "20it")  # every rewind point, in one training
    assert len(study_jobs(config, plan, replicas=1)) == 2 * len(jobs)  # one job per seed

    for bad in ("1,x", "99"):  # refused before any training
        assert main(["reproduce", "--preset", "mnist1d_mlp", "--store", "/nonexistent/store", "--baseline-levels", bad]) == 2
