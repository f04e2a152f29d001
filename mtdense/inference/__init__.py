"""Inference from checkpoints: evaluation and prediction (``predict``), ONNX/TorchScript export (``export``)."""
