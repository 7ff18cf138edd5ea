"""Runs on disk, content-addressed by config hash.

    <store>/<hash>/config.json
    <store>/<hash>/level_<L>/mask.safetensors     which weights survive at this level
    <store>/<hash>/level_<L>/start.safetensors    the weights training started from (rewound)
    <store>/<hash>/level_<L>/final.safetensors    the weights at the end of training
    <store>/<hash>/level_<L>/metrics.jsonl        one JSON object per evaluation
    <store>/<hash>/level_<L>/summary.json         written last: the level is finished
    <store>/<hash>/level_0/step_<k>it.safetensors the rewind checkpoint (weights after k iterations)

A level that another run already computed (an IMP chain's level 0 is the dense run every chain of
its model, data, training and seeds shares) is adopted: its files are hard links to the other
run's, and its summary names the source. Every file is written atomically (temp file, fsync, rename), so a killed process leaves either
the old file or the new one, never half of one.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import torch
from filelock import FileLock, Timeout
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .config import ExperimentConfig
from .errors import ConfigError, DataError, StoreError

DEFAULT_STORE = "lth_runs"

# The files of a run and of its levels (docs/store.md, "The store"): named here only.
CONFIG_FILE = "config.json"
MASK_FILE = "mask.safetensors"
START_FILE = "start.safetensors"
FINAL_FILE = "final.safetensors"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"  # written last: the level is finished
EXECUTION_FILE = "execution.json"
DATA_FILE = "data.json"  # the fingerprint of the data the run was trained on (lth.data_identity)
RESUME_FILE = "resume.pt"  # a level's full training state while it trains (deleted when it is done)
JOBS_DIR = "_jobs"  # <store>/_jobs: the executors' job logs and status
STUDIES_DIR = "_studies"  # <store>/_studies/<hash>.json: what `lth reproduce` ran
REPLICA_PROBES_FILE = "_replicas.json"  # <store>/_replicas.json: what --replicas auto measured, per network and device


CHECKSUM_KEY = "sha256"  # in every JSON object the store writes but config.json (its directory's name checks it)
STALE_SECONDS = 600  # a temp file of a write untouched this long was left by a killed process
_LEVEL_NAME = re.compile(r"level_(\d+)")


def path_safe(label: str) -> str:
    """A label (a preset's, a model's name) as one file name: nothing that climbs out of a folder."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", label).lstrip(".") or "_"


# the types of what a summary.json holds, as the commands that print it read them
SUMMARY_SHAPE: dict[str, type | tuple[type, ...]] = {"level": int, "iterations": int, "start_iteration": int, "seconds": (int, float),
                 "test_accuracy": (int, float), "weights_remaining": (int, float), "execution": dict}


def level_dir_name(level: int) -> str:
    return f"level_{level}"


def level_of(name: str) -> int | None:
    """The level a `level_<L>` name (or `level_<L>.lock`, ...) stands for; None for stray names
    (`level_1.bak/`, `level_x/`), which are not part of the run."""
    stem, _, suffix = name.partition(".")
    match = _LEVEL_NAME.fullmatch(stem)
    return int(match.group(1)) if match and suffix in ("", "lock", "running", "owner.json", "failed.json") else None


def repair(path: str | Path) -> str:
    """The one command that removes a damaged or missing store file `path` and what was computed from
    it, so that rerunning the command that made it recomputes it (docs/store.md, "Repairing a run"):
    the level holding it (a rewind checkpoint too: chains link it, and only a new dense training is
    sure to remake it) with the later levels of its run, and the same for every level sharing its files."""
    path = Path(path)
    if path.name == CONFIG_FILE:  # without its config a run cannot be read: it goes as a whole
        return f"rm -r {path.parent}"
    level = level_of(path.parent.name)
    if level is None or path.name.startswith("resume"):  # a resume file alone: that training restarts
        return f"rm {path}"
    dirs = [d for shared in _sharing(path.parent) for d in _level_and_later(shared)]
    return "rm -r " + " ".join(str(d) for d in dict.fromkeys(dirs))


