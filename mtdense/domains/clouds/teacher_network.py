"""The teacher network: ``PlainConvUNet`` of dynamic-network-architectures, as nnU-Net v2 builds it.

Isensee et al., Nature Methods 2021; MIC-DKFZ/dynamic-network-architectures (the network library
nnU-Net v2 itself uses): per stage ``n_conv`` × (conv 3×3 → InstanceNorm(eps 1e-5, affine) →
LeakyReLU(0.01)), strided-conv downsampling, transposed-conv upsampling, a 1×1 segmentation
head per decoder stage (deep supervision; outputs from the finest to the coarsest).
"""

from __future__ import annotations

from torch import nn


def build_plain_unet(kwargs: dict, in_channels: int, num_classes: int, deep_supervision: bool = True) -> nn.Module:
    try:
        from dynamic_network_architectures.architectures.unet import PlainConvUNet
    except ImportError as exc:  # the extra is optional
        from mtdense.errors import ConfigError

        raise ConfigError("the nnU-Net-like teacher needs dynamic-network-architectures: "
                          "pip install 'mtdense[nnunet]'") from exc
    return PlainConvUNet(
        input_channels=in_channels, n_stages=kwargs["n_stages"], features_per_stage=list(kwargs["features_per_stage"]),
        conv_op=nn.Conv2d, kernel_sizes=[list(k) for k in kwargs["kernel_sizes"]],
        strides=[list(s) for s in kwargs["strides"]], n_conv_per_stage=list(kwargs["n_conv_per_stage"]),
        num_classes=num_classes, n_conv_per_stage_decoder=list(kwargs["n_conv_per_stage_decoder"]), conv_bias=True,
        norm_op=nn.InstanceNorm2d, norm_op_kwargs={"eps": 1e-5, "affine": True}, dropout_op=None,
        nonlin=nn.LeakyReLU, nonlin_kwargs={"inplace": True}, deep_supervision=deep_supervision)
