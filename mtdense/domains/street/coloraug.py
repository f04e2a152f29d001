"""ColorAug: per-class photometric changes inside the masks of a random subset of classes.

Source: Bansal, Ji, Yuan, Xu, "Semantics-Depth-Symbiosis", arXiv:2206.10562 (2022) names
ColorAug, a depth augmentation that uses predicted semantics; its exact rule is not public.
mtdense's reconstruction (docs/seeds.md §4.2): depth does not change when an object's colour
does, so recolouring whole objects teaches the depth branch to rely on geometry, not colour.

Rule, for each sample with probability ``p``:

1. class map ŷ: the label where valid, else the teacher's argmax (``teacher``), else unknown
   (unknown pixels are never changed);
2. each class k is chosen with probability ``class_p`` and gets its own brightness factor
   b ~ U(1 ± brightness), saturation factor c ~ U(1 ± saturation) and hue shift
   h ~ U(± hue) (torchvision's ``adjust_brightness``/``adjust_saturation``/``adjust_hue``,
   applied in that order to the de-normalised RGB image clamped to [0, 1]);
3. pixels with ŷ = k of chosen classes take the recoloured value (re-normalised); all other
   pixels, every target, every validity mask and the teacher outputs are returned unchanged.

Defaults (brightness 0.3, saturation 0.5, hue 0.1 of a full turn, class_p 0.5) are mtdense's
choices. All randomness comes from the ``generator`` the trainer passes (one fixed number of
draws per sample and class, whether or not the class is present).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torchvision.transforms.v2.functional as TF

from mtdense.domains.street.pixel_sources import check_task, class_map, uniform
from mtdense.errors import ConfigError
from mtdense.registry import BATCH_TRANSFORMS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@BATCH_TRANSFORMS.register("coloraug")
class ColorAug:
    """Batch transform ``bt(batch, generator) -> batch`` (see module docstring).

    Args:
        tasks: the experiment's tasks (supplied by mtdense).
        semantic_task: the segmentation task whose labels (or teacher prediction) give the classes.
        teacher: teacher whose prediction fills unlabelled pixels (``None``: true labels only).
        p, class_p: probability a sample is recoloured; probability each class is chosen.
        brightness, saturation, hue: ranges of the per-class changes (hue in turns, ≤ 0.5).
        mean, std: the image normalisation (ImageNet's, as the Cityscapes reader uses).
    """

    def __init__(self, tasks: Mapping | None = None, semantic_task: str = "semantic", teacher: str | None = None,
                 p: float = 1.0, class_p: float = 0.5, brightness: float = 0.3, saturation: float = 0.5,
                 hue: float = 0.1, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
        check_task(tasks, semantic_task, "semantic_task", "num_classes")
        for key, value, high in (("p", p, 1.0), ("class_p", class_p, 1.0), ("brightness", brightness, 1.0),
                                 ("saturation", saturation, 1.0), ("hue", hue, 0.5)):
            if not 0 <= value <= high:
                raise ConfigError(f"{value!r} must be in [0, {high}]", key=key)
        if len(mean) != len(std):
            raise ConfigError(f"mean ({len(mean)} values) and std ({len(std)}) differ in length", key="std")
        self.task, self.teacher = tasks[semantic_task], teacher
        self.p, self.class_p = float(p), float(class_p)
        self.ranges = ((1 - brightness, 1 + brightness), (1 - saturation, 1 + saturation), (-hue, hue))
        self.mean, self.std = torch.tensor(mean).view(-1, 1, 1), torch.tensor(std).view(-1, 1, 1)

    def __call__(self, batch: dict, generator: torch.Generator) -> dict:
        image = batch["image"]
        n, k = image.shape[0], self.task.num_classes
        apply = uniform(generator, n, 0.0, 1.0) < self.p
        chosen = (uniform(generator, n * k, 0.0, 1.0) < self.class_p).view(n, k)
        factors = [uniform(generator, n * k, lo, hi).view(n, k) for lo, hi in self.ranges]
        labels = class_map(batch, self.task, self.teacher)
        mean, std = self.mean.to(image), self.std.to(image)
        out_image = image.clone()
        for i in torch.nonzero(apply.cpu()).flatten().tolist():
            rgb = (image[i].float() * std + mean).clamp(0, 1)
            for c in torch.nonzero(chosen[i].cpu()).flatten().tolist():
                where = labels[i] == c
                if not bool(where.any()):
                    continue
                b, s, h = (float(f[i, c]) for f in factors)
                recoloured = TF.adjust_hue(TF.adjust_saturation(TF.adjust_brightness(rgb, b), s), h)
                out_image[i] = torch.where(where, ((recoloured - mean) / std).to(image.dtype), out_image[i])
        return {**batch, "image": out_image}
