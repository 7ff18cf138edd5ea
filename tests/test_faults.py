"""Damaged files and bad input give a one-line error (exit 2 from the CLI) and lose nothing."""
import os

import pytest

from lth import run_imp
from lth.cli import main
from lth.errors import StoreError
from lth.dense import dense_config
from lth.store import load_checked, load_tensors, save_checked, save_tensors
from lth.options import RunOptions
from conftest import tiny_config


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_flipped_bit_or_truncation_in_a_tensor_file_is_detected(tmp_path):
    import torch

    path = tmp_path / "w.safetensors"
    save_tensors(path, {"a": torch.arange(10.0)})
    assert torch.equal(load_tensors(path)["a"], torch.arange(10.0))
    _flip_last_byte(path)
    with pytest.raises(StoreError, match="checksum mismatch"):
        load_tensors(path)
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(StoreError, match="corrupt tensor file"):
        load_tensors(path)


def test_a_damaged_checkpoint_is_detected(tmp_path):
    path = tmp_path / "resume.pt"
    save_checked(path, b"payload")
    assert load_checked(path) == b"payload"
    _flip_last_byte(path)
    with pytest.raises(StoreError, match="checksum mismatch"):
        load_checked(path)


def test_a_corrupt_level_stops_the_chain_with_one_line_and_keeps_the_store(tmp_path, mnist1d, capsys):
    config = tiny_config(**{"model.options": {"hidden": 16}, "train.iterations": "40it"})
    result = run_imp(config, 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    final = tmp_path / config.hash() / "level_1" / "final.safetensors"
    _flip_last_byte(final)
    before = sorted(os.listdir(final.parent))
    code = main(["export", result.run_dir, "--level", "1", "--out", str(tmp_path / "t.safetensors")])
    err = capsys.readouterr().err
    assert code == 2 and "corrupt tensor file" in err and len(err.strip().splitlines()) == 1
    assert sorted(os.listdir(final.parent)) == before and not (tmp_path / "t.safetensors").exists()


def test_an_unwritable_store_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = main(["imp", "--levels", "0", "--iterations", "20it", "--rewind", "0it", "--store", str(blocker / "store"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "--store" in err and len(err.strip().splitlines()) == 1


def test_a_config_file_with_unknown_keys_is_rejected(tmp_path, capsys):
    config = tiny_config().to_dict()
    config["train"]["learning_rate"] = 0.1
    path = tmp_path / "config.json"
    path.write_text(__import__("json").dumps(config))
    assert main(["imp", "--config", str(path), "--store", str(tmp_path / "s")]) == 2
    assert "train.learning_rate" in capsys.readouterr().err and not (tmp_path / "s").exists()


def test_a_diverging_run_stops_naming_the_iterations_and_is_marked_failed(tmp_path, capsys):
    args = ["imp", "--levels", "0", "--iterations", "40it", "--rewind", "0it", "--set", "train.eval_every=20it", "--optimizer", "sgd",
            "--lr", "1e6", "--store", str(tmp_path), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "became nan" in err.lower() or "became inf" in err.lower()
    assert "between iterations 0 and 20" in err
    assert main(["ls", "--store", str(tmp_path)]) == 0
    assert "failed: level 0: the training loss became" in capsys.readouterr().out


def test_a_crash_inline_marks_its_level_failed_as_an_executor_does_and_a_rerun_clears_it(tmp_path, mnist1d,
                                                                                         monkeypatch, capsys):
    import lth.levels
    import lth.store

    real = lth.levels.train_replicas

    def out_of_memory(*args, **kwargs):
        if kwargs.get("start") == 10:  # IMP level 1 (from the rewind step): the dense run trains
            raise RuntimeError("CUDA out of memory (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(lth.levels, "train_replicas", out_of_memory)
    with pytest.raises(RuntimeError, match="simulated"):
        run_imp(tiny_config(), 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d))
    failures = [run.failures() for run in lth.store.Store(tmp_path).runs() if run.failures()]
    assert failures == [[{"level": 1, "error": "RuntimeError: CUDA out of memory (simulated)", "log": None}]]
    monkeypatch.setattr(lth.levels, "train_replicas", real)
    assert run_imp(tiny_config(), 1, tmp_path, options=RunOptions(quiet=True, data=mnist1d)).trained == 1
    assert not any(run.failures() for run in lth.store.Store(tmp_path).runs())


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one_and_the_run_resumes(tmp_path, mnist1d, monkeypatch):
    import errno

    import torch

    import lth.store

    config = tiny_config(**{"model.options": {"hidden": 16}, "train.iterations": "200it", "rewind": "0it"})
    reference = run_imp(config, 0, tmp_path / "reference",
                        options=RunOptions(quiet=True, data=mnist1d, checkpoint_every="40it"))
    real_fsync, writes = os.fsync, []

    def fsync_then_fill_the_disk(fd):
        writes.append(fd)
        if len(writes) == 8:  # config, data, owner, mask, start, execution, a first checkpoint ... then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(lth.store.os, "fsync", fsync_then_fill_the_disk)
    with pytest.raises(StoreError, match="No space left on device.*previous version of the file is kept"):
        run_imp(config, 0, tmp_path / "store", options=RunOptions(quiet=True, data=mnist1d, checkpoint_every="40it"))
    level = tmp_path / "store" / dense_config(config).hash() / "level_0"  # (the dense run, which IMP's level 0 adopts)
    assert (level / "resume.pt").exists() and not list(level.glob("*.tmp"))
    monkeypatch.setattr(lth.store.os, "fsync", real_fsync)
    resumed = run_imp(config, 0, tmp_path / "store",
                      options=RunOptions(quiet=True, data=mnist1d, checkpoint_every="40it"))
    a = load_tensors(os.path.join(reference.run_dir, "level_0", "final.safetensors"))
    b = load_tensors(os.path.join(resumed.run_dir, "level_0", "final.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_leftover_temp_file_from_a_kill_during_a_write_is_harmless(tmp_path, mnist1d):
    import torch

    config = tiny_config(**{"model.options": {"hidden": 16}, "train.iterations": "40it", "rewind": "0it"})
    reference = run_imp(config, 1, tmp_path / "reference", options=RunOptions(quiet=True, data=mnist1d))
    level = tmp_path / "store" / config.hash() / "level_1"
    level.mkdir(parents=True)
    (level / ".final.safetensors.abc123.tmp").write_bytes(b"half a file")  # what a kill mid-write leaves
    again = run_imp(config, 1, tmp_path / "store", options=RunOptions(quiet=True, data=mnist1d))
    a = load_tensors(os.path.join(reference.run_dir, "level_1", "final.safetensors"))
    b = load_tensors(os.path.join(again.run_dir, "level_1", "final.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
