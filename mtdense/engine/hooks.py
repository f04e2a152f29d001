"""Step hooks: the trainer's extension points, so methods such as mean teachers, distillation or
curriculum schedules need no branch in the trainer.

Configured as a top-level list ``hooks: [{type: ...}]`` (registry kind ``hook``); teachers
(``mtdense.engine.teachers``) are hooks too. The trainer calls, for every hook in order:

    on_fit_start(trainer)                      once, after a resume has restored state
    before_forward(batch, step) -> batch       every micro-batch, after teachers and batch
                                               transforms, before the model's forward
    before_loss(batch, outputs)                every micro-batch, after the forward
    after_optimizer_step(trainer)              after every optimizer step
    on_epoch_end(trainer)                      after every epoch (after evaluation)
    state_dict() / load_state_dict(state)      saved in the checkpoint's trainer state, so a
                                               resumed run continues exactly
"""

from __future__ import annotations

from typing import Any


class Hook:
    """Base class with no-op defaults; override what you need."""

    def on_fit_start(self, trainer: Any) -> None:
        """Called once when ``fit`` starts (after a resume has restored every state)."""

    def before_forward(self, batch: dict, step: int) -> dict:
        """Return the batch the model will see (may add entries or return a new dict)."""
        return batch

    def before_loss(self, batch: dict, outputs: dict) -> None:
        """Inspect (or add to ``batch``) after the forward, before losses are computed."""

    def after_optimizer_step(self, trainer: Any) -> None:
        """Called after every optimizer step (e.g. an EMA update)."""

    def on_epoch_end(self, trainer: Any) -> None:
        """Called after every epoch."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned."""
