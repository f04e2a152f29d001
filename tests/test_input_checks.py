"""No silent wrong numbers: NaN/Inf inputs are masked with a warning (never a confident class 0),
a task without valid labels is an error naming it, NaN predictions are counted by the metrics,
metric JSON is standard JSON, reader errors are one line naming the file, per-class metrics
carry class names."""

from __future__ import annotations

import bz2
import json
import math
import warnings

import h5py
import numpy as np
import pytest
import torch

from mtdense.cli import main, user_message
from mtdense.config import from_dict
from mtdense.engine.trainer import Trainer
from mtdense.errors import DataError
from mtdense.metrics.depth import DepthMetrics
from mtdense.metrics.precipitation import Precipitation
from mtdense.metrics.segmentation import SegmentationMetrics
from mtdense.registry import TASKS, TRANSFORMS
from mtdense.strict_json import dumps

from conftest import tiny_config


@TRANSFORMS.register("test_nan_corner")
class NaNCorner:
    """Test transform: NaN in channel 0 of the top-left 4×4 pixels."""

    def __call__(self, sample):
        image = sample["image"].clone()
        image[0, :4, :4] = float("nan")
        return {**sample, "image": image}


@TRANSFORMS.register("test_unlabel")
class Unlabel:
    """Test transform: no valid pixel for ``key``."""

    conformance_kwargs = {"key": "semantic"}  # the kit's sample has a semantic target

    def __init__(self, key: str):
        self.key = key

    def __call__(self, sample):
        return {**sample, "valid": {**sample["valid"], self.key: torch.zeros_like(sample["valid"][self.key])}}


def one_batch(trainer: Trainer) -> dict:
    return next(iter(trainer._loader("val", shuffle=False)))


def test_nan_inputs_are_masked_out_of_the_metrics_with_a_warning(tmp_path):
    trainer = Trainer(from_dict(tiny_config(tmp_path)))
    evaluator = trainer.evaluator()
    clean = one_batch(trainer)
    holed = {**clean, "image": clean["image"].clone(), "valid": {k: v.clone() for k, v in clean["valid"].items()}}
    holed["image"][1, 2, 3:9, 5:11] = float("nan")
    # the same batch with those pixels zero-filled and invalid is what the hole must count as
    expected = {**clean, "image": torch.nan_to_num(holed["image"], nan=0.0),
                "valid": {k: v.clone() for k, v in clean["valid"].items()}}
    for v in expected["valid"].values():
        v[1, 3:9, 5:11] = False
    with pytest.warns(UserWarning, match=r"split 'val': 36 pixels in 1 samples have NaN/Inf input values"):
        got = evaluator.run([holed], "val")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about
        want = evaluator.run([expected], "val")
    assert got == want
    assert got["val/semantic/nonfinite_pred"] == 0.0 and math.isfinite(got["val/loss"])


def test_predict_and_evaluate_mask_nan_input_pixels(tmp_path, capsys):
    cfg = tiny_config(tmp_path / "run", max_epochs=1)
    cfg["data"]["test"] = {"type": "synthetic_shapes", "length": 4, "size": [16, 24], "channels": 3, "split": "test"}
    (tmp_path / "exp.yaml").write_text(json.dumps(cfg))
    assert main(["train", str(tmp_path / "exp.yaml")]) == 0
    capsys.readouterr()
    nan = "data.test.transform={type: test_nan_corner}"
    assert main(["predict", str(tmp_path / "run"), nan, "--out", str(tmp_path / "p.h5")]) == 0
    assert "mtdense: warning: split 'test': 64 pixels in 4 samples have NaN/Inf input values" in capsys.readouterr().err
    with h5py.File(tmp_path / "p.h5") as f:
        semantic, height = f["semantic"][:], f["height"][:]
    assert (semantic[:, :4, :4] == -1).all() and (semantic[:, 4:, 4:] >= 0).all()  # never a confident class 0
    assert np.isnan(height[:, :4, :4]).all() and np.isfinite(height[:, 4:, 4:]).all()
    assert main(["evaluate", str(tmp_path / "run"), "--split", "test", nan]) == 0
    out = capsys.readouterr()
    assert "64 pixels in 4 samples" in out.err and json.loads(out.out)["test/semantic/nonfinite_pred"] == 0.0


def test_a_split_without_valid_labels_for_a_task_is_an_error_naming_it(tmp_path):
    trainer = Trainer(from_dict(tiny_config(tmp_path)))
    batch = one_batch(trainer)
    batch["valid"]["height"] = torch.zeros_like(batch["valid"]["height"])
    with pytest.raises(DataError, match=r"split 'val' has no valid label for task 'height' \(target 'height'\)"):
        trainer.evaluator().run([batch], "val")
    cfg = tiny_config(tmp_path / "train")
    cfg["data"]["train"]["transform"] = {"type": "test_unlabel", "key": "height"}
    with pytest.raises(DataError, match=r"training split has no valid label for task 'height' \(target 'height'\)"):
        Trainer(from_dict(cfg)).fit()
    assert not (tmp_path / "train" / "checkpoints").exists()  # stopped after the first epoch, nothing saved


