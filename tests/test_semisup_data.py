"""Labelled + unlabelled data: split rule and files, masked unlabelled samples, mixed batches."""

import numpy as np
import pytest
import torch

from conftest import tiny_config
from mtdense.config import from_dict
from mtdense.data import mixed_sampler
from mtdense.data.label_split import CITYSCAPES_SPLIT_SIZES, labelled_count, read_split, select_labelled
from mtdense.data.mixed_sampler import MixedRatioSampler
from mtdense.data.semisup import SemiSupervised
from mtdense.domains.street.cityscapes import Cityscapes
from mtdense.engine.builder import make_loader
from mtdense.errors import ConfigError, DataError
from test_cityscapes import CITY, DEPTH_VALID, STEMS, write_sample

SHAPES = {"type": "synthetic_shapes", "length": 20, "size": [12, 12], "invalid_border": 0}


def test_label_fractions_give_the_standard_cityscapes_sizes():
    sizes = {name: labelled_count(2975, None, 100) if name == "100" else
             labelled_count(2975, {"1/8": 1 / 8, "1/4": 1 / 4, "1/2": 1 / 2, "full": 1.0}[name], None)
             for name in CITYSCAPES_SPLIT_SIZES}
    assert sizes == {"100": 100, "1/8": 372, "1/4": 744, "1/2": 1488, "full": 2975}
    with pytest.raises(ConfigError, match="exactly one"):
        labelled_count(10, 0.5, 3)


def test_split_rule_is_order_free_nested_and_seeded():
    ids = [f"city_{i:06d}" for i in range(200)]
    eighth, quarter = select_labelled(ids, 25, seed=0), select_labelled(ids, 50, seed=0)
    assert select_labelled(ids[::-1], 25, seed=0) == eighth[::-1]  # file order does not matter
    assert set(eighth) < set(quarter)  # 1/8 is inside 1/4
    assert set(select_labelled(ids, 25, seed=1)) != set(eighth)
    # the rule is the SHA-256 order (checked with sha256sum), so this value is fixed forever
    assert select_labelled(["a", "b", "c", "d"], 2, seed=0) == ["a", "d"]  # sha256("0:d") < ("0:a") < others


def test_split_file_accepts_published_list_lines(tmp_path):
    ids = ["aachen_000000_000019", "aachen_000001_000019", "bochum_000000_000313"]
    path = tmp_path / "372_train.txt"
    path.write_text("# comment\n\nleftImg8bit/train/bochum/bochum_000000_000313_leftImg8bit.png "
                    "gtFine/train/bochum/bochum_000000_000313_gtFine_labelTrainIds.png\naachen_000000_000019\n")
    assert read_split(path, ids) == ["aachen_000000_000019", "bochum_000000_000313"]
    path.write_text("zurich_000000_000019\n")
    with pytest.raises(DataError, match="not in the labelled pool"):
        read_split(path, ids)


def test_unlabelled_samples_have_false_masks_except_kept_targets(tmp_path):
    split = tmp_path / "run" / "label_split.txt"
    ds = SemiSupervised(SHAPES, labelled_count=5, split_file=str(split), keep_targets=["height"])
    assert len(ds) == 20 and len(ds.labelled_indices) == 5 and ds.channel_names == ["band0", "band1", "band2"]
    lab, unl = ds[ds.labelled_indices[0]], ds[ds.unlabelled_indices[0]]
    assert lab["valid"]["semantic"].all() and lab["meta"]["labelled"] == 1
    assert not unl["valid"]["semantic"].any() and unl["valid"]["height"].all() and unl["meta"]["labelled"] == 0
    written = [line for line in split.read_text().splitlines() if not line.startswith("#")]
    assert written == ds.labelled_ids == select_labelled([str(i) for i in range(20)], 5, 0)
    # the run keeps its split when resumed or re-evaluated; a file made with another rule is refused
    assert SemiSupervised(SHAPES, labelled_count=5, split_file=str(split)).labelled_ids == ds.labelled_ids
    for other in ({"labelled_count": 9}, {"labelled_count": 5, "split_seed": 7}):
        with pytest.raises(DataError, match="made with labelled_count=5, split_seed=0"):
            SemiSupervised(SHAPES, split_file=str(split), **other)
    published = tmp_path / "published.txt"  # a list without mtdense's header is used as given
    published.write_text("3\n4\n")
    assert SemiSupervised(SHAPES, label_fraction=0.5, split_file=str(published)).labelled_ids == ["3", "4"]
    dropped = SemiSupervised(SHAPES, label_fraction=0.25, rest="drop")
    assert len(dropped) == 5 and not dropped.unlabelled_indices


