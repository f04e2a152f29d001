"""Stop cleanly on Ctrl-C or SIGTERM (e.g. a SLURM pre-emption).

Inside ``StopOnSignal()`` the first SIGINT/SIGTERM only sets ``requested``; the trainer finishes
the current optimizer step, writes a checkpoint, says how to resume and exits with 128 + the
signal number. A second signal stops at once (the previous handlers are back by then).
Outside the main thread (where Python cannot install handlers) it does nothing.
"""

from __future__ import annotations

import signal
import threading


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
