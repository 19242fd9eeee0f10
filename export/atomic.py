"""Write a folder under a temporary name and rename it when complete."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_dir(final: Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temp folder beside `final`; on success it replaces `final`, on error it is removed.

    An interrupted run leaves only a `.tmp-*` folder, never a complete-looking `final`.
    """
    final = Path(final).resolve()
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} exists; pass overwrite to replace it")
    for stale in final.parent.glob(f".tmp-{final.name}-*"):  # left by a run that was killed: start clean
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    try:
        yield tmp
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