def _level_and_later(level_dir: Path) -> list[Path]:
    """A level and the later levels of its run (each pruned from the one before)."""
    run_dir, level = level_dir.parent, level_of(level_dir.name)
    if level is None or not run_dir.is_dir():
        return [level_dir]
    later = [run_dir / level_dir_name(L) for L in levels_in(run_dir) if L >= level]
    return later or [level_dir]


def _sharing(level_dir: Path) -> list[Path]:
    """The level folders holding the same files as `level_dir` (hard links: damage to one is damage to
    all): the level it adopted, and every level that adopted either."""
    store, source = level_dir.parent.parent, _adopted_name(level_dir)
    roots = [level_dir] + ([store / source] if source else [])
    names = {f"{root.parent.name}/{root.name}" for root in roots}
    adopters = [p.parent for p in sorted(store.glob(f"*/level_*/{SUMMARY_FILE}")) if _adopted_name(p.parent) in names]
    return roots + adopters


def _adopted_name(level_dir: Path) -> str | None:
    """`<hash>/level_<L>` that a level adopted (its summary's adopted_from), if it names a level of the store."""
    try:
        source = json.loads((level_dir / SUMMARY_FILE).read_text()).get("adopted_from")
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    parts = Path(source).parts if isinstance(source, str) else ()
    return source if len(parts) == 2 and ".." not in parts and level_of(parts[1]) is not None else None


def damaged(path: str | Path, what: str) -> StoreError:
    return StoreError(f"{what} {path}; repair: `{repair(path)}`, then rerun the command that made it")


def _json_digest(value: Mapping[str, Any]) -> str:
    body = {k: v for k, v in value.items() if k != CHECKSUM_KEY}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def resume_group_file(members: str) -> str:
    """The resume file of a stacked group of runs, named by a digest of its members."""
    return f"resume_group_{members}.pt"


def step_file(iteration: int) -> str:
    """The weights after `iteration` steps (a rewind checkpoint)."""
    return f"step_{iteration}it.safetensors"


def step_optimizer_file(iteration: int) -> str:
    """The optimizer state after `iteration` steps (rewinding the optimizer; the data-order copy of level 0)."""
    return f"step_{iteration}it_optimizer.pt"


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", advice: str = "pass a writable --store") -> Iterator[Any]:
    """Write `path` whole or not at all; an error names the path, and `advice` (which flag to change)
    unless the disk is full."""
    from .distributed import is_main

    if not is_main():  # under torchrun only rank 0 writes; the others compute the same bytes
        yield io.BytesIO() if "b" in mode else io.StringIO()
        return
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        blocker = next((p for p in (path.parent, *path.parent.parents) if p.exists() and not p.is_dir()), None)
        if blocker is not None and level_of(blocker.name) is not None:  # (a file where a level's folder belongs)
            raise StoreError(f"cannot write {path}: {blocker} is a file, not a folder; repair: `rm {blocker}`, then "
                             "rerun the command") from None
        if blocker is not None:  # ("File exists" would not say which)
            raise StoreError(f"cannot write {path}: {blocker} is a file, not a folder; {advice}") from None
        raise StoreError(f"cannot write {path}: {exc.strerror}; {advice}") from None
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):  # the previous file is intact
            raise StoreError(f"cannot write {path}: {exc.strerror or exc}; free some space (the previous "
                             "version of the file is kept) and rerun to resume") from None
        if isinstance(exc, OSError):
            raise StoreError(f"cannot write {path}: {exc.strerror or exc}; {advice}") from None
        raise


def write_json(path: str | Path, value: Any) -> None:
    """JSON, atomically; an object carries the sha256 of its other keys (read_json checks it), except
    a run's config.json, whose hash is its directory's name."""
    if isinstance(value, Mapping) and Path(path).name != CONFIG_FILE:
        value = {**value, CHECKSUM_KEY: _json_digest(value)}
    with atomic_write(path, "w") as handle:
        json.dump(value, handle, indent=2, sort_keys=True)
        handle.write("\n")


