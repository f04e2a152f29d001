"""Cloud detection for on-board processing (seed: Grabowski et al., "Squeezing nnU-Nets with
Knowledge Distillation for On-Board Cloud Detection", arXiv:2306.09886).

Readers for 38-Cloud / 95-Cloud (Landsat-8 patches) and On Cloud N (Sentinel-2 chips), the
SYNTHETIC scene generator writing both layouts, a Sentinel-2-style thresholding baseline,
cloud metrics, nnU-Net teachers (built in and real nnU-Net v2), pixel-wise distillation
couplings, on-board ONNX export with int8 quantisation, and the ``mtdense`` verbs (``cli.py``).
"""
