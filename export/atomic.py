"""Write a folder under a temporary name and rename it when complete; one export per output.

An interrupted run leaves only a `.tmp-*` folder (removed by the next run to the same output),
never a complete-looking one. Each run holds a lock on its own temporary folder, so a second
run to the same output sees the first is alive and stops, and never deletes its work.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from runtime.atomic import fsync_dir
from runtime.errors import OptionsError


@contextmanager
def _locked(folder: Path, *, wait: bool) -> Iterator[bool]:
    """flock on a folder's own descriptor: yields whether it was taken."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


@contextmanager
def atomic_dir(final: Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temp folder beside `final`; on success it replaces `final` (files and folders
    synced first), on error it is removed."""
    final = Path(final).resolve()
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} exists; pass overwrite to replace it")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        with _locked(final.parent, wait=True):  # scan and create as one step
            _clear_leftovers(final)
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
            fd = os.open(tmp, os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as e:
        raise OptionsError(f"cannot write to {final.parent} ({e.strerror}): choose an output folder you can write") from None
    try:
        try:
            yield tmp
            _sync_tree(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp made it private
        if final.exists():
            old = final.with_name(f".old-{final.name}-{tmp.name[-8:]}")
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
        fsync_dir(final.parent)
    finally:
        os.close(fd)


def _clear_leftovers(final: Path) -> None:
    """Remove what killed runs to this output left; refuse while another run is alive."""
    for stale in final.parent.glob(f".tmp-{final.name}-*"):
        with _locked(stale, wait=False) as taken:
            if not taken:
                raise OptionsError(f"another export to {final} is running; wait for it or choose another output")
            shutil.rmtree(stale, ignore_errors=True)
    for old in final.parent.glob(f".old-{final.name}-*"):
        shutil.rmtree(old, ignore_errors=True)


def _sync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    fsync_dir(folder)
