"""Registry: building, option validation, did-you-mean, lazy imports, entry-point plugins."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import pytest
from torch import nn

import mtdense.registry as registry
from mtdense.registry import BACKBONES, INTERACTIONS, Registry
from mtdense.errors import RegistryError


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


LAZY_PROBE = """
import sys
from mtdense.registry import ALL_REGISTRIES
loaded = sorted(m for m in sys.modules if m.startswith("mtdense.") and m not in {"mtdense.registry", "mtdense.errors",
                                                                               "mtdense.options"})
assert not loaded, f"importing the registry imported plugin modules: {loaded}"
expected = {"backbone": "unet_encoder", "decoder": "unet", "head": "conv", "interaction": "cbim",
            "task": "segmentation", "loss": "focal", "coupling": "class_estimate_consistency", "balancer": "dwa",
            "metric": "precipitation", "dataset": "precip_tiles", "logger": "csv", "teacher": "ema",
            "transform": "random_scale_crop_flip", "rule": "gpi"}
no_builtins = {"hook", "batch_transform"}  # kinds whose plugins come from domains or users only
assert set(expected) | no_builtins == set(ALL_REGISTRIES), sorted(ALL_REGISTRIES)
for kind, name in expected.items():
    assert name in ALL_REGISTRIES[kind].names(), (kind, name)
assert "mtdense.domains.precip.tile_store" in sys.modules  # found through the domain's plugin module
assert "mtdense.domains.precip.gpi_baseline" in sys.modules
print("lazy ok")
"""


@pytest.mark.slow
def test_every_kind_imports_its_plugins_lazily():
    # A fresh interpreter: in this process other tests have already imported the plugins.
    proc = subprocess.run([sys.executable, "-c", LAZY_PROBE], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "lazy ok"


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
    registry.PLUGINS.reset()
    yield tmp_path
    INTERACTIONS._table.pop("toy_swap", None)
    for mod in ("mtdense_toy_plugin", "mtdense_broken_plugin", "mtdense_toy_domain", "mtdense_toy_domain.heads"):
        sys.modules.pop(mod, None)
    registry.PLUGINS.reset()


def test_entry_point_plugin_registers_and_broken_plugin_only_warns(plugin_on_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry.load_plugins()
    assert "toy_swap" in INTERACTIONS.names()
    module = INTERACTIONS.build({"type": "toy_swap"}, "model.interactions.0", channels={"a": 4})
    assert isinstance(module, nn.Module)
    messages = [str(w.message) for w in caught]
    assert any("'broken'" in m and "boom at import" in m for m in messages)


def test_plugin_module_locations_load_lazily_and_failures_are_named(plugin_on_path):
    """A domain-style plugin module declares LOCATIONS; a broken location breaks only its own
    kind's unknown-name errors (which then say why), never unrelated lookups."""
    pkg = plugin_on_path / "mtdense_toy_domain"
    pkg.mkdir()
    (pkg / "__init__.py").write_text('LOCATIONS = {"head": ["mtdense_toy_domain.heads"]}\n')
    (pkg / "heads.py").write_text("import not_a_module_anywhere\n")
    dist = plugin_on_path / "mtdense_toy_plugin-0.1.dist-info" / "entry_points.txt"
    dist.write_text("[mtdense.plugins]\ntoydomain = mtdense_toy_domain\n")
    registry.PLUGINS.reset()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert "cbim" in INTERACTIONS.names()  # unrelated kind: untouched by the broken module
        assert "mtdense_toy_domain.heads" not in sys.modules
        assert "conv" in registry.HEADS.names()  # built-in heads still there
        with pytest.raises(RegistryError, match=r"model.heads.x.type: unknown head 'toy'.*"
                                                r"mtdense_toy_domain.heads \(ModuleNotFoundError"):
            registry.HEADS.get("toy", "model.heads.x.type")


def test_plugin_errors_get_the_config_path_prefixed():
    from mtdense.errors import ConfigError

    reg = Registry("toy")

    @reg.register("strict")
    def strict(upsample: str = "bilinear"):
        if upsample not in ("bilinear", "nearest"):
            raise ConfigError(f"{upsample!r} is not one of bilinear, nearest", key="upsample")
        return upsample

    with pytest.raises(ConfigError) as info:
        reg.build({"type": "strict", "upsample": "cubic"}, "model.branches.rain.decoder")
    assert str(info.value) == "model.branches.rain.decoder.upsample: 'cubic' is not one of bilinear, nearest"


def test_class_without_own_init_rejects_unknown_options():
    reg = Registry("toy")

    @reg.register("plain")
    class Plain:
        pass

    with pytest.raises(RegistryError, match="x.typo: unknown option for toy 'plain'"):
        reg.build({"type": "plain", "typo": 1}, "x")
    assert isinstance(reg.build({"type": "plain"}, "x"), Plain)
    assert reg.name_of(Plain) == "plain" and not hasattr(Plain, "registry_name")
