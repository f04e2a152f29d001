"""Generic Gaussian sliding-window inference."""

from __future__ import annotations

import torch

from mtdense.inference.sliding_window import gaussian_weights, sliding_window, tile_starts


def test_tile_starts_cover_the_image_evenly():
    assert tile_starts(10, 16, 0.5) == [0]
    assert tile_starts(16, 16, 0.5) == [0]
    assert tile_starts(40, 16, 0.5) == [0, 8, 16, 24]  # ceil(24 / 8) + 1 = 4 tiles, stride 8
    assert tile_starts(41, 16, 0.5) == [0, 6, 12, 19, 25]  # ceil(25 / 8) + 1 = 5 tiles, last ends at 41


def test_gaussian_weights_peak_centre_no_zeros():
    w = gaussian_weights((9, 9))
    assert float(w[4, 4]) == 1.0 and float(w.min()) > 0 and float(w[0, 0]) < float(w[0, 4]) < 1


def test_pointwise_function_is_reproduced_exactly_with_dicts_and_padding():
    image = torch.randn(2, 3, 37, 29)
    fn = lambda x: {"a": 2 * x[:, :1] + 1, "b": x.sum(1, keepdim=True)}  # noqa: E731 — position-independent
    out = sliding_window(fn, image, (16, 16))
    torch.testing.assert_close(out["a"], 2 * image[:, :1] + 1)
    torch.testing.assert_close(out["b"], image.sum(1, keepdim=True))
    small = sliding_window(lambda x: x * 3, image[..., :10, :12], (16, 16))  # padded, cropped back
    torch.testing.assert_close(small, image[..., :10, :12] * 3)


def test_overlap_is_gaussian_weighted():
    # fn returns the tile's start column as a constant map: where two tiles overlap the blend
    # must lie strictly between their values and favour the tile whose centre is nearer
    image = torch.zeros(1, 1, 8, 24)
    calls = []

    def fn(x):
        calls.append(x.shape[0])
        return torch.arange(x.shape[0], dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 8, 16)

    out = sliding_window(fn, image, (8, 16), step_fraction=0.5, batch_tiles=1)  # tiles at x = 0 and 8
    assert calls == [1, 1]
    assert float(out[0, 0, 0, 0]) == 0.0 and float(out[0, 0, 0, 23]) == 0.0  # each tile alone: value 0
    # with batch_tiles=2 the tiles get values 0 and 1: columns 8-15 are blended
    out = sliding_window(fn, image, (8, 16), step_fraction=0.5, batch_tiles=2)
    row = out[0, 0, 4]
    assert float(row[7]) == 0.0 and float(row[16]) == 1.0
    assert 0 < float(row[10]) < 0.5 < float(row[13]) < 1  # nearer the first tile's centre (7.5) → closer to 0
