"""Export: ONNX and TorchScript files reproduce PyTorch at the export size and at another size."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from conftest import tiny_config
from mtdense.cli import main
from mtdense.config import from_dict
from mtdense.inference.predict import load_experiment
from mtdense.engine.trainer import Trainer
from mtdense.errors import ExportError
from mtdense.inference.export import check_export, export_model


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("export_run")
    cfg = tiny_config(out, max_epochs=1, keep_checkpoints=1)
    # a gated rain-rate-like regression exercises predict_from across tasks in the exported graph
    cfg["tasks"]["wet"] = {"type": "threshold_classification", "target": "height", "thresholds": [0.5]}
    cfg["tasks"]["height"]["gate"] = {"task": "wet", "mode": "hard"}
    cfg["logging"] = {"loggers": []}
    Trainer(from_dict(cfg)).fit()
    return out


def test_onnx_raw_outputs_match_pytorch_at_two_sizes(run_dir, tmp_path):
    path, wrapper = export_model(run_dir, tmp_path / "model.onnx", height=16, width=24)
    proto = onnx.load(str(path))
    assert [o.name for o in proto.graph.output] == ["semantic", "height", "wet"]
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["mtdense.channel_names"]) == ["band0", "band1", "band2"]
    assert json.loads(props["mtdense.tasks"]) == {"semantic": 3, "height": 1, "wet": 2}
    assert json.loads(props["mtdense.normalization"]) is None  # synthetic shapes are generated standardised
    assert json.loads(props["mtdense.postprocessing"])["semantic"]["rule"] == "argmax over channels"
    assert props["mtdense.outputs"] == "raw"
    # independent of check_export: onnxruntime vs the checkpoint's model at 1×16×24 and 3×40×20
    model = load_experiment(run_dir).model
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in ((1, 3, 16, 24), (3, 3, 40, 20)):
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
        got = dict(zip(["semantic", "height", "wet"], session.run(None, {"image": x.numpy()})))
        with torch.no_grad():
            ref = model(x)
        for name, value in ref.items():
            assert got[name].shape == tuple(value.shape)
            np.testing.assert_allclose(got[name], value.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
    records = check_export(path, wrapper, 16, 24)
    assert [r["size"] for r in records] == ["1x16x24"] * 3 + ["2x48x56"] * 3
    assert max(r["max_abs_diff"] for r in records) < 1e-4


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_onnx_predictions_and_torchscript(run_dir, tmp_path):
    path, wrapper = export_model(run_dir, tmp_path / "pred.onnx", height=16, width=24, predictions=True)
    records = {(r["size"], r["output"]): r for r in check_export(path, wrapper, 16, 24)}
    assert records["2x48x56", "semantic"]["flipped"] <= 1e-3  # class ids
    assert "bound" in records["2x48x56", "height"]  # gated rates are floats
    x = torch.randn(2, 3, 16, 24, generator=torch.Generator().manual_seed(2))
    semantic, height, wet = onnxruntime.InferenceSession(str(path)).run(None, {"image": x.numpy()})
    assert semantic.shape == (2, 16, 24) and semantic.dtype == np.int64
    assert ((height > 0) <= (wet == 1)).all()  # hard gate: no rain rate where the classifier says dry

    ts_path, ts_wrapper = export_model(run_dir, tmp_path / "model.pt", fmt="torchscript", height=16, width=24)
    assert max(r["max_abs_diff"] for r in check_export(ts_path, ts_wrapper, 16, 24, fmt="torchscript")) < 1e-5
    files = {"mtdense.json": ""}
    torch.jit.load(str(ts_path), _extra_files=files)
    assert json.loads(files["mtdense.json"])["mtdense.outputs"] == "raw"


def test_check_fails_when_the_file_is_another_model(run_dir, tmp_path):
    path, wrapper = export_model(run_dir, tmp_path / "model.onnx", height=16, width=24)
    with torch.no_grad():
        wrapper.model.heads["height"].parameters().__next__().add_(0.5)
    with pytest.raises(ExportError, match="height at 1x16x24 differs from PyTorch"):
        check_export(path, wrapper, 16, 24)


def test_cli_export_with_check_and_one_line_errors(run_dir, tmp_path, capsys):
    out = tmp_path / "cli.onnx"
    assert main(["export", str(run_dir), "--out", str(out), "--height", "16", "--width", "24", "--check"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == str(out) and len(lines) == 1 + 6
    assert all(json.loads(line)["max_abs_diff"] < 1e-4 for line in lines[1:])
    assert main(["export", str(tmp_path / "missing"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing: no checkpoint here" in err
    assert main(["export", str(run_dir), "--out", str(out), "--format", "tflite"]) == 2
    assert "format 'tflite' is not one of onnx, torchscript" in capsys.readouterr().err
