"""AffineMix and ColorAug on hand-built scenes: occlusion order, depth / s, untouched pixels."""

import pytest
import torch
from torch import nn

from mtdense.domains.street.affinemix import AffineMix
from mtdense.domains.street.coloraug import ColorAug
from mtdense.tasks.regression import RegressionTask
from mtdense.tasks.segmentation import SegmentationTask

TASKS = nn.ModuleDict({
    "semantic": SegmentationTask("semantic", num_classes=3),
    "depth": RegressionTask("depth", "depth", activation="softplus", target_transform="log1p"),
})
IDENTITY = {"scale": (1.0, 1.0), "rotate": 0.0, "translate": 0.0}


def gen(seed):
    return torch.Generator().manual_seed(seed)


def swapping_seed():
    """A seed whose first draw (AffineMix's pairing) makes sample 0 the source of sample 1 and back."""
    return next(s for s in range(100) if torch.randperm(2, generator=gen(s)).tolist() == [1, 0])


def scene(depth_bg, cls, depth_obj, rows, cols, h=8, w=8):
    depth = torch.full((h, w), float(depth_bg))
    semantic = torch.zeros(h, w, dtype=torch.long)
    depth[rows, cols], semantic[rows, cols] = depth_obj, cls
    return depth, semantic


def batch_of(depths, semantics, depth_valid=None):
    depth, semantic = torch.stack(depths), torch.stack(semantics)
    image = torch.stack([depth / 100, semantic.float(), -depth / 100], dim=1)  # colour says which surface
    valid = torch.ones_like(depth, dtype=torch.bool) if depth_valid is None else depth_valid
    return {"image": image, "targets": {"depth": depth, "semantic": semantic},
            "valid": {"depth": valid, "semantic": torch.ones_like(valid)}, "meta": {}}


def test_nearer_object_stays_on_top_in_both_directions():
    a = scene(50, 1, 10, slice(2, 6), slice(2, 6))  # target: object A at 10 m on a 50 m background
    b = scene(60, 2, 20, slice(4, 8), slice(4, 8))  # source: object B at 20 m on a 60 m background
    batch = batch_of([a[0], b[0]], [a[1], b[1]])
    out = AffineMix(TASKS, **IDENTITY)(batch, gen(swapping_seed()))
    expected_sem = torch.zeros(2, 8, 8, dtype=torch.long)
    expected_depth = torch.full((2, 8, 8), 50.0)
    for i in range(2):  # B shows where it is nearer than the background, A stays in front of B
        expected_sem[i, 4:8, 4:8], expected_depth[i, 4:8, 4:8] = 2, 20.0
        expected_sem[i, 2:6, 2:6], expected_depth[i, 2:6, 2:6] = 1, 10.0
    assert torch.equal(out["targets"]["semantic"], expected_sem)
    assert torch.equal(out["targets"]["depth"], expected_depth)
    # the image is mixed with the same mask: its colour encodes the surface's depth and class
    assert torch.equal(out["image"], torch.stack([expected_depth / 100, expected_sem.float(), -expected_depth / 100], 1))
    assert torch.equal(out["valid"]["depth"], torch.ones(2, 8, 8, dtype=torch.bool))


def test_zoom_divides_depth_by_exactly_s_with_nearest_sampling():
    source = torch.arange(16.0).view(4, 4) + 10.0  # 10 … 25 m, all nearer than the 100 m target
    batch = batch_of([torch.full((4, 4), 100.0), source], [torch.zeros(4, 4, dtype=torch.long)] * 2)
    out = AffineMix(TASKS, scale=(2.0, 2.0), rotate=0.0, translate=0.0)(batch, gen(swapping_seed()))
    # s = 2 about the centre: output column j samples source column 2 + (j + 0.5 - 2) / 2 -> 1, 1, 2, 2
    centre = source[1:3, 1:3].repeat_interleave(2, 0).repeat_interleave(2, 1)
    assert torch.equal(out["targets"]["depth"][0], centre / 2)


def test_teacher_depth_orders_unlabelled_pixels_and_is_rescaled():
    target, source = torch.full((4, 4), 100.0), torch.full((4, 4), 40.0)
    batch = batch_of([target, source], [torch.zeros(4, 4, dtype=torch.long)] * 2,
                     depth_valid=torch.zeros(2, 4, 4, dtype=torch.bool))  # no depth labels at all
    depth_task = TASKS["depth"]
    batch["teacher"] = {"ema": {"depth": depth_task.raw_from_prediction(torch.stack([target, source])),
                                "semantic": torch.randn(2, 3, 4, 4)}}
    supervised = AffineMix(TASKS, scale=(2.0, 2.0), rotate=0.0, translate=0.0)(batch, gen(swapping_seed()))
    assert torch.equal(supervised["image"], batch["image"])  # unknown depth is far: nothing occludes
    out = AffineMix(TASKS, teacher="ema", scale=(2.0, 2.0), rotate=0.0, translate=0.0)(batch, gen(swapping_seed()))
    predicted = depth_task.predict(out["teacher"]["ema"]["depth"])
    assert torch.allclose(predicted[0], torch.full((4, 4), 20.0), rtol=1e-5)  # 40 m zoomed 2x -> 20 m
    assert torch.allclose(predicted[1], torch.full((4, 4), 40.0), rtol=1e-5)  # 100 m / 2 = 50 m is behind 40 m
    assert not out["valid"]["depth"].any()


