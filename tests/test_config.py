"""Config loading: one-level defaults, overrides, and error messages naming the key path."""

from __future__ import annotations

from pathlib import Path

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
    with pytest.raises(ConfigError, match=r"data.batch_size: must be >= 1, got 0"):
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


def test_switching_a_component_type_drops_the_old_types_options(cfg_dir):
    # override: unet_encoder's width/depth must not leak into timm
    cfg = load_config(cfg_dir / "exp.yaml", ["model.backbone.name=resnet18", "model.backbone.type=timm"])
    assert dict(cfg.model.backbone) == {"type": "timm", "name": "resnet18"}
    # a file: the experiment switches the backbone its defaults declared
    (cfg_dir / "timm.yaml").write_text(
        "defaults: [base/data.yaml, base/model.yaml]\nmodel:\n  backbone: {type: timm, name: resnet18}\n"
        "tasks:\n  semantic: {type: segmentation, num_classes: 3}\n")
    assert dict(load_config(cfg_dir / "timm.yaml").model.backbone) == {"type": "timm", "name": "resnet18"}
    # the same type keeps merging option by option
    assert dict(load_config(cfg_dir / "exp.yaml", ["model.backbone.type=unet_encoder"]).model.backbone) == \
        {"type": "unet_encoder", "width": 4, "depth": 3}
    # a plain name replaces a mapping of another type, and a mapping replaces a plain name
    cfg = load_config(cfg_dir / "exp.yaml", ["tasks.semantic.loss={type: focal, gamma: 2}", "tasks.semantic.loss=ce"])
    assert cfg.tasks.semantic.loss == "ce"


def test_switched_backbone_builds(cfg_dir):
    from mtdense.engine.builder import build_experiment

    cfg = load_config(cfg_dir / "exp.yaml", ["model.backbone.type=timm", "model.backbone.name=resnet18"])
    exp = build_experiment(cfg, channel_names=["a", "b", "c"])
    assert type(exp.model.backbone).__name__ == "TimmBackbone"


def test_list_element_overrides(cfg_dir):
    (cfg_dir / "inter.yaml").write_text(
        "defaults: [base/data.yaml, base/model.yaml]\ntasks:\n  semantic: {type: segmentation, num_classes: 3}\n"
        "model:\n  interactions:\n    - {type: cbim, stages: all, kernel_size: 7}\n    - {type: identity}\n")
    cfg = load_config(cfg_dir / "inter.yaml", ["model.interactions.0.kernel_size=3", "model.interactions.-1.type=ccam"])
    assert dict(cfg.model.interactions[0]) == {"type": "cbim", "stages": "all", "kernel_size": 3}
    assert dict(cfg.model.interactions[1]) == {"type": "ccam"}
    with pytest.raises(ConfigError, match=r"^model.interactions.2: no element '2'; this list has 2 element\(s\)"):
        load_config(cfg_dir / "inter.yaml", ["model.interactions.2.kernel_size=3"])
    with pytest.raises(ConfigError, match=r"^model.interactions.x: no element 'x'"):
        load_config(cfg_dir / "inter.yaml", ["model.interactions.x.kernel_size=3"])


