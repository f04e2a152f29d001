"""Where a bench's runs execute: a Dask cluster (default) or inline, always one results writer.

``mtdense bench`` hands each unfinished run to ``dask.distributed``, in grid order, one run per
worker in flight (so an interrupted bench leaves whole seeds, not scattered runs):

* ``scheduler=None`` / ``"local"`` (default): a ``LocalCluster`` sized to the machine — one
  single-threaded worker process per core, at most ``workers`` (default 2, so two 1-thread
  runs at once on a 2-core machine; ``mtdense.dask_client``);
* ``scheduler="tcp://host:8786"``: a user's existing cluster (``dask scheduler`` +
  ``dask worker``); workers must see the same working directory (data and run folders are
  relative paths) and have mtdense installed;
* ``scheduler="inline"``: no Dask, the runs execute one after another in this process
  (debugging, and tests that monkeypatch the trainer).

The results store is written ONLY by this (client) process, one finished record at a time
(``ResultsFile.append`` replaces the file atomically), whatever executes the runs; so a
worker that dies never leaves half a line. A run that raises is reported and resubmitted
once — it resumes from its own last checkpoint; a second failure is reported again, the run
is left out of the store (a later ``--resume`` retries it), the other runs go on, and
``BenchFailures`` is raised at the end naming the failed runs.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Iterable

from mtdense.dask_client import dask_client, local_workers
from mtdense.errors import TrainingError


class BenchFailures(TrainingError):
    """Some runs failed twice; the finished ones are in the store."""


def run_remote(run: Any, profile: dict[str, Any]) -> dict[str, Any]:
    """Execute one run on a worker (torch threads as the grid's ``profile.threads``)."""
    import torch

    from mtdense.bench.runner import execute

    if profile.get("threads"):
        torch.set_num_threads(int(profile["threads"]))
    return execute(run, profile)


def execute_runs(runs: Iterable[Any], profile: dict[str, Any], on_done: Callable[[Any, dict], None],
                 log: Callable[[str], None], scheduler: str | None = None, workers: int | None = None,
                 processes: bool = True) -> None:
    """Execute ``runs`` (in order of submission) and call ``on_done(run, record)`` in this process."""
    runs = list(runs)
    if not runs:
        return
    if scheduler == "inline":
        _inline(runs, profile, on_done, log)
    else:
        _dask(runs, profile, on_done, log, scheduler, workers, processes)


def _failure(run: Any, exc: BaseException, attempt: int, log: Callable[[str], None]) -> None:
    what = "retrying once from its last checkpoint" if attempt == 1 else "left out of the results (rerun with --resume)"
    log(f"{run.key} failed ({type(exc).__name__}: {exc}); {what}")


def _raise_failures(failed: list[Any]) -> None:
    if failed:
        raise BenchFailures(f"{len(failed)} run(s) failed twice: {', '.join(r.key for r in failed)}; the other runs "
                            "are in the results file; fix the cause and rerun with --resume")


def _inline(runs: list[Any], profile: dict[str, Any], on_done, log) -> None:
    failed = []
    for run in runs:
        for attempt in (1, 2):
            try:
                record = run_remote(run, profile)
            except Exception as exc:  # noqa: BLE001 - reported, retried once, then listed
                _failure(run, exc, attempt, log)
                continue
            on_done(run, record)
            break
        else:
            failed.append(run)
    _raise_failures(failed)


def _dask(runs: list[Any], profile: dict[str, Any], on_done, log, scheduler: str | None, workers: int | None,
          processes: bool) -> None:
    from dask.distributed import as_completed

    with dask_client(scheduler, workers, processes, log) as client:
        # one run per worker in flight, the next submitted when one ends: Dask starts queued tasks in
        # its own order, and a bench stopped at a session's end must leave whole seeds behind
        slots = max(1, len(client.scheduler_info().get("workers", {})) or local_workers(workers))
        attempts: dict[str, int] = {}
        by_key = {run.key: run for run in runs}
        queue = iter(runs)

        def submit(run: Any, attempt: int):  # pure=False: a retried run is a new task; key= names it
            return client.submit(run_remote, run, profile, pure=False, key=f"{run.key}#{attempt}")

        finished = as_completed([submit(run, 1) for run in itertools.islice(queue, slots)])
        failed = []
        for future in finished:
            run = by_key[future.key.rsplit("#", 1)[0]]
            attempt = attempts[run.key] = attempts.get(run.key, 0) + 1
            if future.status == "error":
                _failure(run, future.exception(), attempt, log)
                if attempt == 1:
                    finished.add(submit(run, 2))
                    continue
                failed.append(run)
            else:
                on_done(run, future.result())
            for nxt in itertools.islice(queue, 1):
                finished.add(submit(nxt, 1))
        _raise_failures(failed)
