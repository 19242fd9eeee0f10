"""Batch transcription: one bundle over many files, in local worker processes or on Ray, resumable.

`python -m runtime batch --help`, or: run_batch(BatchJob(out, LoadSpec(bundle), AskSpec()), collect(paths)).
"""

from runtime.batch.inputs import Item, collect
from runtime.batch.job import BatchJob, run_batch
from runtime.batch.progress import Summary
from runtime.batch.ray_runner import RaySpec
from runtime.batch.worker import AskSpec, LoadSpec

__all__ = ["AskSpec", "BatchJob", "Item", "LoadSpec", "RaySpec", "Summary", "collect", "run_batch"]
