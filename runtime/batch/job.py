"""One batch run: skip what the results file already holds, answer the rest, append as they finish.

Records of inputs that failed are kept and skipped like answered ones (a broken file fails
again the same way); `retry_failed` runs them again. Ctrl-C drops the in-flight inputs, keeps
every finished record, and reports the run as interrupted.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from runtime.batch.inputs import Item
from runtime.batch.local import run_local
from runtime.batch.output import ResultsFile, resume
from runtime.batch.progress import Progress, Summary
from runtime.batch.ray_runner import RaySpec, run_ray
from runtime.batch.worker import AskSpec, LoadSpec
from runtime.errors import OptionsError


@dataclass(frozen=True)
class BatchJob:
    out: Path
    load: LoadSpec
    ask: AskSpec
    workers: int = 1  # local processes, or Ray actors
    ray: RaySpec | None = None  # None: local mode
    retry_failed: bool = False

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise OptionsError(f"workers must be at least 1, got {self.workers}")


def run_batch(job: BatchJob, items: Sequence[Item], *, note: Callable[[str], None] = lambda _line: None,
              show_progress: bool | None = None) -> Summary:
    """Answer the items that have no record in job.out yet; the summary counts this run."""
    existing = resume(job.out, retry_failed=job.retry_failed)
    for line in existing.notes:
        note(line)
    todo = [i for i in items if i.id not in existing.records]
    failed_before = sum(1 for i in items if i.id in existing.failed)
    progress = Progress(len(todo), len(items) - len(todo), failed_before, show=show_progress)
    if todo:
        try:
            with ResultsFile(job.out) as out, closing(_runner(job, todo)) as records:
                for record in records:
                    out.write(record)
                    progress.add(record)
        except KeyboardInterrupt:
            progress.summary.interrupted = True
    return progress.close()


def _runner(job: BatchJob, items: Sequence[Item]):
    if job.ray is not None:
        return run_ray(items, job.load, job.ask, job.ray, job.workers)
    return run_local(items, job.load, job.ask, job.workers)
