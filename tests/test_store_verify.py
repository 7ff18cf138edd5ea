"""What the store guarantees (docs/store.md): a run is a function of its config and its data, every file
it reads is verified, and a damaged run is named in one line with the one command that repairs it,
after which rerunning the command recomputes it. End to end, with tiny runs (20 iterations)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from lth import run_imp
from lth.cli import main
from lth.data import load_dataset
from lth.errors import DataError
from lth.options import RunOptions
from test_bad_input import TINY, snapshot, write_mnist

LEGACY = Path(__file__).parent / "data" / "store_8150b21"


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err.strip()


def results(root: Path) -> dict[str, str]:
    """The store's files but the bookkeeping of who trains a level (lock, running, owner)."""
    return {k: v for k, v in snapshot(root).items() if not k.endswith((".lock", ".running", ".owner.json"))}


def one_line_error(args: list[str], capsys, store: Path, message: str) -> str:
    before = results(store)
    code, _, err = run_cli(args, capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err and message in err, err
    assert results(store) == before
    return err


def repair(err: str) -> None:
    """Run the one command the message names."""
    command = re.search(r"repair: `([^`]*)`", err).group(1)
    subprocess.run(command, shell=True, check=True)


def imp_levels(store: Path, capsys, levels: int = 1, *extra: str) -> list[dict]:
    code, out, err = run_cli(["imp", "--levels", str(levels), *TINY, "--store", str(store), "--json", *extra], capsys)
    assert code == 0, err
    return json.loads(out)["levels"]


def numbers(levels: list[dict]) -> list[tuple]:
    """What a level computed (not how long it took)."""
    return [(r["level"], r["test_accuracy"], r["test_loss"], r["train_loss"], r["weights_remaining"]) for r in levels]


def imp_run(store: Path) -> Path:
    return next(p.parent for p in store.glob("*/config.json") if json.loads(p.read_text())["kind"] == "imp")


# ---------------------------------------------------------------- a run is a function of its config and its data

def test_other_data_never_returns_or_extends_a_run(tmp_path, capsys):
    write_mnist(tmp_path / "A", 0)
    write_mnist(tmp_path / "B", 1)  # the same shapes and sizes, other images and labels
    store = tmp_path / "store"
    mnist = ["--preset", "lenet300_mnist", *TINY, "--set", "train.batch_size=20", "--set", "model.options={}",
             "--store", str(store), "--json"]
    code, first, err = run_cli(["train", *mnist, "--data-root", str(tmp_path / "A")], capsys)
    assert code == 0, err
    for run_dir in store.glob("*/config.json"):
        record = json.loads((run_dir.parent / "data.json").read_text())
        assert record["dataset"] == "mnist" and record["examples"] == [120, 20] and len(record["fingerprint"]) == 64
    message = "was trained on other mnist data"
    one_line_error(["train", *mnist, "--data-root", str(tmp_path / "B")], capsys, store, message)
    one_line_error(["imp", "--levels", "1", *mnist, "--data-root", str(tmp_path / "B")], capsys, store, message)
    one_line_error(["train", *mnist, "--data-root", str(tmp_path / "nonexistent")], capsys, store, "is not a directory")
    code, again, _ = run_cli(["train", *mnist, "--data-root", str(tmp_path / "A")], capsys)
    assert code == 0 and numbers(json.loads(again)["levels"]) == numbers(json.loads(first)["levels"])
    shutil.copytree(tmp_path / "A", tmp_path / "A2")  # the same content elsewhere is the same data
    code, moved, _ = run_cli(["imp", "--levels", "1", *mnist, "--data-root", str(tmp_path / "A2")], capsys)
    assert code == 0 and numbers(json.loads(moved)["levels"])[0] == numbers(json.loads(first)["levels"])[0]


def test_a_dataset_object_is_fingerprinted_by_content(tmp_path, mnist1d, tiny):
    run_imp(tiny(), 0, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    other = type(mnist1d)(mnist1d.name, mnist1d.x_train, mnist1d.y_train.roll(1), mnist1d.x_test, mnist1d.y_test,
                          mnist1d.num_classes)
    with pytest.raises(DataError, match="trained on other mnist1d data"):
        run_imp(tiny(), 1, tmp_path, options=RunOptions(quiet=True, data=other))
    assert run_imp(tiny(), 0, tmp_path, options=RunOptions(quiet=True, data=mnist1d)).trained == 0


def test_a_store_written_before_data_records_is_read_as_it_is(tmp_path, capsys):
    store = tmp_path / "store"
    shutil.copytree(LEGACY, store)
    before = snapshot(store)
    code, out, err = run_cli(["ls", "--store", str(store), "--json"], capsys)
    assert code == 0 and len(json.loads(out)) == 2, err
    assert snapshot(store) == before and not list(store.glob("*/data.json"))


def test_a_swapped_or_damaged_mnist1d_cache_is_regenerated(tmp_path):
    reference = load_dataset("mnist1d", cache_dir=tmp_path)
    cache = next(tmp_path.glob("mnist1d-*.npz"))
    with np.load(cache) as stored:
        arrays = {k: stored[k] for k in stored.files}
    arrays["y"] = np.roll(arrays["y"], 1)  # a valid file with other labels (without its checksum: regenerated too)
    np.savez(cache, **arrays)
    assert torch.equal(load_dataset("mnist1d", cache_dir=tmp_path).y_train, reference.y_train)
    cache.write_bytes(cache.read_bytes()[:1000])
    assert torch.equal(load_dataset("mnist1d", cache_dir=tmp_path).y_train, reference.y_train)


# ---------------------------------------------------------------- every file the store reads is verified

def test_an_edited_summary_is_named_and_one_command_repairs_it(tmp_path, capsys):
    store = tmp_path / "store"
    levels = imp_levels(store, capsys)
    summary = imp_run(store) / "level_1" / "summary.json"
    summary.write_text(summary.read_text().replace(str(levels[1]["test_accuracy"]), "0.999"))
    for args in (["ls", "--store", str(store)], ["report", str(store)],
                 ["imp", "--levels", "1", *TINY, "--store", str(store)]):
        err = one_line_error(args, capsys, store, f"damaged file (checksum mismatch) {summary}; repair: `rm -r ")
    repair(err)
    assert not summary.exists()
    assert numbers(imp_levels(store, capsys)) == numbers(levels)  # recomputed, bit for bit (same machine)


def test_a_summary_of_another_shape_is_named(tmp_path, capsys):
    store = tmp_path / "store"
    imp_levels(store, capsys)
    summary = imp_run(store) / "level_1" / "summary.json"
    summary.write_text("[1, 2, 3]\n")
    err = one_line_error(["ls", "--store", str(store)], capsys, store, "summary of another shape")
    repair(err)
    code, _, _ = run_cli(["ls", "--store", str(store)], capsys)
    assert code == 0


def test_a_truncated_config_is_named_not_skipped(tmp_path, capsys):
    store = tmp_path / "store"
    imp_levels(store, capsys)
    config = imp_run(store) / "config.json"
    config.write_text(config.read_text()[:40])
    for args in (["ls", "--store", str(store)], ["report", str(store)]):
        err = one_line_error(args, capsys, store, f"unreadable file (JSONDecodeError) {config}; repair: `rm -r {config.parent}`")
    repair(err)
    code, out, _ = run_cli(["ls", "--store", str(store), "--json"], capsys)
    assert code == 0 and [row["kind"] for row in json.loads(out)] == ["dense"]


def test_a_copied_run_directory_is_not_counted_twice(tmp_path, capsys):
    store = tmp_path / "store"
    imp_levels(store, capsys)
    shutil.copytree(imp_run(store), store / "backup", copy_function=shutil.copy2)
    for args in (["ls", "--store", str(store)], ["report", str(store)]):
        one_line_error(args, capsys, store, f"{store / 'backup'} holds the config of run")


def test_stray_names_in_a_run_are_not_levels(tmp_path, capsys):
    store = tmp_path / "store"
    imp_levels(store, capsys)
    run = imp_run(store)
    shutil.copytree(run / "level_1", run / "level_1.bak")
    (run / "level_x").mkdir()
    (run / "level_7.notes").write_text("mine")
    code, out, err = run_cli(["ls", "--store", str(store), "--json"], capsys)
    assert code == 0 and {row["levels_done"] for row in json.loads(out)} == {1, 2}, err


def test_a_damaged_adopted_weight_file_names_both_copies_and_one_command_repairs_them(tmp_path, capsys):
    store = tmp_path / "store"
    levels = imp_levels(store, capsys)
    final = imp_run(store) / "level_0" / "final.safetensors"  # a hard link to the dense run's file
    data = bytearray(final.read_bytes())
    data[-1] ^= 0xFF
    final.write_bytes(bytes(data))
    err = one_line_error(["export", str(imp_run(store)), "--level", "0", "--out", str(tmp_path / "t.safetensors")],
                         capsys, store, f"corrupt tensor file (checksum mismatch) {final}")
    dense = json.loads((final.parent / "summary.json").read_text())["adopted_from"]
    assert str(store / dense) in err and str(imp_run(store) / "level_1") in err
    repair(err)
    assert numbers(imp_levels(store, capsys)) == numbers(levels)
    code, _, err = run_cli(["export", str(imp_run(store)), "--level", "0", "--out", str(tmp_path / "t.safetensors")],
                           capsys)
    assert code == 0, err


def test_a_damaged_rewind_checkpoint_names_every_level_sharing_it_and_one_command_repairs_them(tmp_path, capsys):
    store = tmp_path / "store"
    levels = imp_levels(store, capsys, 1, "--rewind", "10it")
    dense = next(p.parent for p in store.glob("*/config.json") if json.loads(p.read_text())["kind"] == "dense")
    step = dense / "level_0" / "step_10it.safetensors"  # W_k, linked into the chain's level 0
    data = bytearray(step.read_bytes())
    data[-1] ^= 0xFF
    step.write_bytes(bytes(data))
    err = one_line_error(["imp", "--levels", "2", *TINY, "--rewind", "10it", "--store", str(store)], capsys, store,
                         "corrupt tensor file (checksum mismatch)")
    assert all(str(d) in err for d in (dense / "level_0", imp_run(store) / "level_0", imp_run(store) / "level_1")), err
    repair(err)
    assert numbers(imp_levels(store, capsys, 2, "--rewind", "10it"))[:2] == numbers(levels)


def test_temp_files_of_killed_writes_are_removed_when_the_level_trains(tmp_path, capsys):
    store = tmp_path / "store"
    imp_levels(store, capsys)
    level = imp_run(store) / "level_2"
    level.mkdir()
    stale, fresh = level / ".final.safetensors.x1.tmp", level / ".mask.safetensors.x2.tmp"
    stale_top, fresh_top = level.parent / ".config.json.x3.tmp", level.parent / ".data.json.x4.tmp"
    for temp in (stale, fresh, stale_top, fresh_top):
        temp.write_bytes(b"half a file")
    for temp in (stale, stale_top):
        os.utime(temp, (time.time() - 3600, time.time() - 3600))
    imp_levels(store, capsys, 2)
    assert not stale.exists() and not stale_top.exists() and fresh.exists() and fresh_top.exists()


@pytest.mark.parametrize("damage, message", [
    ("config is a folder", "unreadable file (IsADirectoryError)"),
    ("level is a file", "is a file, not a folder; repair: `rm "),
    ("data record unreadable", "unreadable file (JSONDecodeError)"),
])
def test_a_damaged_run_is_not_extended_and_one_command_repairs_it(damage, message, tmp_path, capsys):
    store = tmp_path / "store"
    levels = imp_levels(store, capsys)
    run = imp_run(store)
    if damage == "config is a folder":
        (run / "config.json").unlink()
        (run / "config.json").mkdir()
    elif damage == "level is a file":
        shutil.rmtree(run / "level_1")
        (run / "level_1").write_text("not a level")
    else:
        (run / "data.json").write_text("[[")
    err = one_line_error(["imp", "--levels", "2", *TINY, "--store", str(store)], capsys, store, message)
    repair(err)
    assert numbers(imp_levels(store, capsys, 2))[:2] == numbers(levels)
    assert (imp_run(store) / "data.json").exists()
