"""Whole-array inference by overlapping windows with Gaussian blending (mtdense.inference.sliding_window)."""

import pytest
import torch

from mtdense.errors import ConfigError
from mtdense.inference.sliding_window import blending_overhead, gaussian_weights, sliding_window, window_starts


def test_window_starts_cover_with_overlap():
    assert window_starts(64, 64, 0.5) == [0]
    assert window_starts(50, 64, 0.5) == [0]
    # 100 px, window 64, overlap 0.5 -> step ≤ 32 -> ceil(36/32)+1 = 3 windows, evenly spaced
    assert window_starts(100, 64, 0.5) == [0, 18, 36]
    assert window_starts(128, 64, 0.0) == [0, 64]
    starts = window_starts(1000, 96, 0.25)
    assert starts[0] == 0 and starts[-1] == 1000 - 96
    assert all(b - a <= 96 * 0.75 for a, b in zip(starts, starts[1:]))


def test_gaussian_weights_peak_at_centre_and_stay_positive():
    w = gaussian_weights((9, 9), sigma_scale=0.125)
    assert w[4, 4] == 1.0 and w.argmax() == 4 * 9 + 4
    assert torch.allclose(w, w.flip(0)) and torch.allclose(w, w.T)
    assert w.min() > 0
    # σ = 9/8 px: one pixel from the centre the weight is exp(-0.5 (8/9)^2)
    assert w[4, 5].item() == pytest.approx(float(torch.exp(torch.tensor(-0.5 * (8 / 9) ** 2))), rel=1e-5)


def test_pointwise_model_blends_to_its_own_output():
    """A per-pixel model gives the same value in every window, so any weighted average must equal it."""
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 2, 1)
    image = torch.randn(3, 70, 90)
    calls = []

    def forward(x):
        calls.append(x.shape[0])
        return {"a": net(x), "b": net(x)[:, :1] ** 2}

    out = sliding_window(forward, image, 32, overlap=0.5, batch_size=5)
    ref = {"a": net(image[None])[0], "b": net(image[None])[0, :1] ** 2}
    assert set(out) == {"a", "b"} and out["a"].shape == (2, 70, 90)
    for name in ref:
        torch.testing.assert_close(out[name], ref[name], atol=1e-5, rtol=1e-5)
    assert sum(calls) == len(window_starts(70, 32, 0.5)) * len(window_starts(90, 32, 0.5))
    assert max(calls) == 5


def test_single_window_equals_full_forward_and_flip_tta_of_symmetric_model():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 1, 3, padding=1))
    image = torch.randn(2, 2, 48, 48)
    out = sliding_window(net, image, 48, overlap=0.5)
    torch.testing.assert_close(out, net(image).detach())
    tta = sliding_window(net, image, 48, flip_tta=True)
    flips = [net(torch.flip(image, d)).detach() for d in ((), (-1,), (-2,), (-2, -1))]
    expected = (flips[0] + flips[1].flip(-1) + flips[2].flip(-2) + flips[3].flip((-2, -1))) / 4
    torch.testing.assert_close(tta, expected)


def test_small_image_is_padded_with_pad_value_and_cropped():
    seen = []

    def forward(x):
        seen.append(x.clone())
        return x[:, :1] * 1.0

    image = torch.ones(2, 5, 6)
    out = sliding_window(forward, image, 8, pad_value=torch.tensor([7.0, -3.0]))
    assert out.shape == (1, 5, 6) and torch.all(out == 1)
    assert seen[0].shape == (1, 2, 8, 8)
    assert seen[0][0, 0, 7, 7] == 7.0 and seen[0][0, 1, 7, 7] == -3.0


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="overlap"):
        sliding_window(lambda x: x, torch.zeros(1, 8, 8), 4, overlap=1.0)
    with pytest.raises(ConfigError, match="blend"):
        sliding_window(lambda x: x, torch.zeros(1, 8, 8), 4, blend="mean")


def test_blending_overhead_counts_windows():
    # 256×256 with 64-px windows: 4×4 tiles plain; overlap 0.5 -> 7×7 windows
    assert blending_overhead((256, 256), (64, 64), 0.5) == pytest.approx(49 / 16)
