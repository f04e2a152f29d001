"""smp backbones load local pretrained files strictly: 3-channel input convolutions are adapted
to N input channels (as timm does), and a file whose keys do not match is an error that lists
the mismatch instead of loading nothing."""

from __future__ import annotations

import pytest
import torch
from timm.models import adapt_input_conv

from mtdense.errors import ConfigError
from mtdense.registry import BACKBONES

SMP = {"type": "smp", "name": "tu-test_resnet", "depth": 4}


def build(in_channels: int, **options):
    return BACKBONES.build({**SMP, **options}, "model.backbone", in_channels=in_channels)


def test_three_channel_weights_are_adapted_to_n_input_channels(tmp_path):
    torch.manual_seed(0)
    rgb = build(3)
    torch.save(rgb.body.state_dict(), tmp_path / "rgb.pth")
    bands = build(5, checkpoint_path=str(tmp_path / "rgb.pth"))
    loaded = bands.body.state_dict()
    adapted = None
    for key, value in rgb.body.state_dict().items():
        if value.ndim == 4 and value.shape[1] == 3 and loaded[key].shape[1] == 5:
            assert torch.equal(loaded[key], adapt_input_conv(5, value)), key
            adapted = key
        else:
            assert torch.equal(loaded[key], value), key
    assert adapted is not None  # the stem convolution was adapted, everything else copied


def test_a_whole_model_checkpoint_is_refused_with_the_mismatch(tmp_path):
    encoder = build(3)
    whole = {f"encoder.{k}": v for k, v in encoder.body.state_dict().items()}
    whole["decoder.block.weight"] = torch.zeros(2, 2, 3, 3)
    torch.save(whole, tmp_path / "unet.pth")
    with pytest.raises(ConfigError) as err:
        build(3, checkpoint_path=str(tmp_path / "unet.pth"))
    msg = str(err.value)
    assert msg.startswith(f"model.backbone.checkpoint_path: {tmp_path / 'unet.pth'}: keys do not match the encoder")
    assert "unexpected (e.g. decoder.block.weight, encoder." in msg and "it looks like a whole model" in msg
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="junk.pth: not a readable weights file"):
        build(3, checkpoint_path=str(tmp_path / "junk.pth"))
