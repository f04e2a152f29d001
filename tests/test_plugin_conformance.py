"""The conformance kit on every registered plugin (parametrised over the registries, so a new
plugin is covered by registering it), and the kit on a third-party package installed through
the ``mtdense.plugins`` entry point, including a deliberately broken plugin."""

from __future__ import annotations

import sys
import textwrap

import pytest

import mtdense.registry as registry
from mtdense.registry import DATASETS, LOSSES
from mtdense.testing import ConformanceError, check_plugin, registered_plugins
from mtdense.testing.test_plugins import test_every_kind_has_checks, test_plugin_conforms  # noqa: F401  (collected here)

PLUGIN = textwrap.dedent('''
    """A third-party plugin package: one good loss, one loss that ignores validity masks and a
    dataset that breaks the sample contract."""
    import torch
    from torch import nn
    from torch.utils.data import Dataset
    from mtdense.registry import DATASETS, LOSSES

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
''')


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
    for table, name in ((LOSSES, "kit_abs"), (LOSSES, "kit_mean_everywhere"), (DATASETS, "kit_int_images")):
        table._table.pop(name, None)
    sys.modules.pop("mtdense_kit_demo", None)
    registry.PLUGINS.reset()


def test_kit_passes_a_good_plugin_and_names_what_a_broken_one_breaks(third_party):
    assert {("loss", "kit_abs"), ("loss", "kit_mean_everywhere"), ("dataset", "kit_int_images")} <= set(registered_plugins())
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
                             "test_plugin_conforms[dataset-kit_int_images]": "failed"}
