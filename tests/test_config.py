"""Config loading: one-level defaults, overrides, and error messages naming the key path."""

from __future__ import annotations

import pytest

from mtdense.config import load_config
from mtdense.errors import ConfigError


@pytest.fixture
def cfg_dir(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "data.yaml").write_text(
        "data:\n  train: {type: synthetic_shapes, length: 8}\n  batch_size: 2\n")
    (tmp_path / "base" / "model.yaml").write_text(
        "model:\n  backbone: {type: unet_encoder, width: 4, depth: 3}\ntrainer:\n  lr: 0.1\n")
    (tmp_path / "exp.yaml").write_text(
        "defaults: [base/data.yaml, base/model.yaml]\n"
        "tasks:\n  semantic: {type: segmentation, num_classes: 3}\n"
        "trainer:\n  lr: 0.01\n  max_epochs: 3\n")
    return tmp_path


def test_defaults_then_file_then_overrides(cfg_dir):
    cfg = load_config(cfg_dir / "exp.yaml", ["trainer.max_epochs=7", "data.batch_size=5"])
    assert cfg.trainer.lr == 0.01            # the experiment file beats its defaults
    assert cfg.trainer.max_epochs == 7       # the command line beats the file
    assert cfg.data.batch_size == 5
    assert cfg.model.backbone.width == 4     # from defaults
    assert cfg.trainer.schedule == "cosine"  # engine default filled in
    assert cfg.meta.name == "exp"


def test_trainer_typo_names_key_and_suggestion(cfg_dir):
    with pytest.raises(ConfigError) as err:
        load_config(cfg_dir / "exp.yaml", ["trainer.max_epoch=3"])
    assert "trainer.max_epoch: unknown key (did you mean 'max_epochs'?)" in str(err.value)


def test_unknown_section_and_bad_value(cfg_dir):
    with pytest.raises(ConfigError, match=r"trainr: unknown top-level section \(did you mean 'trainer'\?\)"):
        load_config(cfg_dir / "exp.yaml", ["trainr.lr=1"])
    with pytest.raises(ConfigError, match=r"trainer.precision: 'fp8' is not one of auto, fp32, bf16, fp16"):
        load_config(cfg_dir / "exp.yaml", ["trainer.precision=fp8"])
    with pytest.raises(ConfigError, match=r"data.batch_size: must be a positive integer"):
        load_config(cfg_dir / "exp.yaml", ["data.batch_size=0"])


def test_nested_defaults_and_missing_file_are_refused(cfg_dir):
    (cfg_dir / "nested.yaml").write_text("defaults: [exp.yaml]\n")
    with pytest.raises(ConfigError, match="only one level of defaults"):
        load_config(cfg_dir / "nested.yaml")
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(cfg_dir / "nope.yaml")
    (cfg_dir / "broken.yaml").write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(cfg_dir / "broken.yaml")


def test_bad_override_syntax(cfg_dir):
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(cfg_dir / "exp.yaml", ["trainer.lr"])