def write_jsonl(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """One JSON object per line, then a last line {"sha256": ...} of the lines before it (read_jsonl checks it)."""
    text = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)
    with atomic_write(path, "w") as handle:
        handle.write(text + json.dumps({CHECKSUM_KEY: hashlib.sha256(text.encode()).hexdigest()}) + "\n")


def read_json(path: str | Path) -> Any:
    """A JSON file of the store, its checksum verified and removed (files written before checksums
    existed have none and are read as they are)."""
    try:
        value = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise damaged(path, "missing file") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise damaged(path, f"unreadable file ({type(exc).__name__})") from None
    if isinstance(value, dict) and CHECKSUM_KEY in value:
        if value[CHECKSUM_KEY] != _json_digest(value):
            raise damaged(path, "damaged file (checksum mismatch)")
        value = {k: v for k, v in value.items() if k != CHECKSUM_KEY}
    return value


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file, its checksum line verified and removed (files written before it
    existed have none)."""
    try:
        text = Path(path).read_text()
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except FileNotFoundError:
        raise damaged(path, "missing file") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise damaged(path, f"unreadable file ({type(exc).__name__})") from None
    if rows and isinstance(rows[-1], dict) and set(rows[-1]) == {CHECKSUM_KEY}:
        body = text[:text.rstrip("\n").rfind("\n") + 1]
        if hashlib.sha256(body.encode()).hexdigest() != rows[-1][CHECKSUM_KEY]:
            raise damaged(path, "damaged file (checksum mismatch)")
        rows = rows[:-1]
    return rows


def save_tensors(path: str | Path, tensors: Mapping[str, torch.Tensor]) -> None:
    """A standard safetensors file whose metadata holds the sha256 of its data section, so a
    damaged file is detected on load instead of silently read."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    digest = hashlib.sha256(_data_section(st_save(tensors))).hexdigest()  # offsets do not depend on metadata
    data = st_save(tensors, metadata={"sha256": digest})
    with atomic_write(path) as handle:
        handle.write(data)


def _header(data: bytes) -> tuple[dict, int]:
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + length]), 8 + length


def _data_section(data: bytes) -> bytes:
    return data[_header(data)[1]:]


