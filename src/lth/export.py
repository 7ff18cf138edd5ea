"""Take tickets out: a stored level as (a) a state_dict in torch.nn.utils.prune's form
(`<name>_orig` + `<name>_mask` per pruned weight) or (b) one safetensors file with the weights
and the masks. `load_ticket` puts either onto a fresh model.

Loading (a) in plain PyTorch, for each pruned module:
    torch.nn.utils.prune.identity(module, "weight")      # creates weight_orig and weight_mask
    model.load_state_dict(torch.load("ticket.pt"))      # the mask now gates the weight
"""
from __future__ import annotations

import io
from pathlib import Path

import torch
from safetensors.torch import load_file, save as st_save
from torch import nn

from .errors import ConfigError, StoreError
from .masks import Mask
from .store import (CONFIG_FILE, FINAL_FILE, MASK_FILE, START_FILE, SUMMARY_FILE, atomic_write, level_dir_name,
                    levels_done_in, load_tensors, read_json)

FORMATS = ("torch-prune", "safetensors")


def find_run(store: str | Path, run: str) -> Path:
    """A run directory from a path, or a hash (or unique prefix of one) in `store`."""
    path = Path(run)
    if (path / CONFIG_FILE).exists():
        return path
    matches = [p.parent for p in Path(store).glob(f"{run}*/{CONFIG_FILE}")]
    if len(matches) != 1:
        found = "no run" if not matches else f"{len(matches)} runs"
        raise ConfigError(f"{found} match {run!r} in store {store}; `lth ls --store {store}` lists them")
    return matches[0]


def export_ticket(run_dir: str | Path, level: int, out: str | Path, fmt: str = "safetensors",
                  weights: str = "final") -> Path:
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose {', '.join(FORMATS)}")
    if weights not in ("final", "rewind"):
        raise ConfigError(f"--weights must be 'final' or 'rewind', got {weights!r}")
    level_dir = Path(run_dir) / level_dir_name(level)
    store, target = Path(run_dir).resolve().parent, Path(out).resolve()
    inside = target.relative_to(store).parts if target.is_relative_to(store) else ()
    if len(inside) > 1 or (inside and inside[0].startswith("_")):  # (it would overwrite the store's own files)
        raise ConfigError(f"--out {out} lies inside the store {store} (its runs' folders or its own _files); write "
                          "the ticket elsewhere")
    if not (level_dir / SUMMARY_FILE).exists():
        done = levels_done_in(Path(run_dir))
        finished = f"its finished levels: {', '.join(map(str, done))}" if done else "no level of it is finished"
        raise StoreError(f"level {level} of {run_dir} is not finished ({finished}); run it first")
    state = load_tensors(level_dir / (FINAL_FILE if weights == "final" else START_FILE))
    mask = Mask.load(level_dir / MASK_FILE)
    out = Path(out)
    if fmt == "safetensors":
        tensors = {f"weights/{k}": v for k, v in state.items()} | {f"masks/{k}": v for k, v in mask.state_dict().items()}
        summary = read_json(level_dir / SUMMARY_FILE)
        data = st_save(tensors, metadata={"run": Path(run_dir).name, "level": str(level), "weights": weights,
                                          "weights_remaining": str(summary["weights_remaining"])})
    else:
        pruned = dict(state)
        for name, keep in mask.tensors.items():
            pruned[f"{name}_orig"] = pruned.pop(name)
            pruned[f"{name}_mask"] = keep.to(state[name].dtype)
        buffer = io.BytesIO()
        torch.save(pruned, buffer)
        data = buffer.getvalue()
    with atomic_write(out, advice="pass another --out") as handle:
        handle.write(data)
    return out


def load_ticket(path: str | Path, model: nn.Module) -> tuple[nn.Module, Mask]:
    """Load an exported ticket onto `model` (plain parameters, pruned weights zeroed); returns (model, mask)."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            tensors = load_file(path)
            state = {k.removeprefix("weights/"): v for k, v in tensors.items() if k.startswith("weights/")}
            mask = Mask({k.removeprefix("masks/"): v for k, v in tensors.items() if k.startswith("masks/")})
        else:
            pruned = torch.load(path, map_location="cpu", weights_only=True)
            names = [k.removesuffix("_mask") for k in pruned if k.endswith("_mask")]
            mask = Mask({n: pruned[f"{n}_mask"] for n in names})
            state = {k: v for k, v in pruned.items() if not k.endswith(("_orig", "_mask"))}
            state.update({n: pruned[f"{n}_orig"] * pruned[f"{n}_mask"] for n in names})
    except FileNotFoundError:
        raise ConfigError(f"no ticket file {path}") from None
    except Exception as exc:  # noqa: BLE001 - both loaders raise many types for a damaged file
        raise StoreError(f"cannot read ticket {path} ({type(exc).__name__}: {exc})") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ConfigError(f"ticket {path} does not fit this model: {str(exc).splitlines()[0]}") from None
    mask.apply_(model)
    return model, mask
