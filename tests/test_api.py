"""Public Python API: lazy ``import mtdense``, build_model without data, load → Predictor with the
normalisation and post-processing carried by the checkpoint, list_plugins, and the README example."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import mtdense
from conftest import ROOT, tiny_config
from mtdense.config import from_dict
from mtdense.data.synth_shapes import SyntheticShapes
from mtdense.engine.builder import predictions
from mtdense.engine.trainer import Trainer
from mtdense.errors import ConfigError, DataError, RegistryError
from mtdense.registry import DATASETS

MEAN, STD = [10.0, -20.0, 300.0], [2.0, 4.0, 50.0]


class RawShapes(SyntheticShapes):
    """Synthetic shapes whose raw units are ``image * STD + MEAN``: the samples stay standardised
    and the dataset says how, as the precip tile store and the Cityscapes reader do."""

    normalization = {"mean": MEAN, "std": STD}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    DATASETS.register("test_raw_shapes")(RawShapes)
    try:
        out = tmp_path_factory.mktemp("api") / "run"
        cfg = tiny_config(out, max_epochs=1)
        cfg["data"]["train"]["type"] = cfg["data"]["val"]["type"] = "test_raw_shapes"
        cfg["tasks"]["height"]["target_transform"] = "log1p"
        Trainer(from_dict(cfg)).fit()
    finally:
        DATASETS._table.pop("test_raw_shapes")
    return out


def standardised_batch(n=2):
    return torch.stack([SyntheticShapes(length=n, size=(16, 24), split="val")[i]["image"] for i in range(n)])


def test_import_mtdense_is_lazy():
    code = ("import sys, mtdense\n"
            "fns = [mtdense.build_model, mtdense.load, mtdense.list_plugins]\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "try:\n    mtdense.no_such_thing\nexcept AttributeError as exc:\n    print(exc)\n"
            "print(*sorted({f.__module__ for f in fns}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["module 'mtdense' has no attribute 'no_such_thing'", "mtdense.api"]


def test_checkpoint_spec_carries_normalization_and_postprocessing(run):
    predictor = mtdense.load(run)  # no dataset is registered now: the checkpoint alone suffices
    spec = predictor.spec
    assert spec["spec_version"] == 2 and spec["channel_names"] == ["band0", "band1", "band2"]
    assert spec["normalization"] == {"mean": MEAN, "std": STD}
    assert spec["postprocessing"]["semantic"] == {
        "type": "segmentation", "target": "semantic", "out_channels": 3, "output": "class index",
        "rule": "argmax over channels", "class_names": None}
    height = spec["postprocessing"]["height"]
    assert height["rule"] == "expm1(softplus(raw))" and height["inverse_transform"] == "expm1"


def test_postprocessing_of_gated_rain_rate_and_threshold_classes():
    from torch import nn

    from mtdense.registry import TASKS

    tasks = nn.ModuleDict({
        "rain_class": TASKS.build({"type": "threshold_classification", "target": "rain", "thresholds": [0.1, 2.0]},
                                  name="rain_class"),
        "rain_rate": TASKS.build({"type": "regression", "target": "rain", "activation": "relu", "max_value": 300,
                                  "target_transform": "log1p", "gate": {"task": "rain_class", "threshold": 0.4}},
                                 name="rain_rate")})
    classes = tasks["rain_class"].postprocessing()
    assert classes["thresholds"] == [0.1, 2.0] and classes["class_names"] == ["below_0.1", "0.1-2", "2_plus"]
    assert classes["type"] == "threshold_classification" and classes["out_channels"] == 3
    assert tasks["rain_rate"].postprocessing()["rule"] == "min(expm1(relu(raw)), 300) * 1[P(rain_class class >= 1) >= 0.4]"


def test_predict_applies_normalization_to_raw_input(run):
    predictor = mtdense.load(run)
    x = standardised_batch()
    raw = x * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = predictions(predictor.tasks, predictor.model(x))
    got = predictor.predict(raw.numpy().astype(">f8"))                # numpy B×C×H×W (big-endian) in → numpy out
    assert isinstance(got["height"], np.ndarray) and got["semantic"].shape == (2, 16, 24)
    np.testing.assert_array_equal(got["semantic"], expected["semantic"].numpy())
    np.testing.assert_allclose(got["height"], expected["height"].numpy(), rtol=1e-4, atol=1e-5)
    single = predictor.predict(raw[1])                                  # torch C×H×W in → torch H×W out
    assert isinstance(single["height"], torch.Tensor) and single["height"].shape == (16, 24)
    torch.testing.assert_close(single["height"], expected["height"][1], rtol=1e-4, atol=1e-5)
    unnormalised = predictor.predict(x.numpy())                         # standardised input is not raw input
    assert not np.allclose(unnormalised["height"], got["height"], rtol=1e-2)


def test_predict_rejects_wrong_shapes(run):
    predictor = mtdense.load(run)
    with pytest.raises(DataError, match=r"shape \(2, 16, 24\): expected C×H×W or B×C×H×W with C = 3 channels "
                                        r"\(band0, band1, band2\)"):
        predictor.predict(np.zeros((2, 16, 24), np.float32))


def test_old_checkpoint_without_normalization_loads_as_identity(run, tmp_path):
    import shutil

    from mtdense.engine.checkpoint import MODEL_FILE, resolve_checkpoint

    old = tmp_path / "old"
    shutil.copytree(resolve_checkpoint(run), old)
    from safetensors import safe_open

    with safe_open(str(old / MODEL_FILE), framework="pt") as f:
        meta = f.metadata()
    spec = json.loads(meta["spec"])
    meta["spec"] = json.dumps({k: spec[k] for k in ("in_channels", "channel_names", "tasks")})  # spec v1
    meta["format"] = "mtdense-checkpoint/1"  # written before manifests and normalisation were stored
    save_file(load_file(str(old / MODEL_FILE)), str(old / MODEL_FILE), metadata=meta)
    (old / "manifest.json").unlink()
    with pytest.warns(UserWarning, match="identity normalisation"):
        predictor = mtdense.load(old)
    assert predictor.normalization is None
    x = standardised_batch()
    with torch.no_grad():
        expected = predictions(predictor.tasks, predictor.model(x))["height"]
    np.testing.assert_allclose(predictor.predict(x.numpy())["height"], expected.numpy(), rtol=1e-5)


def test_build_model_needs_no_dataset():
    cfg = {"model": {"in_channels": 5, "backbone": {"type": "unet_encoder", "width": 4, "depth": 2}},
           "tasks": {"seg": {"type": "segmentation", "num_classes": 4},
                     "rain": {"type": "regression", "target": "rain"}}}
    model = mtdense.build_model(cfg)
    out = model(torch.zeros(1, 5, 12, 20))
    assert out["seg"].shape == (1, 4, 12, 20) and out["rain"].shape == (1, 1, 12, 20)
    assert mtdense.build_model(cfg, in_channels=2)(torch.zeros(1, 2, 8, 8))["seg"].shape == (1, 4, 8, 8)
    del cfg["model"]["in_channels"]
    with pytest.raises(ConfigError, match=r"^model.in_channels: not set"):
        mtdense.build_model(cfg)


def test_list_plugins():
    assert "cbim" in mtdense.list_plugins("interactions")["interaction"]
    assert mtdense.list_plugins("loss", "dice*") == {"loss": ["dice", "dice_ce"]}
    every = mtdense.list_plugins()
    assert {"backbone", "loss", "dataset", "teacher", "batch_transform"} <= set(every)
    with pytest.raises(RegistryError, match="unknown plugin kind 'backbon'.*did you mean 'backbone'"):
        mtdense.list_plugins("backbon")


def test_readme_python_example_runs(tmp_path, monkeypatch):
    """The README's "Python API" section: its shell command (shortened with overrides), then
    its Python block, executed as written."""
    from mtdense.cli import main

    section = (ROOT / "README.md").read_text().split("## Python API", 1)[1].split("\n## ", 1)[0]
    shell = re.search(r"```bash\n(.*?)```", section, re.S).group(1).split()
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert shell[:2] == ["mtdense", "train"]
    monkeypatch.chdir(tmp_path)
    assert main([*shell[1:], "trainer.max_epochs=1", "data.train.length=16", "data.val.length=8"]) == 0
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a current checkpoint loads without any warning
        exec(compile(code, "README.md", "exec"), namespace)
    pred = namespace["pred"]
    assert pred["semantic"].shape == (32, 48) and pred["semantic"].dtype == np.int64
    assert set(np.unique(pred["semantic"])) <= {0, 1, 2} and (pred["height"] >= 0).all()
    assert namespace["model"](torch.zeros(1, 4, 16, 16))["rain"].shape == (1, 1, 16, 16)


def test_dataset_normalization_is_checked_and_its_absence_is_said():
    from mtdense.data.normalization import dataset_normalization, normalize

    class Declared:
        normalization = {"mean": (1, 2), "std": [2.0, 4.0]}

    assert dataset_normalization(Declared(), 2) == {"mean": [1.0, 2.0], "std": [2.0, 4.0]}
    x = torch.tensor([3.0, 10.0]).view(1, 2, 1, 1)
    assert normalize(x, Declared.normalization).flatten().tolist() == [1.0, 2.0]   # (3-1)/2, (10-2)/4
    with pytest.raises(ConfigError, match="Declared.normalization: mean has 2 values for 3 input channels"):
        dataset_normalization(Declared(), 3)
    with pytest.warns(UserWarning, match="object does not declare `normalization`"):
        assert dataset_normalization(object(), 3) is None