def load_tensors(path: str | Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    try:
        data = Path(path).read_bytes()
        expected = _header(data)[0].get("__metadata__", {}).get("sha256")
        if expected is not None and hashlib.sha256(_data_section(data)).hexdigest() != expected:
            raise ValueError("checksum mismatch")
        tensors = st_load(data)
    except FileNotFoundError:
        raise damaged(path, "missing file") from None
    except (SafetensorError, OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise damaged(path, f"corrupt tensor file ({exc})") from None
    # safetensors hands the tensors back in an order that varies between processes; sort it, as
    # anything that walks the dict (random pruning draws layer by layer) must not depend on it
    return {k: tensors[k].to(device) for k in sorted(tensors)}


def save_checked(path: str | Path, payload: bytes) -> None:
    """Write `payload` behind a line holding its sha256 (for torch.save'd training state)."""
    with atomic_write(path) as handle:
        handle.write(hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)


def load_checked(path: str | Path) -> bytes:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise damaged(path, "missing file") from None
    digest, _, payload = data.partition(b"\n")
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        raise damaged(path, "corrupt checkpoint (checksum mismatch)")
    return payload


def load_torch_checked(path: str | Path, device: str | torch.device, advice: str) -> dict:
    """A torch.save'd training state (optimizer, resume) written by save_checked; a damaged one is a
    StoreError that ends with `advice` (what to delete to recompute it)."""
    import io

    payload = load_checked(path)
    try:
        return torch.load(io.BytesIO(payload), map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a damaged file
        raise StoreError(f"corrupt checkpoint {path} ({type(exc).__name__}); {advice}") from None


@dataclass(frozen=True)
class DataRecord:
    """The data a run was trained on: its dataset and a fingerprint of its content (lth.data_identity),
    kept in <run>/data.json. A run's address is its config alone (so stores written before keep their
    addresses); the record makes reading or extending it with other data an error instead."""

    dataset: str
    fingerprint: str
    examples: tuple[int, int]  # (training, test)

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "fingerprint": self.fingerprint, "examples": list(self.examples)}

    @classmethod
    def read(cls, path: Path) -> DataRecord:
        raw = read_json(path)
        try:
            return cls(str(raw["dataset"]), str(raw["fingerprint"]), (int(raw["examples"][0]), int(raw["examples"][1])))
        except (TypeError, KeyError, IndexError, ValueError):
            raise damaged(path, "data record of another shape in") from None


DataSource = Callable[[ExperimentConfig], "DataRecord | None"]  # the data this process reads for a config


class Run:
    """One content-addressed run: a config and its levels; `data_source`, when known, gives the data
    this process reads for it (recorded when the run is created, checked when it is read)."""

    def __init__(self, root: Path, config: ExperimentConfig, data_source: DataSource | None = None):
        self.config = config
        self.hash = config.hash()
        self.dir = root / self.hash
        self.data_source = data_source

    @property
    def data(self) -> DataRecord | None:
        return self.data_source(self.config) if self.data_source is not None else None

    def create(self) -> Run:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create run directory {self.dir}: {exc.strerror}; pass a writable --store") from None
        if not (self.dir / CONFIG_FILE).exists():
            write_json(self.dir / CONFIG_FILE, self.config.to_dict())
        else:  # a run extended is verified like a run read: its config must be the config of its address
            Store(self.dir.parent).stored_run(self.hash)
        if not (self.dir / DATA_FILE).exists() and self.data is not None:  # (a run stored before records it now)
            write_json(self.dir / DATA_FILE, self.data.to_json())
        return self

    def check_data(self) -> None:
        """Refuse a run trained on other data than this process reads for it (one line, naming both)."""
        path = self.dir / DATA_FILE
        if self.data_source is None or not path.exists():
            return
        stored, here = DataRecord.read(path), self.data
        if here is not None and stored.fingerprint != here.fingerprint:
            raise DataError(f"run {self.hash} was trained on other {stored.dataset} data (fingerprint "
                            f"{stored.fingerprint[:12]}, {stored.examples[0]}+{stored.examples[1]} examples) than this "
                            f"command reads ({here.fingerprint[:12]}, {here.examples[0]}+{here.examples[1]}); point "
                            "--data-root at the data it was trained on, or pass another --store for the new data")

    def lock(self, level: int, timeout: float = -1) -> FileLock:
        """A lock per level, so two processes never train the same level at once while different
        levels of one run (a baseline at level 2 and at level 3) may train side by side. flock() is
        released by the kernel when its holder dies, so a killed run leaves no stale lock."""
        return FileLock(str(self.dir / f"{level_dir_name(level)}.lock"), timeout=timeout)

    @contextlib.contextmanager
    def training(self, levels: Iterable[int], wait: bool = True) -> Iterator[None]:
        """Hold the locks of `levels` while training them; without `wait`, fail at once naming the
        holder. Locks are taken in ascending order (no deadlock between two callers), and a caller
        that waited finds the levels done by the holder. Under torchrun rank 0 holds them for all ranks."""
        from .distributed import is_main

        if not is_main():
            yield
            return
        with contextlib.ExitStack() as held:
            for level in sorted(levels):
                lock = self.lock(level, timeout=-1 if wait else 0)
                try:
                    lock.acquire()
                except Timeout:
                    holder = self.owner(level)
                    raise StoreError(f"run {self.hash} is being trained by another process (pid {holder.get('pid', '?')} "
                                     f"on {holder.get('host', '?')}); rerun without --no-wait to wait for it") from None
                held.callback(lock.release)
                held.enter_context(self._running(level))
                self._remove_temporaries(level)
                write_json(self.dir / f"{level_dir_name(level)}.owner.json", {"pid": os.getpid(), "host": socket.gethostname()})
            yield

    @contextlib.contextmanager
    def _running(self, level: int) -> Iterator[None]:
        """While a level trains, its holder also keeps an exclusive flock on `level_<L>.running`, which
        probes (level_locked) test with a shared one: a probe never touches the level's lock, so a
        `--no-wait` run cannot fail because `lth ls` or an executor driver looked at that moment.
        Probes hold their shared flock for microseconds; the holder waits them out (blocking)."""
        fd = os.open(self.dir / f"{level_dir_name(level)}.running", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # (releases the flock)

    def _remove_temporaries(self, level: int) -> None:
        """Temp files a killed writer left in a level or at the run's top level (atomic_write's
        `.<name>.*.tmp`: config, data record, failure marks). A write takes seconds: a temp file
        untouched for STALE_SECONDS is nobody's, whoever holds which lock."""
        for temp in [*self.level_dir(level).glob(".*.tmp"), *self.dir.glob(".*.tmp")]:
            with contextlib.suppress(OSError):
                if time.time() - temp.stat().st_mtime > STALE_SECONDS:
                    temp.unlink()

    def owner(self, level: int) -> dict[str, Any]:
        path = self.dir / f"{level_dir_name(level)}.owner.json"
        try:
            return read_json(path) if path.exists() else {}
        except StoreError:
            return {}

    def mark_failed(self, level: int, error: str, log: str | None = None) -> None:
        """Record why a level failed (shown by `lth ls`); cleared when the level succeeds."""
        write_json(self.dir / f"{level_dir_name(level)}.failed.json", {"level": level, "error": error, "log": log})

    def clear_failed(self, level: int) -> None:
        (self.dir / f"{level_dir_name(level)}.failed.json").unlink(missing_ok=True)

    def failures(self) -> list[dict[str, Any]]:
        found = []
        for path in sorted(self.dir.glob("level_*.failed.json")):
            try:
                found.append(read_json(path))
            except StoreError:
                found.append({"level": path.name.split(".")[0].removeprefix("level_"), "error": "(unreadable)"})
        return found

    def level_dir(self, level: int) -> Path:
        return self.dir / level_dir_name(level)

    def level_done(self, level: int) -> bool:
        return (self.level_dir(level) / SUMMARY_FILE).exists()

    def summary(self, level: int) -> dict[str, Any]:
        path = self.level_dir(level) / SUMMARY_FILE
        summary = read_json(path)
        required = ("test_accuracy", "weights_remaining")
        if not isinstance(summary, dict) or not all(key in summary for key in required) \
                or not all(isinstance(summary[key], kind) and not isinstance(summary[key], bool)
                           for key, kind in SUMMARY_SHAPE.items() if key in summary):
            raise damaged(path, f"summary of another shape ({', '.join(required)} expected, and {', '.join(SUMMARY_SHAPE)} "
                          "of their types) in")
        return summary

    def adopt_level(self, level: int, source: Run, source_level: int, files: Iterable[str],
                    summary: Mapping[str, Any]) -> None:
        """Make `level` the finished level `source_level` of `source`: hard links to its `files` (the
        same bytes, no copy; a copy where the file system cannot link), then `summary` (last)."""
        from .distributed import is_main

        if not is_main():
            return
        target = self.level_dir(level)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            temp = target / f".{name}.link.tmp"
            temp.unlink(missing_ok=True)
            try:
                os.link(source.level_dir(source_level) / name, temp)
            except FileNotFoundError:
                raise StoreError(f"missing file {source.level_dir(source_level) / name}; rerun the command that "
                                 "produces it") from None
            except OSError:  # (no hard links here, e.g. some network file systems)
                shutil.copyfile(source.level_dir(source_level) / name, temp)
            os.replace(temp, target / name)
        write_json(target / SUMMARY_FILE, dict(summary))

    def status(self) -> str:
        failures = self.failures()
        if failures:
            first = failures[0]
            log = f" (log: {first['log']})" if first.get("log") else ""
            return f"failed: level {first.get('level')}: {first.get('error', '')}{log}"
        if any(self.level_locked(level) for p in self.dir.glob("level_*.running") if (level := level_of(p.name)) is not None):
            return "locked/running"
        # a level writes start.safetensors when it begins and summary.json when it ends; between them
        # nobody holds its lock only if its process died (with or without a resume file to go on from)
        interrupted = [level for level in levels_in(self.dir) if (self.level_dir(level) / START_FILE).exists()
                       and not (self.level_dir(level) / SUMMARY_FILE).exists()]
        return f"interrupted in level {interrupted[0]} (rerun the command to resume)" if interrupted else "ok"

    def level_locked(self, level: int) -> bool:
        """Whether some process trains this level now, tested without taking its lock (see _running)."""
        try:
            fd = os.open(self.dir / f"{level_dir_name(level)}.running", os.O_RDONLY)
        except OSError:  # never trained here, or unreadable: nobody we can see trains it
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        except OSError:
            return False
        finally:
            os.close(fd)

    def levels_done(self) -> list[int]:
        """Finished levels (branches other than data-order start at level 1)."""
        return levels_done_in(self.dir)


def levels_in(run_dir: Path) -> list[int]:
    """The level folders of a run directory, in order (stray names such as `level_1.bak/` are not levels)."""
    found = (level_of(p.name) for p in Path(run_dir).glob("level_*") if p.is_dir())
    return sorted(level for level in found if level is not None)


def levels_done_in(run_dir: Path) -> list[int]:
    """The finished levels in a run directory."""
    return [level for level in levels_in(run_dir) if (Path(run_dir) / level_dir_name(level) / SUMMARY_FILE).exists()]


class Store:
    @classmethod
    def of(cls, store: Store | str | Path) -> Store:
        """A store given as a Store or as its folder."""
        return store if isinstance(store, Store) else cls(store)

    def __init__(self, root: str | Path = DEFAULT_STORE):
        self.root = Path(root)
        # the data this process reads for a config (lth.data_identity.bind), asked only when a run is read or
        # created; the runs checked against it
        self.data_source: DataSource | None = None
        self._checked: set[str] = set()

    def use_data(self, source: DataSource) -> None:
        self.data_source = source
        self._checked.clear()

    def run(self, config: ExperimentConfig) -> Run:
        run = Run(self.root, config, self.data_source)
        if self.data_source is not None and run.hash not in self._checked and run.dir.is_dir():
            run.check_data()
            self._checked.add(run.hash)
        return run

    @property
    def cache_dir(self) -> Path:
        return self.root / "_cache"

    def stored_run(self, run_hash: str) -> Run:
        """The run stored under `run_hash`, from its config.json, which must be the config of that
        address: a damaged, edited, copied or renamed run directory is named, never read."""
        path = self.root / run_hash / CONFIG_FILE
        try:
            run = Run(self.root, ExperimentConfig.from_dict(read_json(path)))
        except ConfigError as exc:
            raise damaged(path, f"config that lth cannot read ({exc}) in") from None
        if run.hash != run_hash:
            raise StoreError(f"{path.parent} holds the config of run {run.hash}, not of {run_hash} (a copied, renamed "
                             f"or edited run directory would be counted twice); repair: `rm -r {path.parent}`")
        return run

    def runs(self) -> list[Run]:
        """Every run in the store, each verified (stored_run); directories without a config.json
        (_cache, _jobs, a report) are not runs."""
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"--store {self.root} is a file, not a store directory")
        return [self.stored_run(path.parent.name) for path in sorted(self.root.glob(f"*/{CONFIG_FILE}"))]


__all__ = ["Store", "Run", "atomic_write", "CONFIG_FILE", "MASK_FILE", "START_FILE", "FINAL_FILE", "METRICS_FILE", "SUMMARY_FILE",
           "EXECUTION_FILE", "DATA_FILE", "step_file", "step_optimizer_file", "save_tensors", "load_tensors", "write_json", "read_json",
           "write_jsonl", "read_jsonl", "DEFAULT_STORE", "Timeout"]
