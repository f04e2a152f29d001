"""Step-dependent coupling weights: ``w(step) = weight · r(step)``.

Configured per coupling as ``weight_schedule: {type: ..., ...}`` (no schedule: ``r = 1``).
``step`` is the number of optimizer steps done before the current one (0 for the first), the
trainer's ``global_step``, which every checkpoint stores: a resumed run gets the same weights
without any state of its own. Types:

- ``sigmoid_rampup`` (``steps: N``, ``start: S``, default 0): the consistency ramp-up of
  Laine & Aila, "Temporal Ensembling for Semi-Supervised Learning", ICLR 2017, used by the
  mean teacher (Tarvainen & Valpola, NeurIPS 2017) and by French et al., "Semi-supervised
  semantic segmentation needs strong, varied perturbations", BMVC 2020:

      r = 0                  for step < S   (the teacher is still an early copy of the student)
      r = exp(−5 (1 − t)²),  t = min(1, (step − S) / N), for step ≥ S   (1 from step S + N on)
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from mtdense.errors import ConfigError, check_keys, closest
from mtdense.options import Option


class SigmoidRampup:
    """``r(step)`` of the sigmoid-shaped ramp-up (Laine & Aila, ICLR 2017)."""

    options = {"steps": Option(None, "int", minimum=1), "start": Option(0, "int", minimum=0)}

    def __init__(self, steps: int, start: int = 0):
        self.steps, self.start = int(steps), int(start)

    def __call__(self, step: int) -> float:
        if step < self.start:
            return 0.0
        t = min(1.0, (step - self.start) / self.steps)
        return math.exp(-5.0 * (1.0 - t) ** 2)


SCHEDULES = {"sigmoid_rampup": SigmoidRampup}


def build_weight_schedule(cfg: Mapping[str, Any] | None, key: str) -> SigmoidRampup | None:
    """The schedule of ``cfg`` (``None`` for none), every option checked; errors are keyed ``key.option``."""
    if cfg is None:
        return None
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"{cfg!r} must be a mapping such as {{type: sigmoid_rampup, steps: 100}}", key=key)
    options = dict(cfg)
    kind = options.pop("type", None)
    if kind not in SCHEDULES:
        raise ConfigError(f"{kind!r} is not a weight schedule{closest(kind, SCHEDULES)}; "
                          f"accepted: {', '.join(SCHEDULES)}", key=f"{key}.type")
    schedule = SCHEDULES[kind]
    check_keys(options, schedule.options, f"option of weight schedule {kind!r}", under=key)
    for name, option in schedule.options.items():
        if name in options:
            option.check(options[name], f"{key}.{name}")
        elif option.default is None:
            raise ConfigError(f"required by weight schedule {kind!r}", key=f"{key}.{name}")
    return schedule(**options)
