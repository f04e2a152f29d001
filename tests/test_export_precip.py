"""ONNX export of the flagship precipitation model: self-contained (raw kelvin in, rain rate out)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

import mtdense
from mtdense.cli import main
from mtdense.tasks.regression import TRANSFORMS

from conftest import ROOT


def test_expm1_is_exp_minus_one_inside_onnx_and_exact_in_eager():
    _, inverse = TRANSFORMS["log1p"]
    x = torch.tensor([1e-8, 0.5, 3.0])
    assert inverse(x)[0].item() == pytest.approx(1e-8, rel=1e-6)      # expm1 precision in eager mode
    torch.testing.assert_close(inverse(x), torch.exp(x) - 1)


def test_mtcf_predictions_export_check_parity_and_metadata(precip_run, tmp_path, capsys):
    out = tmp_path / "mtcf.onnx"
    assert main(["export", str(precip_run), "--out", str(out), "--predictions", "--check", "--height", "32",
                 "--width", "32"]) == 0
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(props["mtdense.channel_names"])[:2] == ["B08", "B09"]
    info = json.loads(props["mtdense.channel_info"])
    assert info["B13"]["wavelength_um"] == 10.4 and info["B08"]["units"] == "K"
    assert "inside the graph" in props["mtdense.input"]
    # raw brightness temperatures in, the Python API's predictions out (normalisation + gate + expm1 in the graph)
    predictor = mtdense.load(precip_run)
    norm = predictor.normalization
    rng = np.random.default_rng(0)
    kelvin = (np.array(norm["mean"])[:, None, None]
              + np.array(norm["std"])[:, None, None] * rng.normal(size=(10, 48, 64))).astype(np.float32)
    got = onnxruntime.InferenceSession(str(out)).run(None, {"image": kelvin[None]})
    names = [o.name for o in onnxruntime.InferenceSession(str(out)).get_outputs()]
    expected = predictor.predict(kelvin)
    onnx_out = dict(zip(names, got))
    np.testing.assert_array_equal(onnx_out["rain_class"][0], expected["rain_class"])
    np.testing.assert_allclose(onnx_out["rain_rate"][0], expected["rain_rate"], rtol=1e-4, atol=1e-5)


PRECIP_CONFIGS = sorted(p.stem for p in (ROOT / "configs" / "precip").glob("*.yaml")
                        if p.stem not in ("base", "two_branch_tasks"))  # fragments merged through defaults:


@pytest.mark.slow
@pytest.mark.parametrize("name", PRECIP_CONFIGS)
def test_every_shipped_precip_config_exports_predictions(name, tiny_domain_data, tmp_path):
    from conftest import ROOT, tiny_data_overrides
    from mtdense.config import load_config
    from mtdense.engine.trainer import Trainer
    from mtdense.inference.export import check_export, export_model

    path = ROOT / "configs" / "precip" / f"{name}.yaml"
    cfg = load_config(path, tiny_data_overrides(load_config(path), tiny_domain_data)
                      + ["trainer.max_epochs=1", "trainer.max_steps_per_epoch=1", "trainer.warmup_steps=0",
                         "data.batch_size=2", "logging.loggers=[]", f"trainer.out_dir={tmp_path}"])
    Trainer(cfg).fit()
    out, wrapper = export_model(tmp_path, tmp_path / "m.onnx", predictions=True, height=32, width=32)
    records = check_export(out, wrapper, 32, 32)
    assert {r["output"] for r in records} == set(wrapper.task_names)