def test_nan_logits_predict_no_class_and_metrics_report_nan_predictions():
    task = TASKS.build({"type": "segmentation", "num_classes": 3}, "tasks.s", name="s")
    logits = torch.zeros(1, 3, 2, 2)
    logits[0, 1] = 1.0
    logits[0, :, 0, 0] = float("nan")
    pred = task.predict(logits)
    assert pred.tolist() == [[[-1, 1], [1, 1]]]
    seg = SegmentationMetrics(3)
    seg.update(pred, torch.ones(1, 2, 2, dtype=torch.long), torch.ones(1, 2, 2, dtype=torch.bool))
    with pytest.warns(UserWarning, match="1 of 4 valid pixels have NaN/Inf predictions"):
        out = seg.compute()
    assert out["nonfinite_pred"] == 0.25 and out["pixel_acc"] == 0.75 and out["iou_1"] == 1.0

    rain = Precipitation(thresholds=[1.0])
    target = torch.tensor([[[2.0, 0.0], [3.0, 0.0]]])
    rain.update(torch.tensor([[[float("nan"), 0.0], [3.0, 0.0]]]), target, torch.ones(1, 2, 2, dtype=torch.bool))
    with pytest.warns(UserWarning, match="NaN/Inf predictions"):
        out = rain.compute()
    assert out["nonfinite_pred"] == 0.25 and out["pod@1"] == 1.0 and out["rmse"] == 0.0

    depth = DepthMetrics()
    depth.update(torch.tensor([[[float("inf"), 5.0]]]), torch.tensor([[[4.0, 5.0]]]), torch.ones(1, 1, 2, dtype=torch.bool))
    with pytest.warns(UserWarning):
        assert depth.compute()["nonfinite_pred"] == 0.5


def test_per_class_metrics_carry_class_names():
    seg = SegmentationMetrics(3, class_names=["road", "sky", "traffic sign"])
    seg.update(torch.tensor([[0, 1, 2]]), torch.tensor([[0, 1, 1]]), torch.ones(1, 3, dtype=torch.bool))
    out = seg.compute()
    assert out["iou_road"] == 1.0 and out["iou_sky"] == 0.5 and out["iou_traffic_sign"] == 0.0
    assert "iou_0" not in out
    rain = TASKS.build({"type": "threshold_classification", "target": "r", "thresholds": [0.5, 2]}, "tasks.c", name="c")
    names = rain.bind({"c": rain})
    assert [n for n in names if n.startswith("iou_")] == ["iou_below_0.5", "iou_0.5-2", "iou_2_plus"]


def test_metric_json_writes_null_not_nan(tmp_path, capsys):
    assert dumps({"f1@9": float("nan"), "x": [float("inf"), 1.0]}) == '{"f1@9": null, "x": [null, 1.0]}'
    cfg = tiny_config(tmp_path / "run", max_epochs=1)
    cfg["tasks"]["height"]["metrics"] = [{"type": "precipitation", "thresholds": [1000]}]  # no events: NaN scores
    (tmp_path / "exp.yaml").write_text(json.dumps(cfg))
    assert main(["train", str(tmp_path / "exp.yaml")]) == 0
    assert main(["evaluate", str(tmp_path / "run"), "--out", str(tmp_path / "m.json")]) == 0

    def refuse(constant):
        raise ValueError(f"bare {constant} in JSON")

    printed = json.loads(capsys.readouterr().out.split("}\n", 1)[1], parse_constant=refuse)
    written = json.loads((tmp_path / "m.json").read_text(), parse_constant=refuse)
    assert written == printed and written["val/height/pod@1000"] is None


def test_truncated_bz2_and_worker_errors_are_one_line_naming_the_file(tmp_path):
    from mtdense.domains.precip.himawari_hsd import HSDError, read_hsd_segment

    path = tmp_path / "HS_H08_20200101_0000_B13_FLDK_R20_S0110.DAT.bz2"
    path.write_bytes(bz2.compress(b"\x01" * 5000)[:-30])
    with pytest.raises(HSDError, match=f"{path}: cannot read HSD file"):
        read_hsd_segment(path)
    from torch._utils import ExceptionWrapper

    try:
        raise DataError(f"{path}: cannot read tile 3 (bad chunk); re-run prepare")
    except DataError:
        wrapped = ExceptionWrapper(where="in DataLoader worker process 0")
    with pytest.raises(DataError) as err:
        wrapped.reraise()
    assert user_message(err.value) == f"{path}: cannot read tile 3 (bad chunk); re-run prepare"
