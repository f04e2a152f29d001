"""Stop cleanly on Ctrl-C or SIGTERM (e.g. a SLURM pre-emption).

Inside ``StopOnSignal()`` the first SIGINT/SIGTERM only sets ``requested``; the trainer finishes
the current optimizer step and calls ``stop_if_requested``, which writes a checkpoint and raises
``Interrupted`` saying how to resume (the CLI exits with 128 + the signal number). A second
signal stops at once (the previous handlers are back by then). Outside the main thread (where
Python cannot install handlers) it does nothing.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Callable

import torch

from mtdense.engine import distributed as dist_utils
from mtdense.errors import Interrupted


class StopOnSignal:
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested: signal.Signals | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        self.requested = signal.Signals(signum)
        for sig, handler in self._previous.items():  # a second signal is not caught again
            signal.signal(sig, handler)

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def stop_if_requested(self, step: int, run_dir: Path, save: Callable[[], Path], device: torch.device) -> None:
        """If any rank got SIGINT/SIGTERM: ``save()`` (→ the checkpoint folder) and raise ``Interrupted``.
        Under DDP this is one all-reduce, so every rank must call it after the same steps."""
        if not dist_utils.any_rank(self.requested is not None, device):
            return
        folder = save()
        sig = self.requested or signal.SIGTERM
        raise Interrupted(f"stopped by {sig.name} after step {step}; checkpoint {folder}; "
                          f"continue with: mtdense train --resume {run_dir}", exit_code=128 + int(sig))
