"""Self-describing, verified, atomic checkpoints.

A checkpoint is a folder ``<run>/checkpoints/step_<N>/`` holding
- ``model.safetensors``: the weights, with the resolved config and the model spec (input
  channels and their names, task output channels) in the safetensors metadata, so the file
  alone can rebuild the model for ``evaluate``, ``predict``, ``export`` or distillation;
- ``trainer_state.pt``: optimizer, scheduler, balancer, teachers, hooks, step/epoch counters,
  RNG states — read with ``torch.load(weights_only=True)``, so no pickled code ever runs;
- ``manifest.json``: the SHA-256 of both files, written last. A folder with a manifest is
  complete; every read verifies the checksums, so a flipped byte is an error naming the file,
  never a silently different score.

Saving refuses non-finite weights or statistics (a NaN blow-up never overwrites the last good
checkpoint), writes under a temporary name, renames into place (never over an existing folder),
then switches the ``last``/``best`` pointer files atomically; only then are old checkpoints
pruned. A pointer may only name a sibling folder inside its own ``checkpoints/`` folder.
Loading treats the stored config as plain data: a checkpoint whose config holds an
interpolation (``${...}``) is refused, and weight-loading options (``checkpoint_path``,
``pretrained``) are switched off because the weights come from the checkpoint itself.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any, Iterator

import torch
import yaml
from omegaconf import OmegaConf
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from mtdense import __version__
from mtdense.atomic_write import atomic_path, write_text
from mtdense.engine.file_modes import apply_umask
from mtdense.errors import CheckpointError

FORMAT = "mtdense-checkpoint/2"
READABLE_FORMATS = ("mtdense-checkpoint/1", FORMAT)
MODEL_FILE = "model.safetensors"
STATE_FILE = "trainer_state.pt"
MANIFEST = "manifest.json"
TMP_MARK = ".tmp"  # atomic_write's temporary siblings are named <name>.tmp<pid>
POINTER_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
WEIGHT_LOADING_KEYS = {"checkpoint_path": None, "pretrained": False, "pretrained_cfg_overlay": None,
                       "encoder_weights": None}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tensors(obj: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _tensors(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{prefix}.{i}")


def non_finite(obj: Any) -> list[str]:
    """Names of the floating-point tensors in ``obj`` (nested dicts/lists) holding NaN or Inf."""
    return [name for name, t in _tensors(obj) if t.is_floating_point() and not bool(torch.isfinite(t).all())]


def write_pointer(path: Path, target: str) -> None:
    write_text(path, target + "\n")


def _free_name(ckpt_dir: Path, name: str) -> str:
    """``name``, or ``name-1``, ``name-2`` … if a folder of that name exists: never overwrite."""
    candidate, k = name, 0
    while (ckpt_dir / candidate).exists():
        k += 1
        candidate = f"{name}-{k}"
    return candidate


def save_checkpoint(folder: Path, model_state: dict[str, torch.Tensor], config_yaml: str, spec: dict[str, Any],
                    trainer_state: dict[str, Any] | None) -> Path:
    """Write a complete, verified checkpoint at ``folder`` (or a free sibling name); return it."""
    folder = Path(folder)
    bad = non_finite(model_state) + [f"trainer_state.{n}" for n in non_finite(trainer_state or {})]
    if bad:
        raise CheckpointError(f"{folder}: not saved: non-finite values in {', '.join(bad[:5])}"
                              f"{' …' if len(bad) > 5 else ''}; the previous checkpoints are kept")
    ckpt_dir = folder.parent
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    folder = ckpt_dir / _free_name(ckpt_dir, folder.name)  # so atomic_path never replaces a folder
    tensors = {k: v.detach().cpu().contiguous() for k, v in model_state.items()}
    metadata = {"format": FORMAT, "mtdense_version": __version__, "config": config_yaml, "spec": json.dumps(spec)}
    try:
        with atomic_path(folder) as tmp:
            tmp.mkdir()
            save_file(tensors, str(tmp / MODEL_FILE), metadata=metadata)
            apply_umask(tmp / MODEL_FILE)  # safetensors creates 0600 files
            if trainer_state is not None:
                torch.save(trainer_state, tmp / STATE_FILE)
            sums = {f.name: _sha256(f) for f in sorted(tmp.iterdir())}
            (tmp / MANIFEST).write_text(json.dumps({"format": FORMAT, "sha256": sums}, indent=1) + "\n")
    except OSError as exc:
        raise CheckpointError(f"{folder}: cannot write checkpoint ({exc.strerror or exc}); "
                              "the previous checkpoints are intact") from exc
    return folder


def _read_pointer(pointer: Path) -> Path:
    """The sibling checkpoint folder a ``last``/``best`` pointer names (validated)."""
    try:
        raw = pointer.read_bytes()
        name = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CheckpointError(f"{pointer}: not a checkpoint pointer (not UTF-8 text); delete it") from None
    if not POINTER_NAME.match(name) or name in (".", ".."):
        raise CheckpointError(f"{pointer}: refuses to follow {name[:80]!r}: a pointer may only name a checkpoint "
                              "folder next to it")
    return pointer.parent / name


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a checkpoint folder, its model file, a pointer file (``last``/``best``), or a run
    folder (then its ``checkpoints/last``)."""
    p = Path(path)
    if p.is_file() and p.name == MODEL_FILE:
        return p.parent
    if (p / MODEL_FILE).is_file():
        return p
    for pointer in (p, p / "checkpoints" / "last", p / "last"):
        if pointer.is_file() and pointer.stat().st_size < 256:
            target = _read_pointer(pointer)
            if (target / MODEL_FILE).is_file():
                return target
            raise CheckpointError(f"{pointer}: points to {target}, which holds no {MODEL_FILE}")
    raise CheckpointError(
        f"{p}: no checkpoint here; pass a checkpoint folder (with {MODEL_FILE}) or a run folder with checkpoints/last"
    )


