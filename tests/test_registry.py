"""Registry: building, option validation, did-you-mean, lazy imports, entry-point plugins."""

from __future__ import annotations

import sys
import textwrap
import warnings

import pytest
from torch import nn

import mtdense.registry as registry
from mtdense.registry import ALL_REGISTRIES, BACKBONES, INTERACTIONS, Registry, RegistryError


def test_build_validates_options_before_calling():
    reg = Registry("widget")
    calls = []

    @reg.register("box")
    class Box:
        def __init__(self, channels, kernel_size=3, reduction=4):
            calls.append((channels, kernel_size, reduction))

    reg.build({"type": "box", "kernel_size": 5}, "model.interactions.0", channels=8)
    assert calls == [(8, 5, 4)]
    with pytest.raises(RegistryError) as err:
        reg.build({"type": "box", "kernal_size": 5}, "model.interactions.0", channels=8)
    msg = str(err.value)
    assert msg.startswith("model.interactions.0.kernal_size: unknown option")
    assert "did you mean 'kernel_size'" in msg and "accepted: kernel_size, reduction" in msg
    assert calls == [(8, 5, 4)]  # nothing was constructed for the bad config


def test_runtime_argument_cannot_be_set_from_config():
    reg = Registry("widget")
    reg.register("box")(lambda channels, k=1: (channels, k))
    with pytest.raises(RegistryError, match=r"m\.channels: set by mtdense"):
        reg.build({"type": "box", "channels": 3}, "m", channels=8)


def test_missing_required_option_is_named():
    reg = Registry("widget")
    reg.register("seg")(lambda name, num_classes: None)
    with pytest.raises(RegistryError, match=r"tasks\.sem: widget 'seg' needs option\(s\): num_classes"):
        reg.build({"type": "seg"}, "tasks.sem", name="sem")


def test_unknown_name_lists_registered_and_closest():
    with pytest.raises(RegistryError) as err:
        BACKBONES.build({"type": "unet_encodr"}, "model.backbone", in_channels=3)
    msg = str(err.value)
    assert "model.backbone.type: unknown backbone 'unet_encodr'" in msg
    assert "did you mean 'unet_encoder'" in msg and "timm" in msg


def test_duplicate_registration_is_refused():
    reg = Registry("widget")
    reg.register("a")(lambda: 1)
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("a")(lambda: 2)


def test_every_kind_imports_its_plugins_lazily():
    # Each kind finds its built-ins without the caller importing any mtdense module first.
    assert "unet" in ALL_REGISTRIES["decoder"].names()
    assert "segmentation" in ALL_REGISTRIES["task"].names()
    assert "csv" in ALL_REGISTRIES["logger"].names()
    assert "synthetic_shapes" in ALL_REGISTRIES["dataset"].names()


@pytest.fixture
def plugin_on_path(tmp_path, monkeypatch):
    """A tiny third-party package installed the way pip would: module + dist-info with an
    entry point in the group ``mtdense.plugins``; importlib.metadata discovers it on sys.path."""
    (tmp_path / "mtdense_toy_plugin.py").write_text(textwrap.dedent("""
        from torch import nn
        from mtdense.registry import INTERACTIONS

        @INTERACTIONS.register("toy_swap")
        class ToySwap(nn.Module):
            def __init__(self, channels):
                super().__init__()
            def forward(self, feats):
                return dict(feats)
    """))
    (tmp_path / "mtdense_broken_plugin.py").write_text("raise RuntimeError('boom at import')\n")
    dist = tmp_path / "mtdense_toy_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mtdense-toy-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[mtdense.plugins]\ntoy = mtdense_toy_plugin\nbroken = mtdense_broken_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    yield
    INTERACTIONS._table.pop("toy_swap", None)
    for mod in ("mtdense_toy_plugin", "mtdense_broken_plugin"):
        sys.modules.pop(mod, None)


def test_entry_point_plugin_registers_and_broken_plugin_only_warns(plugin_on_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry.load_plugins()
    assert "toy_swap" in INTERACTIONS.names()
    module = INTERACTIONS.build({"type": "toy_swap"}, "model.interactions.0", channels={"a": 4})
    assert isinstance(module, nn.Module)
    messages = [str(w.message) for w in caught]
    assert any("'broken'" in m and "boom at import" in m for m in messages)
