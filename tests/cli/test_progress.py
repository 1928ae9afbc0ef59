"""The transfer bar draws on a terminal (a real pty here) and writes nothing elsewhere."""

from __future__ import annotations

import fcntl
import io
import os
import struct
import sys
import termios
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

import pytest

from p2pcity.cli.progress import MIN_BAR_BYTES, TransferBar

MIB = 1024 * 1024


@contextmanager
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TextIO, int]]:
    """stderr on a real pseudo-terminal of 100 columns; yields it and the side we read."""
    main, side = os.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    os.set_blocking(main, False)
    with os.fdopen(side, "w", buffering=1) as tty:
        monkeypatch.setattr(sys, "stderr", tty)
        try:
            yield tty, main
        finally:
            monkeypatch.undo()
    os.close(main)


def _screen(main: int, settle: float = 0.5) -> str:
    """Everything written to the terminal, read until it has been quiet for ``settle`` s."""
    shown, quiet_since = b"", time.monotonic()
    while time.monotonic() - quiet_since < settle:
        try:
            piece = os.read(main, 65536)
        except BlockingIOError:
            time.sleep(0.02)
            continue
        shown, quiet_since = shown + piece, time.monotonic()
    return shown.decode(errors="replace")


def _drive(total: int, start: int = 0) -> None:
    with TransferBar("upload") as bar:
        bar.say("resuming the upload")
        for done in range(start, total + 1, MIB):
            bar.update(done, total)


def test_a_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    with terminal(monkeypatch) as (tty, main):
        _drive(16 * MIB, start=8 * MIB)  # a resumed upload starts at its offset
        tty.flush()
        shown = _screen(main)
    assert "resuming the upload" in shown and "upload:" in shown
    assert "50%" in shown and "16.0M" in shown and " 0%" not in shown


def test_no_bar_off_a_terminal_or_for_small_transfers(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = io.StringIO()  # isatty() is False, as for a pipe or a log file
    monkeypatch.setattr(sys, "stderr", pipe)
    _drive(16 * MIB)
    assert pipe.getvalue() == "resuming the upload\n"  # the notice, and no bar
    with terminal(monkeypatch) as (tty, main):
        with TransferBar("upload") as bar:
            bar.update(MIN_BAR_BYTES - 1, MIN_BAR_BYTES - 1)
        tty.flush()
        assert _screen(main) == ""
