"""Joint scale/crop/flip: nearest resampling of targets, depth / s and disparity * s."""

import torch

from mtdense.data.joint_transforms import RandomScaleCropFlip

DEPTH = torch.tensor([[10.0, 20.0, 30.0], [40.0, 0.0, 60.0]])
VALID = DEPTH > 0
SEMANTIC = torch.tensor([[0, 1, 2], [3, 4, 5]])


def sample():
    return {"image": torch.arange(6.0).reshape(1, 2, 3).repeat(3, 1, 1),
            "targets": {"depth": DEPTH.clone(), "semantic": SEMANTIC.clone(), "disparity": 100 / DEPTH.clamp(min=1)},
            "valid": {"depth": VALID.clone(), "semantic": torch.ones(2, 3, dtype=torch.bool),
                      "disparity": VALID.clone()},
            "meta": {"id": "x"}}


def up2(x):
    return x.repeat_interleave(2, 0).repeat_interleave(2, 1)


def test_zoom_in_divides_depth_and_multiplies_disparity():
    out = RandomScaleCropFlip(size=(4, 6), scale=(2.0, 2.0), flip=0.0)(sample())
    assert torch.equal(out["targets"]["depth"], up2(DEPTH) / 2)  # 10 m seen twice as large -> 5 m
    assert torch.equal(out["targets"]["disparity"], up2(100 / DEPTH.clamp(min=1)) * 2)
    assert torch.equal(out["targets"]["semantic"], up2(SEMANTIC))  # class ids never mixed
    assert torch.equal(out["valid"]["depth"], up2(VALID))
    assert out["image"].shape == (3, 4, 6) and out["meta"] == {"id": "x", "scale": 2.0, "flipped": 0}


def test_zoom_out_pads_invalid_and_flip_mirrors():
    out = RandomScaleCropFlip(size=(2, 3), scale=(0.5, 0.5), flip=1.0)(sample())
    # 2x3 -> 1x2 (rows [1], cols [0, 2] at pixel centres), padded to 2x3, then mirrored
    assert torch.equal(out["targets"]["depth"], torch.tensor([[0.0, 120.0, 80.0], [0.0, 0.0, 0.0]]))
    assert torch.equal(out["valid"]["depth"], torch.tensor([[False, True, True], [False, False, False]]))
    assert torch.equal(out["valid"]["semantic"], torch.tensor([[False, True, True], [False, False, False]]))
    assert out["image"][:, 1].abs().sum() == 0


def test_crop_is_a_window_of_the_input():
    big = {"image": torch.zeros(3, 6, 8), "targets": {"semantic": torch.arange(48).reshape(6, 8)},
           "valid": {"semantic": torch.ones(6, 8, dtype=torch.bool)}, "meta": {"id": "y"}}
    out = RandomScaleCropFlip(size=(3, 4), scale=(1.0, 1.0), flip=0.0, generator=torch.Generator().manual_seed(3))(big)
    window = out["targets"]["semantic"]
    top, left = divmod(int(window[0, 0]), 8)
    assert torch.equal(window, big["targets"]["semantic"][top : top + 3, left : left + 4])
