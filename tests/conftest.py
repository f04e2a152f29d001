"""Shared fixtures: tiny configs and the location of the real sample data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def tiny_config(out_dir: Path, **trainer) -> dict:
    """A two-task experiment on synthetic shapes that trains in about a second."""
    return {
        "seed": 0,
        "data": {
            "train": {"type": "synthetic_shapes", "length": 16, "size": [16, 24], "channels": 3, "split": "train"},
            "val": {"type": "synthetic_shapes", "length": 8, "size": [16, 24], "channels": 3, "split": "val"},
            "batch_size": 4,
        },
        "model": {
            "backbone": {"type": "unet_encoder", "width": 4, "depth": 3, "norm": "group"},
            "decoder": {"type": "unet", "norm": "group"},
            "head": {"type": "conv", "norm": "group"},
        },
        "tasks": {
            "semantic": {"type": "segmentation", "num_classes": 3, "target": "semantic"},
            "height": {"type": "regression", "target": "height", "activation": "softplus", "loss": "l1",
                       "metrics": []},
        },
        "trainer": {"max_epochs": 2, "lr": 3e-3, "out_dir": str(out_dir), **trainer},
        "logging": {"loggers": [{"type": "csv"}]},
    }


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present next to the project")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread is faster and robust to a busy shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_domain_data(tmp_path_factory) -> dict[str, Path]:
    """A tiny SYNTHETIC precipitation tile store, street-scene and crop-field folder (about a second)."""
    from mtdense.domains.agri.synth import synth_agri
    from mtdense.domains.precip.prepare import prepare_precip
    from mtdense.domains.precip.synth import synth_precip
    from mtdense.domains.street.synth import synth_street

    root = tmp_path_factory.mktemp("tiny_domain_data")
    synth_precip(root / "precip", n_scenes=4, height=32, width=32, seed=4)
    store = prepare_precip(root / "precip" / "ahi", root / "precip" / "imerg", root / "precip" / "store.h5",
                           tile_size=16, extra_channels=["decoy_01"], val_fraction=0.25, test_fraction=0.25,
                           seed=0, min_valid_fraction=0.5, split_by="random", scheduler="inline")["path"]  # 4 scans: too few blocks
    synth_street(root / "street", n_train=8, n_val=2, height=32, width=64, seed=5)
    synth_agri(root / "agri", {"train": 2, "val": 1}, height=32, width=40, seed=6)
    from mtdense.domains.clouds.synth_writers import synth_clouds

    synth_clouds(root / "clouds", train_scenes=2, test_scenes=1, scene_size=32, patch=16, chips=2, chip=16)
    return {"precip_store": Path(store), "street_root": root / "street", "agri_root": root / "agri",
            "satrain_root": tiny_satrain(root / "satrain"), "cloud38_root": root / "clouds" / "38-Cloud_training"}


def tiny_satrain(root: Path) -> Path:
    """Tiny SatRain gridded scenes (16×16, 16 geo channels) in the exact layout: 3 training, 2
    validation, 2 Korea testing scenes; rain where channel 13 (10.4 µm) is cold."""
    import datetime as dt

    import numpy as np

    from mtdense.domains.precip.writers import write_satrain_pair

    rng = np.random.default_rng(7)
    lat, lon = 40.0 - 0.036 * np.arange(16), -100.0 + 0.036 * np.arange(16)
    for folder, n in (("training/xs", 3), ("validation/xs", 2), ("testing/korea", 2)):
        for k in range(n):
            obs = rng.normal(260, 15, (16, 16, 16)).astype(np.float32)
            rain = np.where(obs[..., 12] < 250, (250 - obs[..., 12]) / 3, 0.0)
            write_satrain_pair(root / "gmi" / folder / "gridded", dt.datetime(2020, 1, 1 + k, 12), obs, rain, lat, lon)
    return root


def tiny_data_overrides(cfg, data: dict[str, Path]) -> list[str]:
    """Overrides pointing every dataset of ``cfg`` at ``tiny_domain_data`` (small sizes); the
    ``semisup`` wrapper's labelled and unlabelled datasets are pointed there too."""
    per_type = {"precip_tiles": {"path": data["precip_store"]},
                "cityscapes": {"root": data["street_root"], "size": "[32,64]", "split": "train"},
                "synthetic_shapes": {"length": 4, "size": "[16,24]"},
                "agri_fields": {"root": data["agri_root"]},
                "satrain": {"root": data["satrain_root"]},
                "cloud38": {"root": data["cloud38_root"]}}

    def section(prefix: str, node) -> list[str]:
        if node.type == "semisup":
            return [f"{prefix}.label_fraction=0.5"] + [o for part in ("labelled", "unlabelled") if node.get(part)
                                                       for o in section(f"{prefix}.{part}", node[part])]
        assert node.type in per_type, f"add tiny data for dataset type {node.type!r} to conftest"
        options = dict(per_type[node.type])
        if prefix.endswith(".val") and node.type == "cityscapes":
            options["split"] = "val"
        return [f"{prefix}.{k}={v}" for k, v in options.items()]

    # a trained nnU-Net-like teacher folder is not available here: an EMA teacher of the same name
    # stands in, so the config's couplings still read batch["teacher"][name]
    stand_ins = [f"teachers.{name}={{type: ema}}" for name, t in (cfg.get("teachers") or {}).items()
                 if t.type in ("nnunet_like", "nnunetv2")]
    return stand_ins + [o for split in ("train", "val", "test") if cfg.data.get(split) is not None
                        for o in section(f"data.{split}", cfg.data[split])]


def fit_until_interrupted(trainer, stop_at: int) -> None:
    """Run ``trainer.fit()`` and stop it (KeyboardInterrupt) when ``stop_at`` optimizer steps are done."""
    original = trainer.train_step

    def interrupting(micro):
        if trainer.global_step == stop_at:
            raise KeyboardInterrupt
        return original(micro)

    trainer.train_step = interrupting
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()


@pytest.fixture(scope="session")
def precip_run(tiny_domain_data, tmp_path_factory):
    """The shipped MTCF config trained for two tiny epochs on 16×16 SYNTHETIC tiles (B08–B16 + decoy_01)."""
    from mtdense.config import load_config
    from mtdense.engine.trainer import Trainer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("precip_run")
    path = ROOT / "configs" / "precip" / "mtcf.yaml"
    cfg = load_config(path, tiny_data_overrides(load_config(path), tiny_domain_data)
                      + ["trainer.max_epochs=2", "trainer.warmup_steps=0", "data.batch_size=4",
                         "logging.loggers=[]", f"trainer.out_dir={out}"])
    Trainer(cfg).fit()
    torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="session")
def tiny_cloud_teacher(tmp_path_factory):
    """SYNTHETIC cloud scenes (two 64×64 training scenes in 32×32 patches) and an nnU-Net-like teacher
    trained 2 iterations on them: (folder, training dataset, teacher folder)."""
    pytest.importorskip("dynamic_network_architectures")
    from mtdense.domains.clouds.cloud38 import Cloud38Dataset
    from mtdense.domains.clouds.nnunet_like import train_nnunet_like
    from mtdense.domains.clouds.synth_writers import synth_clouds

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("clouds")
    synth_clouds(tmp / "s", train_scenes=2, test_scenes=1, scene_size=64, patch=32, chips=1, chip=32)
    ds = Cloud38Dataset(str(tmp / "s" / "38-Cloud_training"))
    teacher = train_nnunet_like(ds, tmp / "teacher", iterations=2, memory_gb=0.01, base_features=4, max_features=8,
                                log_every=0)
    return tmp, ds, teacher
