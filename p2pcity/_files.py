"""The one way we write a secret or a config file: atomically, and 0600 from its first byte.

A new file beside the target is created with ``O_EXCL`` and mode 0600 (so no
other user can open it between create and chmod), fsynced, then renamed over
the target: a crash leaves the old file or the new one, never half of each.
Callers decide whether an existing target may be replaced.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600 (replacing ``path`` if it exists)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
