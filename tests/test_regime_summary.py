"""studies/regime_summary.py on a hand-made runs CSV: verdicts and the chain column come out as built."""
import csv

from conftest import load_study


def test_summary_judges_each_cell_and_names_the_chain(tmp_path):
    fields = ["regime", "rewind", "seed", "dense", "weights_L10", "ticket_L10", "reinit_L10", "random_L10",
              "barrier_L10", "data_order_l2_L10"]
    rows = []
    for seed, noise in zip((0, 1, 2), (0.002, -0.001, -0.001)):
        # k = 0: unstable (barrier 10%), ticket = reinit; k = 50: stable (1%), ticket beats everything by 5 points
        rows.append(["x", "0it", seed, 0.60, 0.11, 0.70 + noise, 0.70, 0.60, 0.10, 1.0])
        rows.append(["x", "50it", seed, 0.60, 0.11, 0.75 + noise, 0.70, 0.60, 0.01, 0.5])
        # k = 150: stable, beats random pruning, ties reinit, and loses to dense by 10 points
        rows.append(["x", "150it", seed, 0.80, 0.11, 0.70 + noise, 0.70, 0.60, 0.01, 0.5])
    runs = tmp_path / "regime_map_runs.csv"
    with runs.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(fields)
        writer.writerows(rows)
    table = load_study("regime_summary").summarize(runs, tmp_path)
    by_k = {row["rewind"]: row for row in table}
    assert by_k["0it"]["vs_reinit_L10"] == "+0.00 [-0.43, +0.43] undecided"  # t(2) 4.303 x sd 0.173 / sqrt 3
    assert by_k["0it"]["chain"] == "unstable, ticket > reinit undecided"
    assert by_k["50it"]["vs_reinit_L10"].endswith("holds") and by_k["50it"]["vs_reset_L10"].startswith("+5.00")
    assert by_k["50it"]["chain"] == "stable, winning ticket"
    assert by_k["150it"]["chain"] == "stable, no winning ticket (≥ dense contradicted, > reinit undecided)"
    assert (tmp_path / "regime_map.csv").exists() and (tmp_path / "regime_map.png").stat().st_size > 10_000
    lines = (tmp_path / "regime_map.md").read_text().splitlines()
    assert len(lines) == 5 and lines[0].startswith("| regime | k | seeds | dense |")
    assert "| x | 50it | 3 | 60.00 |" in lines[3] and "**holds**" in lines[3] and lines[3].endswith("stable, winning ticket |")
    assert "| 10.00% |" in lines[2] and "undecided" in lines[2]  # the k = 0 barrier and its ticket = reinit


def test_regime_map_reports_a_diverged_regime_and_maps_the_rest(tmp_path, monkeypatch, capsys):
    from lth.errors import TrainingDiverged

    regime_map = load_study("regime_map")

    def measure_cell(regime, rewind, seeds, levels, store, quiet):
        if regime == "sgd-0.6":
            raise TrainingDiverged("the training loss became nan between iterations 1000 and 1100")
        return [{"regime": regime, "rewind": rewind, "seed": s, "dense": 0.6, "weights_L10": 0.11,
                 "ticket_L10": 0.7 + s / 100, "reinit_L10": 0.7, "random_L10": 0.6, "barrier_L10": 0.01,
                 "data_order_l2_L10": 0.5} for s in seeds]

    monkeypatch.setattr(regime_map, "measure_cell", measure_cell)
    assert regime_map.main(["--regimes", "sgd-0.6,sgd-0.3", "--seeds", "0,1,2", "--rewind-points", "0it",
                            "--levels", "10", "--out", str(tmp_path)]) == 0
    assert "sgd-0.6 k=0it: diverged (the training loss became nan" in capsys.readouterr().err
    with (tmp_path / "regime_map_runs.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["regime"], r["seed"]) for r in rows] == [("sgd-0.3", "0"), ("sgd-0.3", "1"), ("sgd-0.3", "2")]
