"""The conformance kit on every registered plugin (parametrised over the registries, so a new
plugin is covered by registering it), and the kit on a third-party package installed through
the ``mtdense.plugins`` entry point, including a deliberately broken plugin."""

from __future__ import annotations

import sys
import textwrap

import pytest

import mtdense.registry as registry
from mtdense.registry import ALL_REGISTRIES
from mtdense.testing import ConformanceError, check_plugin, registered_plugins
from mtdense.testing.test_plugins import test_every_kind_has_checks, test_plugin_conforms  # noqa: F401  (collected here)

PLUGIN = textwrap.dedent('''
    """A third-party plugin package: a good loss, hook and batch transform; a loss that ignores
    validity masks, a dataset that breaks the sample contract and a batch transform drawing from
    torch's global RNG."""
    import torch
    from torch import nn
    from torch.utils.data import Dataset
    from mtdense.engine.hooks import Hook
    from torchmetrics import Metric
    from mtdense.registry import BATCH_TRANSFORMS, DATASETS, HOOKS, LOSSES, METRICS

    @LOSSES.register("kit_abs")
    class MaskedAbs(nn.Module):
        expects = "values"
        def forward(self, pred, target, valid):
            return torch.where(valid, (pred - target).abs(), 0).sum() / valid.sum().clamp_min(1)

    @LOSSES.register("kit_mean_everywhere")
    class MeanEverywhere(nn.Module):
        expects = "values"
        def forward(self, pred, target, valid):   # deliberately broken: averages invalid pixels too
            return (pred - target).abs().mean()

    @DATASETS.register("kit_int_images")
    class IntImages(Dataset):
        channel_names = ["a", "b"]
        target_keys = ["mask"]
        def __init__(self, transform=None):
            self.transform = transform
        def __len__(self):
            return 2
        def __getitem__(self, i):   # deliberately broken: int64 image, no `normalization` attribute
            return {"image": torch.zeros(2, 4, 4, dtype=torch.int64), "targets": {"mask": torch.zeros(4, 4)},
                    "valid": {"mask": torch.ones(4, 4, dtype=torch.bool)}, "meta": {}}

    @METRICS.register("kit_binary_iou")
    class BinaryIoU(Metric):
        conformance_kwargs = {"num_classes": 2}   # the kit's runtime num_classes for a binary-only metric
        def __init__(self, num_classes):
            super().__init__()
            if num_classes != 2:
                raise ValueError(f"binary masks only, got {num_classes} classes")
            self.add_state("inter", torch.zeros(()), dist_reduce_fx="sum")
            self.add_state("union", torch.zeros(()), dist_reduce_fx="sum")
        def update(self, pred, target, valid):
            p, t = (pred == 1) & valid, (target == 1) & valid
            self.inter += (p & t).sum()
            self.union += (p | t).sum()
        def compute(self):
            return {"iou": self.inter / self.union}

    @HOOKS.register("kit_counter")
    class StepCounter(Hook):
        def __init__(self):
            self.steps = 0
        def after_optimizer_step(self, trainer):
            self.steps += 1
        def state_dict(self):
            return {"steps": self.steps}
        def load_state_dict(self, state):
            self.steps = state["steps"]

    def flip_all(batch, flip):
        out = dict(batch)
        out["image"] = torch.where(flip[:, None, None, None], batch["image"].flip(-1), batch["image"])
        for part in ("targets", "valid"):
            out[part] = {k: torch.where(flip[:, None, None], v.flip(-1), v) for k, v in batch[part].items()}
        out["teacher"] = {t: {k: torch.where(flip[:, None, None, None], v.flip(-1), v) for k, v in outs.items()}
                          for t, outs in batch.get("teacher", {}).items()}
        return out

    @BATCH_TRANSFORMS.register("kit_flip")
    def kit_flip():
        return lambda batch, generator: flip_all(batch, torch.rand(len(batch["image"]), generator=generator) < 0.5)

    @BATCH_TRANSFORMS.register("kit_global_rng_flip")
    def kit_global_rng_flip():   # deliberately broken: ignores the generator
        return lambda batch, generator: flip_all(batch, torch.rand(len(batch["image"])) < 0.5)
''')