def verify_checkpoint(folder: Path) -> None:
    """Check the manifest's SHA-256 of every file (checkpoints of format 1 have none)."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return
    try:
        sums = json.loads(manifest.read_text())["sha256"]
    except (ValueError, KeyError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{manifest}: unreadable manifest ({exc}); use another checkpoint") from exc
    for name, expected in sums.items():
        if not (folder / name).is_file():
            raise CheckpointError(f"{folder / name}: missing (listed in {MANIFEST}); use another checkpoint")
        if _sha256(folder / name) != expected:
            raise CheckpointError(f"{folder / name}: checksum mismatch — the file is corrupt or was modified; "
                                  "use another checkpoint")


def _plain_config(text: str, source: Path) -> Any:
    """The stored config as plain data; interpolations and weight downloads are refused/disabled."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CheckpointError(f"{source}: stored config is not valid YAML ({exc})".replace("\n", " ")) from exc
    for key, value in _leaves(data):
        if isinstance(value, str) and "${" in value:
            raise CheckpointError(f"{source}: stored config has an interpolation at {key} ({value[:60]!r}); "
                                  "mtdense stores resolved configs, so this checkpoint was altered — refusing it")
    _disable_weight_loading(data.get("model") if isinstance(data, dict) else None)
    return data


def _leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, f"{prefix}.{i}")
    else:
        yield prefix, node


def _disable_weight_loading(node: Any) -> None:
    if isinstance(node, dict):
        for key, off in WEIGHT_LOADING_KEYS.items():
            if key in node:
                node[key] = off
        for v in node.values():
            _disable_weight_loading(v)
    elif isinstance(node, list):
        for v in node:
            _disable_weight_loading(v)


def read_checkpoint(path: str | Path, with_state: bool = False) -> dict[str, Any]:
    folder = resolve_checkpoint(path)
    verify_checkpoint(folder)
    model_file = folder / MODEL_FILE
    try:
        with safe_open(str(model_file), framework="pt") as f:
            meta = f.metadata() or {}
        weights = load_file(str(model_file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{model_file}: unreadable or corrupt checkpoint ({exc}); use another checkpoint") from exc
    if meta.get("format") not in READABLE_FORMATS:
        raise CheckpointError(f"{model_file}: not an mtdense checkpoint (format {meta.get('format')!r})")
    try:
        spec = json.loads(meta["spec"])
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{model_file}: no readable model spec in its metadata") from exc
    out = {"folder": folder, "weights": weights, "config": OmegaConf.create(_plain_config(meta.get("config", ""), model_file)),
           "spec": spec}
    if with_state:
        out["state"] = read_trainer_state(folder)
    return out


def read_trainer_state(folder: Path) -> dict[str, Any]:
    state_file = folder / STATE_FILE
    if not state_file.is_file():
        raise CheckpointError(f"{state_file}: missing; this checkpoint holds weights only and cannot resume training")
    try:
        return torch.load(state_file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's own message suggests weights_only=False: never do that here
        raise CheckpointError(f"{state_file}: unreadable trainer state ({type(exc).__name__}); the file is corrupt "
                              "or was not written by mtdense — resume from another checkpoint") from None


def complete_checkpoints(ckpt_dir: Path) -> list[Path]:
    """Finished checkpoint folders (with a manifest or, format 1, a model file), oldest first."""
    if not ckpt_dir.is_dir():
        return []
    found = [p for p in ckpt_dir.glob("step_*") if p.is_dir() and TMP_MARK not in p.name
             and ((p / MANIFEST).is_file() or (p / MODEL_FILE).is_file())]
    return sorted(found, key=lambda p: (p.name.split("-")[0], len(p.name), p.name))


def resume_checkpoint(path: str | Path) -> tuple[Path, str | None]:
    """The checkpoint to resume from, and a note when it is not the one ``last`` names.

    A dangling or corrupt ``last`` (or newest) checkpoint falls back to the newest complete
    checkpoint that verifies and has a trainer state."""
    p = Path(path)
    try:
        folder = resolve_checkpoint(p)
        verify_checkpoint(folder)
        read_trainer_state(folder)
        return folder, None
    except CheckpointError as first:
        run = p if (p / "checkpoints").is_dir() else (p.parent if p.name == "checkpoints" else None)
        if run is None:
            raise
        for candidate in reversed(complete_checkpoints(run / "checkpoints")):
            try:
                verify_checkpoint(candidate)
                read_trainer_state(candidate)
            except CheckpointError:
                continue
            return candidate, f"{first} — resuming from {candidate} instead (the newest complete checkpoint)"
        raise


def clean_temporary(ckpt_dir: Path) -> list[Path]:
    """Remove what interrupted saves left behind (temporary folders and pointer files)."""
    removed = []
    if ckpt_dir.is_dir():
        for p in ckpt_dir.glob(f"*{TMP_MARK}*"):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
            removed.append(p)
    return removed


def prune_checkpoints(ckpt_dir: Path, keep: int, protect: set[str]) -> None:
    """Delete all but the newest ``keep`` complete checkpoints, never one in ``protect``."""
    steps = complete_checkpoints(ckpt_dir)
    for old in steps[: max(0, len(steps) - keep)]:
        if old.name not in protect:
            shutil.rmtree(old, ignore_errors=True)
