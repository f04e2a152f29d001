"""Non-learned rules (kind ``rule``): the GPI rule by hand, its bench scoring on a precipitation tile
store against the ``mtdense gpi`` command and a hand-computed Jaccard, and the conformance kit on
a broken rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mtdense.bench.rules import RuleRun, evaluate_rule
from mtdense.config import CONFIG_DIR, load_config
from mtdense.data.normalization import denormalize, normalize
from mtdense.domains.precip.gpi_baseline import gpi_baseline_scores
from mtdense.domains.precip.tile_store import PrecipTiles
from mtdense.errors import ConfigError
from mtdense.registry import RULES
from mtdense.testing import ConformanceError, check_plugin


def test_gpi_rule_by_hand():
    rule = RULES.build({"type": "gpi"}, "rules.0", channel_names=["B11", "B13", "B15"])
    image = torch.full((1, 3, 2, 2), 200.0)  # B11 and B15 are cold everywhere: only B13 counts
    image[0, 1] = torch.tensor([[234.9, 235.0], [180.0, 290.0]])
    assert rule.targets == ("rain_rate",)
    assert rule(image)["rain_rate"].tolist() == [[[3.0, 0.0], [3.0, 0.0]]]
    warm = RULES.build({"type": "gpi", "band": "B15", "threshold_k": 190.0, "rate_mm_h": 1.5}, "rules.0",
                       channel_names=["B11", "B13", "B15"])
    assert warm(image)["rain_rate"].tolist() == [[[0.0, 0.0], [0.0, 0.0]]]
    with pytest.raises(ConfigError, match=r"^pairs.p.rules.0.band: 'B14' is not an input channel; channels: B11, B13$"):
        RULES.build({"type": "gpi", "band": "B14"}, "pairs.p.rules.0", channel_names=["B11", "B13"])


def test_denormalize_inverts_normalize():
    norm = {"mean": [250.0, 0.5], "std": [20.0, 0.25]}
    image = torch.tensor([[[[230.0]], [[1.0]]]])
    assert normalize(image, norm).flatten().tolist() == [-1.0, 2.0]
    assert torch.equal(denormalize(normalize(image, norm), norm), image)


def test_bench_scores_gpi_on_a_normalised_store_as_the_gpi_command(tiny_domain_data):
    """The bench gives the rule kelvin back from the z-scored store; the rain class is the class of
    the GPI rain rate at the task's 0.1 mm/h threshold: Jaccard by hand from the store in kelvin."""
    store = tiny_domain_data["precip_store"]
    cfg = load_config(CONFIG_DIR / "precip" / "multibranch.yaml",
                      [f"data.{split}.path={store}" for split in ("train", "val", "test")])
    run = RuleRun("precip", "gpi", [0, 1], {"type": "gpi"}, cfg, ["baseline:rain_class", "baseline:rain_rate"],
                  "grid.yaml: pairs.precip.rules.0")
    record = evaluate_rule(run)
    assert record["scored_split"] == "test" and record["tasks"] == ["rain_class", "rain_rate"]
    direct = gpi_baseline_scores(store, "test", thresholds=[0.5, 2, 5, 10])
    assert record["metrics"]["rain_rate"] == pytest.approx(direct, rel=1e-6, nan_ok=True)  # far@5, far@10: NaN
    tiles = PrecipTiles(store, split="test", bands=["B13"], normalize=False)
    bt = np.stack([tiles[i]["image"][0].numpy() for i in range(len(tiles))])
    obs = np.stack([tiles[i]["targets"]["rain_rate"].numpy() for i in range(len(tiles))])
    valid = np.stack([tiles[i]["valid"]["rain_rate"].numpy() for i in range(len(tiles))])
    rain_gpi, rain_obs = (bt < 235.0) & valid, (obs >= 0.1) & valid
    assert 0 < (rain_gpi & rain_obs).sum() < (rain_gpi | rain_obs).sum()  # the case is not trivial
    assert record["metrics"]["rain_class"]["jaccard"] == pytest.approx((rain_gpi & rain_obs).sum() / (rain_gpi | rain_obs).sum())


class LearnedBatchRule(nn.Module):
    """Broken on purpose: a learned scale, estimates that depend on the rest of the batch, no source."""

    targets = ("height",)

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, image):
        return {"height": self.scale.detach() * (image[:, 0] - image.mean())}


def test_kit_names_what_a_broken_rule_breaks():
    assert len(check_plugin("rule", "gpi")) == 3
    RULES.register("kit_learned_batch")(LearnedBatchRule)
    try:
        with pytest.raises(ConformanceError) as info:
            check_plugin("rule", "kit_learned_batch")
    finally:
        RULES._table.pop("kit_learned_batch", None)
    failures = "\n".join(info.value.failures)
    assert "sample 0 alone gives another estimate than within the batch" in failures
    assert "1 trainable parameters: a rule is not learned" in failures
    assert len(info.value.failures) == 2