def test_source_outside_the_frame_and_p_zero_change_nothing():
    a, b = scene(50, 1, 10, slice(0, 4), slice(0, 4)), scene(5, 2, 5, slice(0, 8), slice(0, 8))
    batch = batch_of([a[0], b[0]], [a[1], b[1]])
    off = AffineMix(TASKS, scale=(1.0, 1.0), rotate=0.0, translate=1.0)
    out = AffineMix(TASKS, p=0.0)(batch, gen(0))
    assert all(torch.equal(out["targets"][k], batch["targets"][k]) for k in batch["targets"])
    shifted = off(batch, gen(swapping_seed()))
    changed = (shifted["targets"]["depth"] != batch["targets"]["depth"]).float().mean()
    assert changed < 1.0  # a translation of up to a full width leaves part of the target uncovered


def test_affinemix_is_deterministic_under_the_generator():
    depths = [torch.rand(16, 16) * 50 + 1 for _ in range(4)]
    batch = batch_of(depths, [torch.randint(0, 3, (16, 16)) for _ in range(4)])
    mix = AffineMix(TASKS)
    first, again, other = mix(batch, gen(3)), mix(batch, gen(3)), mix(batch, gen(4))
    assert torch.equal(first["image"], again["image"]) and torch.equal(first["targets"]["depth"], again["targets"]["depth"])
    assert not torch.equal(first["image"], other["image"])


def test_depth_task_must_exist():
    with pytest.raises(Exception, match="not a task"):
        AffineMix(TASKS, depth_task="dpeth")


MEAN, STD = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def rgb(image):
    return image * STD + MEAN


def normalised(rgb_image):
    return (rgb_image - MEAN) / STD


def colour_batch():
    semantic = torch.zeros(1, 6, 6, dtype=torch.long)
    semantic[0, :3], semantic[0, 3:, :3] = 1, 2
    valid = torch.ones(1, 6, 6, dtype=torch.bool)
    valid[0, 3:, 5:] = False  # right column of the bottom half unlabelled
    image = normalised(torch.rand(1, 3, 6, 6, generator=gen(1)) * 0.4 + 0.2)  # RGB in [0.2, 0.6]: x1.5 stays < 1
    return {"image": image, "targets": {"semantic": semantic, "depth": torch.rand(1, 6, 6) * 30},
            "valid": {"semantic": valid, "depth": valid.clone()}, "meta": {}}


def test_coloraug_changes_whole_chosen_classes_only():
    batch = colour_batch()
    aug = ColorAug(TASKS, class_p=0.5, brightness=0.5, saturation=0.0, hue=0.0)
    changed_any = set()
    for seed in range(12):
        out = aug(batch, gen(seed))
        assert out["targets"] is batch["targets"] and out["valid"] is batch["valid"]  # depth, masks untouched
        ratio = rgb(out["image"]) / rgb(batch["image"])
        labels = torch.where(batch["valid"]["semantic"], batch["targets"]["semantic"], -1)[0]
        assert torch.allclose(ratio[..., labels == -1], torch.ones(()), atol=1e-6)  # unknown class: unchanged
        for c in range(3):
            r = ratio[0][:, labels == c]
            assert torch.allclose(r, r[0, 0].expand_as(r), atol=1e-5)  # one brightness factor per class
            if not torch.allclose(r, torch.ones(()), atol=1e-6):
                changed_any.add(c)
                assert 0.5 - 1e-5 <= float(r[0, 0]) <= 1.5 + 1e-5
    assert changed_any == {0, 1, 2}


def test_coloraug_uses_teacher_classes_and_is_deterministic():
    batch = colour_batch()
    batch["valid"]["semantic"] = torch.zeros(1, 6, 6, dtype=torch.bool)
    assert torch.equal(ColorAug(TASKS, class_p=1.0)(batch, gen(0))["image"], batch["image"])  # no classes known
    logits = torch.zeros(1, 3, 6, 6)
    logits[0, 1, :, :2] = 5.0  # the teacher sees class 1 in the two left columns, class 0 elsewhere
    batch["teacher"] = {"ema": {"semantic": logits}}
    aug = ColorAug(TASKS, teacher="ema", class_p=1.0, brightness=0.5, saturation=0.0, hue=0.0)
    out = aug(batch, gen(5))
    ratio = rgb(out["image"]) / rgb(batch["image"])
    assert torch.allclose(ratio[0, :, :, :2], ratio[0, 0, 0, 0].expand(3, 6, 2), atol=1e-5)
    assert torch.allclose(ratio[0, :, :, 2:], ratio[0, 0, 0, 2].expand(3, 6, 4), atol=1e-5)
    assert torch.equal(out["image"], aug(batch, gen(5))["image"])
    assert out["teacher"] is batch["teacher"]


def test_affinemix_moves_teacher_outputs_with_the_image():
    """The teacher predicted on the unmixed images; after mixing, its outputs must sit where the
    image's pixels went (same warp, same mask). A pixel-wise linear 'teacher' makes this exact:
    its mixed output must equal the teacher applied to the mixed image."""
    g = gen(0)
    depths = [torch.rand(12, 12, generator=g) * 50 + 1 for _ in range(4)]
    batch = batch_of(depths, [torch.randint(0, 3, (12, 12), generator=g) for _ in range(4)])
    batch["image"] = torch.rand(4, 3, 12, 12, generator=g)
    weights = torch.randn(3, 3, generator=g)  # class logits = weights @ RGB at every pixel
    batch["teacher"] = {"ema": {"semantic": torch.einsum("kc,bchw->bkhw", weights, batch["image"]),
                                "depth": TASKS["depth"].raw_from_prediction(torch.stack(depths))}}
    for seed in range(5):
        out = AffineMix(TASKS, teacher="ema", p=1.0)(batch, gen(seed))
        assert not torch.equal(out["image"], batch["image"])  # something was pasted
        expected = torch.einsum("kc,bchw->bkhw", weights, out["image"])
        assert torch.allclose(out["teacher"]["ema"]["semantic"], expected, atol=1e-5), seed
