"""mtdense: dense multi-task learning, assembled from YAML.

Public Python API (imported on first use, so ``import mtdense`` does not import torch):
``mtdense.build_model(cfg)``, ``mtdense.load(run_or_checkpoint)`` → ``Predictor`` with
``.predict(array)`` and ``.spec``, ``mtdense.list_plugins(kind, pattern)``; the plugin
conformance kit is ``mtdense.testing``.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = {"build_model": "mtdense.api", "load": "mtdense.api", "list_plugins": "mtdense.api",
        "Predictor": "mtdense.inference.predictor"}
__all__ = ["__version__", *_API, "testing"]


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    if name == "testing":
        return importlib.import_module("mtdense.testing")
    raise AttributeError(f"module 'mtdense' has no attribute {name!r}")
