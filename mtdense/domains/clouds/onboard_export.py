"""On-board export: one ONNX graph from raw sensor DN to a cloud mask, and its int8 version.

The graph takes ``dn`` (B×4×H×W uint16, the band order of the training data) and returns
``mask`` (B×H×W uint8: 0 clear, 1 cloud, 255 nodata = DN 0 in every band). Inside: cast,
reflectance = gain·DN + offset (``sensors.py``), zeroed nodata, the network, argmax, nodata
flag — so the satellite's software feeds the detector's raw tile and gets the mask back.
Height and width are dynamic.

int8: ``onnxruntime.quantization.quantize_static`` (QDQ format, per-channel int8 weights,
uint8 activations; MinMax calibration) fed by a ``CalibrationDataReader`` over DN tiles of the
training data, after onnxruntime's ``quant_pre_process`` (shape inference + graph
optimisation). The mask output and its nodata logic stay integer.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from mtdense.domains.clouds.sensors import sensor as find_sensor
from mtdense.errors import ExportError

NODATA = 255


class OnboardCloudMask(nn.Module):
    """raw DN → reflectance → network logits (B×2×H×W) → uint8 mask with nodata flagged."""

    def __init__(self, net: nn.Module, sensor: str, output: str | None = None):
        super().__init__()
        s = find_sensor(sensor)
        self.net, self.output = net.eval(), output
        self.gain, self.offset = float(s.gain), float(s.offset)

    def forward(self, dn: torch.Tensor) -> torch.Tensor:
        x = dn.to(torch.float32)  # in ONNX the uint16 → float cast is the graph's first node (``uint16_input``)
        nodata = (x == 0).all(dim=1)
        refl = torch.where(nodata[:, None], torch.zeros_like(x), x * self.gain + self.offset)
        logits = self.net(refl)
        if self.output is not None:
            logits = logits[self.output]
        mask = logits.argmax(dim=1).to(torch.uint8)
        return torch.where(nodata, torch.full_like(mask, NODATA), mask)


def onboard_module(source: str | Path, sensor: str | None = None, task: str = "cloud") -> tuple[OnboardCloudMask, str]:
    """(module, sensor) for an nnU-Net-like teacher folder or an mtdense checkpoint/run folder."""
    source = Path(source)
    if (source / "plan.json").is_file():
        from mtdense.domains.clouds.nnunet_like import load_nnunet_like

        net, _ = load_nnunet_like(source)
        sensor = sensor or "landsat8_l1"
        return OnboardCloudMask(net, sensor), sensor
    from mtdense.inference.predict import load_experiment

    exp = load_experiment(source)
    if task not in exp.tasks:
        raise ExportError(f"{source}: no task {task!r} to export (tasks: {', '.join(exp.tasks)})")
    train = exp.cfg.data.get("train") or {}
    inner = train.get("dataset", train) if train.get("type") == "with_soft_targets" else train
    default = "sentinel2_l2a" if inner.get("type") == "oncloudn" else "landsat8_l1"
    sensor = sensor or inner.get("sensor") or default
    return OnboardCloudMask(exp.model.cpu(), sensor, output=task), sensor


def export_onboard(source: str | Path, out: str | Path, sensor: str | None = None, size: int = 128,
                   opset: int = 17) -> Path:
    """Write the raw-DN → mask ONNX graph of ``source`` to ``out``."""
    import onnx

    from mtdense.inference.export import _quiet_tracing

    module, sensor = onboard_module(source, sensor)
    example = torch.randint(1, 30000, (1, 4, size, size)).float()
    buffer = io.BytesIO()
    with torch.no_grad(), _quiet_tracing(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*instance_norm.*")  # InstanceNorm always uses input statistics
        torch.onnx.export(module, (example,), buffer, opset_version=opset, dynamo=False, input_names=["dn"],
                          output_names=["mask"], dynamic_axes={"dn": {0: "batch", 2: "height", 3: "width"},
                                                               "mask": {0: "batch", 1: "height", 2: "width"}})
    proto = uint16_input(onnx.load_from_string(buffer.getvalue()))
    onnx.helper.set_model_props(proto, {"mtdense.source": str(source), "mtdense.sensor": sensor,
                                        "mtdense.mask": "0 clear, 1 cloud, 255 nodata"})
    onnx.checker.check_model(proto)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    tmp.write_bytes(proto.SerializeToString())
    tmp.replace(out)
    return out


def uint16_input(proto):
    """Make the float input ``dn`` a uint16 input followed by a Cast (TorchScript's exporter has no uint16)."""
    import onnx

    graph = proto.graph
    for node in graph.node:
        node.input[:] = ["dn_float" if name == "dn" else name for name in node.input]
    graph.node.insert(0, onnx.helper.make_node("Cast", ["dn"], ["dn_float"], to=onnx.TensorProto.FLOAT, name="dn_cast"))
    graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.UINT16
    return proto


def session(path: str | Path, threads: int = 1):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_mask(sess, dn: np.ndarray) -> np.ndarray:
    return sess.run(None, {"dn": dn.astype(np.uint16)})[0]


class DNCalibrationReader:
    """``onnxruntime.quantization.CalibrationDataReader`` over DN tiles (one tile per call)."""

    def __init__(self, tiles: Iterable[np.ndarray], input_name: str = "dn"):
        self.items = iter([{input_name: t[None].astype(np.uint16) if t.ndim == 3 else t.astype(np.uint16)}
                           for t in tiles])

    def get_next(self):
        return next(self.items, None)


def quantize_int8(fp32: str | Path, out: str | Path, calibration: Sequence[np.ndarray]) -> Path:
    """Static int8 quantisation (QDQ, per-channel weights) calibrated on DN ``calibration`` tiles."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration:
        raise ExportError("int8 quantisation needs at least one calibration tile")
    reader = type("Reader", (DNCalibrationReader, CalibrationDataReader), {})(calibration)
    out = Path(out)
    pre = out.with_name(out.stem + ".pre.onnx")
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser warns once per 1-D (normalisation) weight it keeps per tensor
    try:
        quantize_static(str(pre), str(out), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
        pre.unlink(missing_ok=True)
    return out