KIT_PLUGINS = [("loss", "kit_abs"), ("loss", "kit_mean_everywhere"), ("dataset", "kit_int_images"),
               ("hook", "kit_counter"), ("metric", "kit_binary_iou"), ("batch_transform", "kit_flip"), ("batch_transform", "kit_global_rng_flip")]


@pytest.fixture
def third_party(tmp_path, monkeypatch):
    """The package installed as pip would: module + dist-info naming it in ``mtdense.plugins``."""
    (tmp_path / "mtdense_kit_demo.py").write_text(PLUGIN)
    dist = tmp_path / "mtdense_kit_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mtdense-kit-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[mtdense.plugins]\nkit_demo = mtdense_kit_demo\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.PLUGINS.reset()
    yield tmp_path
    for kind, name in KIT_PLUGINS:
        ALL_REGISTRIES[kind]._table.pop(name, None)
    sys.modules.pop("mtdense_kit_demo", None)
    registry.PLUGINS.reset()


def test_kit_passes_a_good_plugin_and_names_what_a_broken_one_breaks(third_party):
    assert set(KIT_PLUGINS) <= set(registered_plugins())
    assert check_plugin("loss", "kit_abs") == ["finite value and gradient", "invalid pixels are ignored",
                                                "no valid pixel gives 0", "correct beats wrong"]
    with pytest.raises(ConformanceError) as info:
        check_plugin("loss", "kit_mean_everywhere")
    assert [f.split(":")[0] for f in info.value.failures] == ["invalid pixels are ignored", "no valid pixel gives 0"]
    assert "values at invalid pixels changed the loss" in str(info.value)
    with pytest.raises(ConformanceError) as info:
        check_plugin("dataset", "kit_int_images")
    failures = "\n".join(info.value.failures)
    assert "sample contract: image must be a float32 C×H×W tensor, got torch.int64" in failures
    assert "normalization: set normalization = None" in failures
    assert check_plugin("hook", "kit_counter") == ["methods in trainer order, state round trip"]
    assert len(check_plugin("metric", "kit_binary_iou")) == 5  # built with num_classes=2 from conformance_kwargs
    assert len(check_plugin("batch_transform", "kit_flip")) == 2
    with pytest.raises(ConformanceError, match="randomness only from the generator: torch's global RNG was used"):
        check_plugin("batch_transform", "kit_global_rng_flip")


def test_pytest_pyargs_runs_the_kit_on_installed_plugins(third_party, monkeypatch):
    """``pytest --pyargs mtdense.testing`` (run in-process to skip a second torch import)."""

    class Outcomes:
        def __init__(self):
            self.seen = {}

        def pytest_runtest_logreport(self, report):
            if report.when == "call":
                self.seen[report.nodeid.split("::")[-1]] = report.outcome

    outcomes = Outcomes()
    monkeypatch.chdir(third_party)
    monkeypatch.delitem(sys.modules, "mtdense.testing.test_plugins")  # re-collected with the new plugins
    code = pytest.main(["--pyargs", "mtdense.testing", "-k", "kit_ or every_kind", "-p", "no:cacheprovider", "-q"],
                       plugins=[outcomes])
    assert code == pytest.ExitCode.TESTS_FAILED
    assert outcomes.seen == {"test_every_kind_has_checks": "passed",
                             "test_plugin_conforms[loss-kit_abs]": "passed",
                             "test_plugin_conforms[loss-kit_mean_everywhere]": "failed",
                             "test_plugin_conforms[dataset-kit_int_images]": "failed",
                             "test_plugin_conforms[hook-kit_counter]": "passed",
                             "test_plugin_conforms[metric-kit_binary_iou]": "passed",
                             "test_plugin_conforms[batch_transform-kit_flip]": "passed",
                             "test_plugin_conforms[batch_transform-kit_global_rng_flip]": "failed"}


def test_unknown_kind_or_name_is_a_registry_error_not_a_conformance_failure():
    from mtdense.errors import RegistryError

    assert check_plugin("losses", "l1") == ["finite value and gradient", "invalid pixels are ignored",
                                            "no valid pixel gives 0", "correct beats wrong"]  # plural kind accepted
    with pytest.raises(RegistryError, match="unknown plugin kind 'los'.*did you mean 'loss'"):
        check_plugin("los", "l1")
    with pytest.raises(RegistryError, match="unknown loss 'l2'"):
        check_plugin("loss", "l2")
