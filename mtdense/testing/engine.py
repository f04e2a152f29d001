"""Conformance of what the trainer drives: loggers, teachers and step hooks.

- logger (built with an existing ``run_dir`` and ``config``): ``start``, ``advance``, ``log`` (with new
  metric names appearing later) and ``close`` run, and files go only under ``run_dir``.
- teacher (an ``mtdense.engine.teachers.Teacher``, built with the kit's tiny ``student`` and
  standard ``tasks``): ``predict(image)`` gives finite raw outputs B×K×H×W per task without
  gradient; ``train()`` leaves it in eval mode; predictions are repeatable; after
  ``after_optimizer_step`` its ``state_dict`` restores the same predictions in a fresh teacher
  (exact resume).
- hook (an ``mtdense.engine.hooks.Hook``, built with ``tasks``): every method runs in the
  trainer's order, ``before_forward`` returns a batch in the contract, and ``state_dict``
  survives ``torch.save`` and ``load_state_dict`` into a fresh hook.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from mtdense.engine.hooks import Hook
from mtdense.engine.teachers import Teacher
from mtdense.registry import HOOKS, LOGGERS, TEACHERS
from mtdense.testing.data import check_sample, equal
from mtdense.testing.fixtures import fake_trainer, raw_outputs, sample_batch, standard_tasks, tiny_student


def _round_trip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


# ---------------------------------------------------------------- loggers

def check_logger(name: str, options: dict, workdir: Path) -> None:
    run_dir = workdir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)  # the trainer creates it before building loggers
    logger = LOGGERS.build({"type": name, **options}, "logging.loggers.0", run_dir=run_dir,
                           config={"seed": 0, "trainer": {"lr": 0.001}})
    logger.start(4, 0)
    logger.advance(1, {"loss": 0.5})
    logger.log({"train/loss": 0.5}, 1)
    logger.log({"val/loss": 0.4, "val/semantic/miou": 0.25}, 2)
    logger.close()
    stray = [p.name for p in workdir.iterdir() if p.name not in ("run", "data")]
    assert not stray, f"files written outside run_dir: {stray}"


def logger_checks(name: str, options: dict, workdir) -> list:
    return [("start/advance/log/close", lambda: check_logger(name, options, Path(workdir)))]


# ---------------------------------------------------------------- teachers

def _teacher(name: str, options: dict, seed: int = 0):
    tasks = standard_tasks()
    student = tiny_student(tasks, seed=seed)
    teacher = TEACHERS.build({"type": name, **options}, "teachers.teacher", student=student, tasks=tasks)
    assert isinstance(teacher, Teacher), f"a teacher must subclass mtdense.engine.teachers.Teacher, got {type(teacher).__name__}"
    return teacher, student, tasks


def check_teacher_predict(name: str, options: dict) -> None:
    teacher, _, _ = _teacher(name, options)
    image = sample_batch()["image"]
    out = teacher.predict(image)
    assert isinstance(out, dict) and out, "predict must return {task: raw output}"
    for task, raw in out.items():
        assert raw.dim() == 4 and raw.shape[0] == image.shape[0] and raw.shape[-2:] == image.shape[-2:], \
            f"{task}: shape {tuple(raw.shape)}, expected B×K×H×W for image {tuple(image.shape)}"
        assert not raw.requires_grad, f"{task}: teacher outputs must not carry gradient"
        assert torch.isfinite(raw).all(), f"{task}: non-finite teacher output"
    teacher.train()
    assert not any(m.training for m in teacher.modules()), "train() put (part of) the teacher in training mode"
    again = teacher.predict(image)
    assert all(torch.equal(out[k], again[k]) for k in out), "two predictions of the same image differ"


def check_teacher_resume(name: str, options: dict) -> None:
    teacher, student, tasks = _teacher(name, options)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(0.1)
    teacher.after_optimizer_step(fake_trainer(student, tasks))
    fresh, _, _ = _teacher(name, options, seed=1)
    fresh.load_state_dict(_round_trip(teacher.state_dict()))
    image = sample_batch()["image"]
    a, b = teacher.predict(image), fresh.predict(image)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), \
        "a fresh teacher loaded with state_dict() predicts differently (resume would not be exact)"


def teacher_checks(name: str, options: dict, workdir) -> list:
    return [("predict: raw outputs, no gradient, eval mode", lambda: check_teacher_predict(name, options)),
            ("state_dict resumes exactly", lambda: check_teacher_resume(name, options))]


# ---------------------------------------------------------------- hooks

def _hook(name: str, options: dict, tasks):
    hook = HOOKS.build({"type": name, **options}, "hooks.0", tasks=tasks)
    assert isinstance(hook, Hook), f"a hook must subclass mtdense.engine.hooks.Hook, got {type(hook).__name__}"
    return hook


def check_hook_cycle(name: str, options: dict) -> None:
    tasks = standard_tasks()
    hook, trainer = _hook(name, options, tasks), fake_trainer(tiny_student(tasks), tasks)
    hook.on_fit_start(trainer)
    batch = hook.before_forward(sample_batch(tasks), 0)
    assert isinstance(batch, dict), "before_forward must return the batch"
    check_sample(batch, batched=True)
    hook.before_loss(batch, raw_outputs(tasks))
    hook.after_optimizer_step(trainer)
    hook.on_epoch_end(trainer)
    state = _round_trip(hook.state_dict())
    fresh = _hook(name, options, tasks)
    fresh.load_state_dict(state)
    assert equal(_round_trip(fresh.state_dict()), state), "load_state_dict(state_dict()) does not restore the state"


def hook_checks(name: str, options: dict, workdir) -> list:
    return [("methods in trainer order, state round trip", lambda: check_hook_cycle(name, options))]
