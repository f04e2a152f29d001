"""Export a checkpoint's multi-task model to ONNX (opset 17 by default) or TorchScript.

The exported graph takes ``image`` (B×C×H×W in the raw units of the training data: the
checkpoint's input normalisation is inside the graph) and returns one
output per task, named by the task, in the checkpoint's task order: the raw head outputs
(B×K×H×W logits or values), or with ``predictions=True`` each task's prediction as
``task.predict_from`` makes it (class ids B×H×W, rates after activation, inverse transform and
gating). Batch, height and width are dynamic axes. ONNX export uses the TorchScript-based
exporter (``torch.onnx.export(..., dynamo=False)``; the dynamo exporter needs onnxscript).
The input channel names (and what the dataset says about them, e.g. central wavelengths), the
input normalisation applied inside the graph (per-channel mean/std in raw units, or null), each
task's post-processing, task list and output mode are stored as ONNX metadata properties /
a TorchScript extra file ``mtdense.json``, so a deployed file says what it expects.

``check_export`` runs the exported file (onnxruntime, or ``torch.jit.load``) on random inputs
at the export size and at a second size (+32 pixels each way, 2 images; inputs drawn as
mean + std × N(0, 1) in raw units when the checkpoint has a normalisation) and compares with
PyTorch: float outputs must agree within ``tolerance`` × max(1, max |PyTorch output|); integer
outputs (class ids) may differ at no more than ``max_flipped`` of the pixels, since near-ties of
logits can legitimately flip under float rounding.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch import nn

from mtdense.atomic_write import write_bytes
from mtdense.data.normalization import normalize
from mtdense.errors import ExportError
from mtdense.engine.builder import predictions as task_predictions
from mtdense.engine.checkpoint import read_checkpoint
from mtdense.inference.predict import experiment_from
from mtdense.errors import ConfigError

FORMATS = ("onnx", "torchscript")


class ExportedModel(nn.Module):
    """Raw image → normalisation → the multi-task model → a tuple of per-task outputs (raw, or
    task predictions)."""

    def __init__(self, model: nn.Module, tasks: nn.ModuleDict, in_channels: int, predictions: bool = False,
                 normalization: dict | None = None):
        super().__init__()
        self.model, self.tasks, self.predictions = model, tasks, predictions
        self.in_channels = in_channels
        self.task_names = list(tasks)
        self.normalization = normalization

    def example_input(self, batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
        """Random raw input: mean + std × N(0, 1) per channel (N(0, 1) without normalisation)."""
        x = torch.randn(batch, self.in_channels, height, width, generator=torch.Generator().manual_seed(seed))
        if self.normalization is None:
            return x
        mean, std = (torch.tensor(self.normalization[k]).view(1, -1, 1, 1) for k in ("mean", "std"))
        return mean + std * x

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(normalize(image, self.normalization))
        if self.predictions:
            out = task_predictions(self.tasks, out)
        return tuple(out[name] for name in self.task_names)


def _dynamic_axes(wrapper: ExportedModel) -> dict[str, dict[int, str]]:
    image_axes = {0: "batch", 2: "height", 3: "width"}
    out_axes = {0: "batch", 1: "height", 2: "width"} if wrapper.predictions else image_axes
    return {"image": image_axes, **{name: out_axes for name in wrapper.task_names}}


def _description(wrapper: ExportedModel, spec: dict, checkpoint: str) -> dict[str, str]:
    return {"mtdense.checkpoint": checkpoint,
            "mtdense.channel_names": json.dumps(spec["channel_names"]),
            "mtdense.channel_info": json.dumps(spec.get("channel_info")),
            "mtdense.input": "raw units; the normalisation below is applied inside the graph",
            "mtdense.normalization": json.dumps(spec["normalization"]),
            "mtdense.postprocessing": json.dumps(spec["postprocessing"]),
            "mtdense.tasks": json.dumps({n: t.out_channels for n, t in wrapper.tasks.items()}),
            "mtdense.outputs": "predictions" if wrapper.predictions else "raw"}


@contextlib.contextmanager
def _quiet_tracing():
    """Silence tracing chatter: the deprecation notices of TorchScript and of the TorchScript-based
    ONNX exporter, and TracerWarnings about shape checks frozen into the graph (``check_export``
    is the guard that the graph still holds at other sizes)."""
    with warnings.catch_warnings():
        for category in (DeprecationWarning, FutureWarning, torch.jit.TracerWarning):
            warnings.simplefilter("ignore", category)
        yield


def _onnx_bytes(wrapper: ExportedModel, example: torch.Tensor, opset: int, description: dict[str, str]) -> bytes:
    import onnx

    buffer = io.BytesIO()
    with _quiet_tracing():
        torch.onnx.export(wrapper, (example,), buffer, opset_version=opset, dynamo=False, input_names=["image"],
                          output_names=wrapper.task_names, dynamic_axes=_dynamic_axes(wrapper))
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(proto, description)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _torchscript_bytes(wrapper: ExportedModel, example: torch.Tensor, description: dict[str, str]) -> bytes:
    with _quiet_tracing():
        traced = torch.jit.trace(wrapper, (example,), check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer, _extra_files={"mtdense.json": json.dumps(description)})
    return buffer.getvalue()


def export_model(checkpoint: str | Path, out: str | Path, fmt: str = "onnx", height: int = 64, width: int = 64,
                 opset: int = 17, predictions: bool = False, overrides: Iterable[str] = ()) -> tuple[Path, ExportedModel]:
    """Write the checkpoint's model to ``out``; returns the path and the PyTorch module exported."""
    if fmt not in FORMATS:
        raise ConfigError(f"export: format {fmt!r} is not one of {', '.join(FORMATS)}")
    if height < 1 or width < 1:
        raise ConfigError(f"export: --height/--width must be positive, got {height}×{width}")
    exp = experiment_from(read_checkpoint(checkpoint), overrides)
    spec = exp.spec()
    wrapper = ExportedModel(exp.model.cpu(), exp.tasks.cpu(), len(exp.channel_names), predictions,
                            spec["normalization"]).eval()
    example = wrapper.example_input(1, height, width)
    description = _description(wrapper, spec, str(checkpoint))
    with torch.no_grad():
        if fmt == "onnx":
            data = _onnx_bytes(wrapper, example, opset, description)
        else:
            data = _torchscript_bytes(wrapper, example, description)
    out = Path(out)
    write_bytes(out, data)
    return out, wrapper