def test_relative_data_paths_become_absolute(cfg_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(cfg_dir / "exp.yaml", ["data.train.path=tiles/store.h5", "data.val={type: x, root: ~/data}",
                                             "data.val.mask_dir=/abs/masks", "data.train.split=train"])
    assert cfg.data.train.path == str(tmp_path / "tiles" / "store.h5")
    assert cfg.data.val.root == str(Path.home() / "data")
    assert cfg.data.val.mask_dir == "/abs/masks"
    assert cfg.data.train.split == "train"  # not a path key


# Issue 10 §3: each of these trained (or crashed late) before; each is one line naming the key.
BAD_VALUES = [
    ("trainer.grad_clip=-1", "trainer.grad_clip: must be > 0, got -1; null turns clipping off"),
    ("trainer.lr=0", "trainer.lr: must be > 0, got 0"),
    ("trainer.warmup_steps=-5", "trainer.warmup_steps: must be >= 0, got -5"),
    ("trainer.keep_checkpoints=0", "trainer.keep_checkpoints: must be >= 1, got 0"),
    ("seed=1.5", "seed: must be an integer, got 1.5"),
    ("trainer.max_steps_per_epoch=-1", "trainer.max_steps_per_epoch: must be >= 1, got -1; null runs whole epochs"),
    ("trainer.max_epochs=true", "trainer.max_epochs: must be an integer, got True"),
    ("data.batch_size=true", "data.batch_size: must be an integer, got True"),
    ("trainer.lr=fast", "trainer.lr: must be a finite number, got 'fast'"),
    ("trainer.lr=.inf", "trainer.lr: must be a finite number, got inf"),
    ("trainer.eval_every_epochs=0", "trainer.eval_every_epochs: must be >= 1, got 0"),
    ("trainer.log_every_steps=0", "trainer.log_every_steps: must be >= 1, got 0"),
    ("trainer.checkpoint_every_steps=-1", "trainer.checkpoint_every_steps: must be >= 0, got -1; "
                                          "0 saves at the end of each epoch only"),
    ("trainer.min_lr_ratio=2", "trainer.min_lr_ratio: must be <= 1, got 2"),
    ("trainer.deterministic=1", "trainer.deterministic: must be true or false, got 1"),
    ("data.num_workers=-1", "data.num_workers: must be >= 0, got -1"),
    ("data.eval_batch_size=0", "data.eval_batch_size: must be >= 1, got 0"),
]


@pytest.mark.parametrize("override, message", BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_trainer_and_data_values_are_type_and_range_checked(cfg_dir, override, message):
    with pytest.raises(ConfigError) as err:
        load_config(cfg_dir / "exp.yaml", [override])
    assert str(err.value) == message


def test_plugin_scalar_options_are_type_checked():
    from mtdense.registry import BACKBONES, LOSSES

    with pytest.raises(ConfigError) as err:
        BACKBONES.build({"type": "unet_encoder", "width": "wide"}, "model.backbone", in_channels=3)
    assert str(err.value) == "model.backbone.width: must be an integer, got 'wide'"
    with pytest.raises(ConfigError, match=r"^tasks.a.loss.gamma: must be a finite number, got True$"):
        LOSSES.build({"type": "focal", "gamma": True}, "tasks.a.loss")
    assert LOSSES.build({"type": "focal", "gamma": 2}, "tasks.a.loss").gamma == 2  # an int is a number


def test_plugin_without_its_own_init_rejects_unknown_options():
    from torch import nn

    from mtdense.registry import Registry

    reg = Registry("head")

    @reg.register("bare")
    class Bare(nn.Module):  # nn.Module.__init__(self, *args, **kwargs) is inherited
        pass

    @reg.register("plain")
    class Plain:  # object.__init__ accepts nothing
        pass

    for name in ("bare", "plain"):
        with pytest.raises(ConfigError, match=rf"^model.head.widht: unknown option for head '{name}'"):
            reg.build({"type": name, "widht": 3}, "model.head")


@pytest.mark.slow
def test_a_saved_run_evaluates_from_any_directory(tiny_domain_data, tmp_path, monkeypatch):
    import shutil

    from mtdense.cli import main
    from mtdense.engine.trainer import Trainer

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    (project / "data").mkdir(parents=True)
    elsewhere.mkdir()
    shutil.copy(tiny_domain_data["precip_store"], project / "data" / "tiles.h5")
    monkeypatch.chdir(project)  # the config names the store relative to the project folder
    cfg = load_config("precip/single_estimation.yaml",
                      [f"data.{s}.path=data/tiles.h5" for s in ("train", "val", "test")] +
                      ["trainer.max_epochs=1", "trainer.max_steps_per_epoch=1", "data.batch_size=2",
                       "logging.loggers=[]", "trainer.out_dir=runs/r"])
    Trainer(cfg).fit()
    monkeypatch.chdir(elsewhere)
    assert main(["evaluate", str(project / "runs" / "r"), "--split", "test"]) == 0


def test_an_override_below_a_value_is_one_line(cfg_dir):
    with pytest.raises(ConfigError, match=r"^trainer.lr: is a value \(0.01\), not a section; cannot set trainer.lr.x$"):
        load_config(cfg_dir / "exp.yaml", ["trainer.lr.x=1"])
