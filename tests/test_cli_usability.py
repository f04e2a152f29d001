"""CLI start-up and usability: listing plugins without importing torch, overrides anywhere on the
line, ``train --resume RUN`` without repeating the config."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from mtdense.cli import main, parse_args
from mtdense.registry import ALL_REGISTRIES, static_registrations

from conftest import tiny_config


def test_cli_and_registry_list_do_not_import_torch():
    code = ("import sys, io, contextlib; from mtdense.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out: rc = main(['registry', 'list'])\n"
            "assert rc == 0 and 'interaction: cbim' in out.getvalue(), out.getvalue()\n"
            "heavy = sorted(m for m in ('torch', 'torchmetrics', 'torchvision', 'timm') if m in sys.modules)\n"
            "print(','.join(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_listed_names_read_from_source_equal_the_imported_names():
    for kind, registry in ALL_REGISTRIES.items():
        assert registry.listed_names() == registry.names(), kind
    assert static_registrations("mtdense.models.interactions.cbim") == {"INTERACTIONS": ["cbim"]}  # NAME constant


def test_static_registration_falls_back_to_import_for_computed_names(tmp_path, monkeypatch):
    (tmp_path / "computed_plugin.py").write_text(
        "from mtdense.registry import LOSSES\nfor n in ('a', 'b'):\n    LOSSES.register('computed_' + n)(len)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert static_registrations("computed_plugin") is None


def test_overrides_are_accepted_anywhere_on_the_line():
    args = parse_args(["train", "exp.yaml", "--resume", "runs/x", "trainer.lr=1e-3", "data.batch_size=2"])
    assert args.config == "exp.yaml" and args.resume == "runs/x"
    assert args.overrides == ["trainer.lr=1e-3", "data.batch_size=2"]
    args = parse_args(["evaluate", "runs/x", "--split", "test", "data.batch_size=2"])
    assert args.split == "test" and args.overrides == ["data.batch_size=2"]
    with pytest.raises(SystemExit):
        parse_args(["train", "exp.yaml", "--bogus"])
    with pytest.raises(SystemExit):  # a verb without overrides takes none
        parse_args(["registry", "list", "backbone", "x=1"])


def test_resume_without_the_config_uses_the_run_folder_config(tmp_path, capsys):
    cfg = tiny_config(tmp_path / "run", max_epochs=1)
    (tmp_path / "exp.yaml").write_text(json.dumps(cfg))
    assert main(["train", str(tmp_path / "exp.yaml")]) == 0
    first = json.loads(capsys.readouterr().out)
    # no CONFIG; the override comes after the option; training continues for one more epoch
    assert main(["train", "--resume", str(tmp_path / "run"), "trainer.max_epochs=2"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert first.keys() == second.keys() and second["val/loss"] != first["val/loss"]
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step_*")) == ["step_00000004",
                                                                                         "step_00000008"]
    assert main(["train", "--resume", str(tmp_path / "nothing_here")]) == 2
    assert "no config.yaml in this run folder" in capsys.readouterr().err


def _all_parsers(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _all_parsers(sub)


def test_every_help_shows_each_default_once():
    """Options whose help already states the default used to print it twice
    ("(default: None) (default: None)" in `mtdense bench --help`)."""
    from mtdense.cli import build_parser

    for parser in _all_parsers(build_parser()):
        text = " ".join(parser.format_help().split())
        assert "(default: None) (default" not in text, parser.prog
        formatter = parser._get_formatter()
        for action in parser._actions:
            if action.help and action.help is not argparse.SUPPRESS:
                assert formatter._get_help_string(action).count("(default:") <= 1, (parser.prog, action.dest)


def test_library_deprecation_warnings_stay_off_the_console_unless_debug(monkeypatch, capsys):
    """timm's `torch.jit.interface is deprecated` FutureWarning reached every `mtdense` user."""
    import warnings

    import mtdense.cli as cli

    def noisy(args):
        warnings.warn("`torch.jit.interface` is deprecated", FutureWarning)
        warnings.warn("a user-facing note", UserWarning)
        return 0

    monkeypatch.setattr(cli, "_registry_list", noisy)
    with warnings.catch_warnings():
        assert main(["registry", "list"]) == 0
    err = capsys.readouterr().err
    assert "deprecated" not in err and "mtdense: warning: a user-facing note" in err
    with pytest.warns(FutureWarning, match="deprecated"):  # --debug keeps Python's warning handling
        assert main(["--debug", "registry", "list"]) == 0
