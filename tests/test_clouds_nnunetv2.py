"""Real nnU-Net v2 end to end: export → nnunetv2 planning/preprocessing → its own trainer class
(1 epoch of 2 iterations) → the ``nnunetv2`` teacher through ``nnUNetPredictor``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mtdense.domains.clouds.cloud38 import Cloud38Dataset
from mtdense.domains.clouds.nnunetv2_bridge import export_nnunet
from mtdense.domains.clouds.synth_writers import synth_clouds


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nnunet")
    synth_clouds(tmp / "s", train_scenes=2, test_scenes=1, scene_size=96, patch=48, chips=1, chip=32)
    ds = Cloud38Dataset(str(tmp / "s" / "38-Cloud_training"))
    return tmp, ds, export_nnunet(ds, tmp / "raw", "Dataset501_TinyClouds")


def test_export_is_nnunet_raw_format(exported):
    _, ds, root = exported
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "red", "1": "green", "2": "blue", "3": "nir"}
    assert meta["labels"] == {"background": 0, "cloud": 1, "ignore": 2} and meta["numTraining"] == len(ds)
    sample = ds[0]
    red = np.array(Image.open(root / "imagesTr" / "cloud_00000_0000.png"))
    assert red.dtype == np.uint16 and red.shape == tuple(sample["image"].shape[-2:])
    label = np.array(Image.open(root / "labelsTr" / "cloud_00000.png"))
    valid = sample["valid"]["cloud"].numpy()
    assert (label[~valid] == 2).all() and (label[valid] == sample["targets"]["cloud"].numpy()[valid]).all()
    np.testing.assert_allclose(ds.sensor.reflectance(red)[valid], sample["image"][0].numpy()[valid], atol=3e-5)


@pytest.mark.slow
def test_real_nnunetv2_plan_train_and_teacher(exported):
    pytest.importorskip("nnunetv2")
    tmp, ds, root = exported
    env = {**os.environ, "nnUNet_raw": str(root.parent), "nnUNet_preprocessed": str(tmp / "pre"),
           "nnUNet_results": str(tmp / "results"), "nnUNet_n_proc_DA": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("nnunetv2_worker.py")), root.name],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    folder = tmp / "results" / root.name / "nnUNetTrainer__nnUNetPlans__2d"
    assert (folder / "fold_0" / "checkpoint_final.pth").is_file() and (folder / "plans.json").is_file()
    from mtdense.registry import TEACHERS

    teacher = TEACHERS.build({"type": "nnunetv2", "model_folder": str(folder), "folds": [0], "mirror": False},
                             "teachers.nn")
    batch = torch_stack([ds[0]["image"], ds[1]["image"]])
    out = teacher.predict(batch)["cloud"]
    assert out.shape == (2, 2, *batch.shape[-2:])
    probs = out.exp().sum(1)  # log-probabilities of nnU-Net's softmax
    assert np.allclose(probs.numpy(), 1.0, atol=1e-3)


def torch_stack(images):
    import torch

    return torch.stack(images)