def test_every_batch_has_the_configured_labelled_count():
    ds = SemiSupervised(SHAPES, labelled_count=2, labelled_ratio=0.25)  # 2 labelled, 18 unlabelled
    sampler = ds.make_sampler(batch_size=4, seed=0)
    order = list(sampler)
    assert sampler.num_batches() == 6 and len(order) == len(sampler) == 24  # the larger pool sets the epoch
    labelled = set(ds.labelled_indices)
    for b in range(6):
        batch = order[4 * b:4 * b + 4]
        assert batch[0] in labelled and not labelled & set(batch[1:])
    assert sorted(i for b in range(6) for i in order[4 * b + 1:4 * b + 4]) == ds.unlabelled_indices
    assert [order[4 * b] for b in range(6)].count(ds.labelled_indices[0]) == 3  # labelled pool cycles
    with pytest.raises(ConfigError, match="labelled_ratio"):
        SemiSupervised(SHAPES, labelled_count=4, labelled_ratio=0.1).make_sampler(batch_size=4, seed=0)


def test_sampler_resumes_mid_epoch_and_shards_like_one_process(monkeypatch):
    sampler = MixedRatioSampler(list(range(6)), list(range(6, 30)), batch_size=4, labelled_per_batch=2, seed=3)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.set_epoch(2, start_batch=5)
    assert list(sampler) == full[5 * 4:]
    sampler.set_epoch(3)
    assert list(sampler) != full
    one = MixedRatioSampler(list(range(6)), list(range(6, 30)), batch_size=8, labelled_per_batch=4, seed=3)
    one.set_epoch(2)
    global_order = list(one)
    monkeypatch.setattr(mixed_sampler.dist_utils, "world_size", lambda: 2)
    per_rank = []
    for r in range(2):
        monkeypatch.setattr(mixed_sampler.dist_utils, "rank", lambda r=r: r)
        sampler.set_epoch(2)
        per_rank.append(list(sampler))
    assert len(per_rank[0]) == len(global_order) // 2
    for b in range(one.num_batches()):
        ranks = per_rank[0][4 * b:4 * b + 4] + per_rank[1][4 * b:4 * b + 4]
        assert sorted(ranks) == sorted(global_order[8 * b:8 * b + 8])
        assert all(len(set(chunk[:2]) & set(range(6))) == 2 for chunk in (ranks[:4], ranks[4:]))


def test_make_loader_uses_the_mixed_sampler(tmp_path):
    cfg = tiny_config(tmp_path)
    cfg["data"]["train"] = {"type": "semisup", "labelled": SHAPES, "labelled_count": 6, "labelled_ratio": 0.5}
    ds = SemiSupervised(SHAPES, labelled_count=6)
    loader = make_loader(from_dict(cfg), ds, "train", shuffle=True)
    batches = list(loader)
    assert len(batches) == loader.sampler.num_batches() == 7  # 14 unlabelled // 2 per batch
    assert all(b["meta"]["labelled"].tolist() == [1, 1, 0, 0] for b in batches)
    assert all(not b["valid"]["semantic"][2:].any() and b["valid"]["semantic"][:2].all() for b in batches)


def test_cityscapes_train_extra_is_read_as_unlabelled(tmp_path):
    write_sample(tmp_path, split="train_extra")
    for kind in ("gtFine",):
        for stem in STEMS:
            (tmp_path / kind / "train_extra" / CITY / f"{stem}_gtFine_labelIds.png").unlink()
    for kind, suffix in (("disparity", "disparity.png"), ("camera", "camera.json")):
        (tmp_path / kind / "train_extra" / CITY / f"{STEMS[1]}_{suffix}").unlink()
    with pytest.raises(FileNotFoundError, match="gtFine"):
        Cityscapes(tmp_path, split="train_extra")
    ds = Cityscapes(tmp_path, split="train_extra", unlabelled=True)
    with_disparity, without = ds[0], ds[1]
    assert ds.sample_ids() == STEMS
    assert not with_disparity["valid"]["semantic"].any() and not without["valid"]["semantic"].any()
    np.testing.assert_array_equal(with_disparity["valid"]["depth"].numpy(), DEPTH_VALID)
    assert not without["valid"]["depth"].any() and torch.isfinite(without["targets"]["depth"]).all()