def _runner(path: Path, fmt: str):
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda x: session.run(None, {"image": x.numpy()})
    with _quiet_tracing():
        loaded = torch.jit.load(str(path))
    return lambda x: [t.numpy() for t in loaded(x)]


@torch.no_grad()
def check_export(path: str | Path, wrapper: ExportedModel, height: int, width: int, fmt: str = "onnx",
                 tolerance: float = 1e-4, max_flipped: float = 1e-3, seed: int = 0) -> list[dict]:
    """Compare the exported file with PyTorch at (1, H, W) and (2, H+32, W+32) on random inputs.

    Returns one record per (size, task): ``max_abs_diff`` and, for float outputs, the bound it
    must stay under; for integer outputs ``flipped`` (fraction of pixels that differ).
    Raises ``ExportError`` naming the first output that does not match."""
    run = _runner(Path(path), fmt)
    records = []
    for batch, h, w in ((1, height, width), (2, height + 32, width + 32)):
        image = wrapper.example_input(batch, h, w, seed)
        expected = [t.numpy() for t in wrapper(image)]
        for name, got, ref in zip(wrapper.task_names, run(image), expected):
            if got.shape != ref.shape:
                raise ExportError(f"export check: {name} has shape {got.shape} in {path}, PyTorch gives {ref.shape}")
            diff = float(np.abs(got.astype(np.float64) - ref.astype(np.float64)).max(initial=0.0))
            record = {"size": f"{batch}x{h}x{w}", "output": name, "max_abs_diff": diff}
            if np.issubdtype(ref.dtype, np.integer):
                record["flipped"] = float(np.mean(got != ref))
                ok = record["flipped"] <= max_flipped
            else:
                record["bound"] = tolerance * max(1.0, float(np.abs(ref).max(initial=0.0)))
                ok = diff <= record["bound"]
            records.append(record)
            if not ok:
                raise ExportError(f"export check: {name} at {record['size']} differs from PyTorch ({record}); "
                                  f"{path} does not reproduce the model")
    return records

