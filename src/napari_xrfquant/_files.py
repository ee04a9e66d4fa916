"""Safe file writing: never half a file, never an unasked overwrite."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _current_umask() -> int:
    """Return the process umask (reading it requires setting it; restore at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The caller writes the whole file to the yielded path. If the block raises,
    the temporary file is removed and ``path`` is untouched, so readers never see
    a half-written file.

    Parameters
    ----------
    path
        Final destination.
    overwrite
        Replace an existing file at ``path``; otherwise refuse.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target}: exists; choose another name or allow overwriting")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target}: appeared while writing; not replaced")
        # mkstemp creates the file private (0600); give it the permissions a plain
        # open() would have given, so other users of a shared beamline disk can read it.
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
