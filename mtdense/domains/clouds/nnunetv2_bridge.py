"""The real nnU-Net v2 path: export a cloud dataset in nnU-Net's raw format, and a teacher that
runs a trained nnU-Net v2 model folder through nnU-Net's own ``nnUNetPredictor``.

Raw format (Isensee et al., Nature Methods 2021; nnunetv2 ``documentation/dataset_format.md``):
``DatasetXXX_Name/imagesTr/<case>_000{c}.png`` — one 16-bit PNG per channel (red, green, blue,
nir DN; nnU-Net's ``NaturalImage2DIO``), ``labelsTr/<case>.png`` (0 clear, 1 cloud, 2 = the
``ignore`` label for nodata pixels, which nnU-Net v2 leaves out of the loss), ``dataset.json``
with ``channel_names``, ``labels``, ``numTraining``, ``file_ending``. nnU-Net's default per-image
z-score normalisation makes the DN and reflectance inputs equivalent.

Teacher ``{type: nnunetv2, model_folder: …, folds: [0, 1, 2, 3, 4]}``: the fold ensemble with
nnU-Net's sliding window, Gaussian weighting and (optionally) mirroring; it returns the log of
the averaged softmax as logits (softmax of them = nnU-Net's probabilities) for the ``cloud`` task.
Needs ``pip install 'mtdense[nnunet]'``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from mtdense.engine.teachers import Teacher
from mtdense.errors import ConfigError, DataError
from mtdense.registry import TEACHERS


def export_nnunet(dataset, out: str | Path, name: str = "Dataset500_Clouds", target: str = "cloud") -> Path:
    """Write ``dataset`` (an mtdense cloud dataset) as an nnU-Net v2 raw dataset under ``out/name``."""
    from PIL import Image

    if not name.startswith("Dataset") or not name[7:10].isdigit():
        raise ConfigError(f"nnU-Net dataset names look like Dataset500_Clouds, got {name!r}", key="name")
    root = Path(out) / name
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    sensor = getattr(dataset, "sensor", None)
    for i in range(len(dataset)):
        s = dataset[i]
        case = f"cloud_{i:05d}"
        image = s["image"].numpy()
        dn = sensor.digital_numbers(image) if sensor is not None else np.clip(image * 10000, 0, 65535).astype(np.uint16)
        valid = s["valid"][target].numpy()
        dn[:, ~valid] = 0
        for c in range(dn.shape[0]):
            Image.fromarray(dn[c]).save(root / "imagesTr" / f"{case}_{c:04d}.png")
        label = np.where(valid, s["targets"][target].numpy(), 2).astype(np.uint8)
        Image.fromarray(label).save(root / "labelsTr" / f"{case}.png")
    names = list(getattr(dataset, "channel_names", [f"ch{c}" for c in range(dn.shape[0])]))
    meta = {"channel_names": {str(c): n for c, n in enumerate(names)},
            "labels": {"background": 0, "cloud": 1, "ignore": 2},
            "numTraining": len(dataset), "file_ending": ".png", "name": name,
            "description": "exported by mtdense data export-nnunet; label 2 = nodata (nnU-Net ignore label)"}
    (root / "dataset.json").write_text(json.dumps(meta, indent=1))
    return root


@TEACHERS.register("nnunetv2")
class NnUNetV2Teacher(Teacher):
    """A trained nnU-Net v2 results folder (``…/nnUNetTrainer__nnUNetPlans__2d``) as a frozen teacher."""

    conformance_skip = "needs a trained nnU-Net v2 results folder; the slow nnU-Net v2 test trains one and checks it"

    def __init__(self, model_folder: str, folds: list | None = None, checkpoint: str = "checkpoint_final.pth",
                 task: str = "cloud", mirror: bool = True, step_size: float = 0.5):
        super().__init__()
        try:
            from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
        except ImportError as exc:
            raise ConfigError("needs nnunetv2: pip install 'mtdense[nnunet]'", key="type") from exc
        if not (Path(model_folder) / "plans.json").is_file():
            raise DataError(f"{model_folder}: not an nnU-Net v2 results folder (no plans.json)")
        self.predictor = nnUNetPredictor(tile_step_size=step_size, use_gaussian=True, use_mirroring=mirror,
                                         perform_everything_on_device=False, device=torch.device("cpu"),
                                         verbose=False, allow_tqdm=False)
        self.predictor.initialize_from_trained_model_folder(
            str(model_folder), use_folds=tuple(folds) if folds is not None else None, checkpoint_name=checkpoint)
        self.net = self.predictor.network
        self.task = task

    @torch.no_grad()
    def predict(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = []
        for img in image.float().cpu().numpy():
            _, probs = self.predictor.predict_single_npy_array(img[:, None], {"spacing": [999.0, 1.0, 1.0]}, None, None,
                                                               True)
            logits.append(torch.from_numpy(np.log(np.clip(probs[:, 0], 1e-6, 1.0))).float())
        return {self.task: torch.stack(logits).to(image.device)}

    def state_dict(self, *args, **kwargs) -> dict:  # frozen: nothing to save with the run
        return {}

    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        if state:
            raise ValueError("nnunetv2 teacher: unexpected saved state; it is frozen and keeps none")
