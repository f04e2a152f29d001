"""The console logger: a live display that fits 80 columns, one line per evaluation with the
monitored metric and the best so far, one closing line naming the best checkpoint, and short
lines when the output is not a terminal."""

from __future__ import annotations

import io
import re

from rich.console import Console

from mtdense.engine.console import ConsoleLogger

CONFIG = {"trainer": {"max_epochs": 3, "monitor": "val/rain/csi@2", "monitor_mode": "max", "accumulate": 1},
          "data": {"batch_size": 16}}


def run(tmp_path, terminal: bool) -> list[str]:
    out = io.StringIO()
    logger = ConsoleLogger(tmp_path, CONFIG, metrics=["val/loss"])
    logger.console = Console(file=out, width=80, force_terminal=terminal, color_system=None)
    logger.live = terminal
    logger.start(total_steps=30, first_step=0)
    for epoch, csi in zip((1, 2, 3), (0.5, 0.7, 0.6)):
        for step in range(epoch * 10 - 9, epoch * 10 + 1):
            logger.advance(step)
            if step % 5 == 0:
                logger.log({"train/loss/rain": 0.25, "train/loss/rate": 0.5, "train/lr": 1e-3}, step)
        for done in (1, 2):
            logger.eval_progress(done, 2)
        logger.log({"val/loss": 1.0 / epoch, "val/rain/csi@2": csi, "val/rain/pod@2": 0.9}, epoch * 10)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "best").write_text("step_00000020\n")
    logger.close()
    return out.getvalue().splitlines()


def test_non_terminal_output_is_one_short_line_per_epoch_and_evaluation(tmp_path):
    lines = run(tmp_path, terminal=False)
    assert len(lines) == 7  # 3 epochs × (progress + evaluation) + the closing line
    assert all(len(line) <= 80 for line in lines[:-1])  # the closing line holds two paths
    assert lines[0].startswith("epoch 1/3 · 10/30 · ETA ") and "img/s · loss 0.75" in lines[0]
    assert lines[1] == "epoch 1/3 · val/rain/csi@2 0.5 *best · val/loss 1"
    assert lines[3] == "epoch 2/3 · val/rain/csi@2 0.7 *best · val/loss 0.5"
    assert lines[5] == "epoch 3/3 · val/rain/csi@2 0.6 (best 0.7, epoch 2) · val/loss 0.3333"
    assert "pod" not in "\n".join(lines) and "train/lr" not in "\n".join(lines)  # the full set goes to files
    assert lines[6] == f"run {tmp_path} · best checkpoint {tmp_path / 'checkpoints' / 'step_00000020'} (val/rain/csi@2 0.7)"


def test_terminal_display_fits_80_columns_and_keeps_the_evaluation_lines(tmp_path):
    raw = "\n".join(run(tmp_path, terminal=True))
    lines = [line for line in re.split(r"[\r\n]", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "\n", raw)) if line.strip()]
    assert any(re.match(r"epoch [23]/3 +━+ +\d+/30 · ETA \d:\d\d:\d\d · \d+ img/s · loss 0.75$", line)
               for line in lines)  # the live training bar
    assert any(line.startswith("val ") for line in lines)  # the validation bar (drawn while it runs)
    assert all(len(line) <= 80 for line in lines[:-1]), max(lines[:-1], key=len)
    assert any(line.startswith("epoch 2/3 · val/rain/csi@2 0.7 *best") for line in lines)
    assert lines[-1].startswith(f"run {tmp_path} · best checkpoint")


def test_a_resumed_run_knows_the_best_score_before_it(tmp_path):
    out = io.StringIO()
    logger = ConsoleLogger(tmp_path, CONFIG)
    logger.console, logger.live = Console(file=out, width=80, color_system=None), False
    logger.start(total_steps=30, first_step=20, best=0.8)
    logger.log({"val/rain/csi@2": 0.75}, 30)
    assert out.getvalue().splitlines()[0] == "epoch 3/3 · val/rain/csi@2 0.75 (best 0.8)"
