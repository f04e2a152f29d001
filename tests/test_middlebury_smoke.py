"""REAL-data smoke test: the Middlebury Motorcycle pair bundled with scikit-image, written in the
Cityscapes layout, through the semi-supervised pipeline (mixed batches, EMA teacher, ColorAug,
AffineMix, CCAM) for a few steps."""

import math

import numpy as np
import pytest

from conftest import ROOT
from mtdense.config import load_config
from mtdense.domains.street.cityscapes import Cityscapes
from mtdense.domains.street.middlebury import BASELINE, DOFFS, FOCAL, write_middlebury_cityscapes
from mtdense.engine.trainer import Trainer


@pytest.fixture(scope="module")
def middlebury(tmp_path_factory):
    root = tmp_path_factory.mktemp("middlebury")
    return root, write_middlebury_cityscapes(root)


def test_real_disparity_becomes_middlebury_depth(middlebury):
    from skimage import data

    root, summary = middlebury
    _, _, disparity = data.stereo_motorcycle()
    full, right = Cityscapes(root, split="train_extra", unlabelled=True)[0], Cityscapes(root, split="train_extra",
                                                                                          unlabelled=True)[1]
    valid = full["valid"]["depth"].numpy()
    np.testing.assert_array_equal(valid, np.isfinite(disparity))
    expected = BASELINE * FOCAL / (disparity[valid] + DOFFS)  # Middlebury: Z = B f / (d + doffs)
    np.testing.assert_allclose(full["targets"]["depth"].numpy()[valid], expected, rtol=2e-4)  # 1/256 px steps
    assert 2.0 < summary["depth_m"][0] < summary["depth_m"][1] < 5.1
    assert not right["valid"]["depth"].any() and not full["valid"]["semantic"].any()  # unlabelled, no disparity
    assert abs(float(full["image"].mean())) < 1.5  # real RGB after ImageNet normalisation


@pytest.mark.slow
def test_semisup_pipeline_runs_on_real_images(middlebury, tmp_path):
    root, _ = middlebury
    cfg = load_config(ROOT / "configs" / "street" / "semisup_real_smoke.yaml", [
        f"data.train.labelled.root={root}", f"data.train.unlabelled.root={root}", f"data.val.root={root}",
        f"trainer.out_dir={tmp_path / 'run'}", "trainer.log_every_steps=1"])
    trainer = Trainer(cfg)
    dataset = trainer.exp.dataset("train")
    assert len(dataset.labelled_indices) == 2 and len(dataset.unlabelled_indices) == 4  # 2 crops + 2 train_extra
    metrics = trainer.fit()
    assert trainer.global_step == 8  # 2 epochs x 4 batches (4 unlabelled, 1 per batch of 2; labelled cycle)
    for key in ("val/depth/abs_rel", "val/depth/rmse", "val/depth/delta1", "val/semantic/miou", "val/loss"):
        assert math.isfinite(metrics[key]), key
    log = (tmp_path / "run" / "metrics.csv").read_text()
    assert "train/loss/pseudo_semantic" in log and "train/loss/depth_consistency" in log
    assert (tmp_path / "run" / "label_split.txt").is_file()
