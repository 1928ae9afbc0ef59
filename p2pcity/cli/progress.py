"""A progress bar on stderr for blob transfers (tqdm), drawn only when a person is watching.

Off a terminal (a pipe, a log file, CI) nothing is drawn: the bar is tqdm's
``disable`` when stderr is not a TTY, and small transfers, which finish
before a bar is worth reading, draw none either. A resumed upload's bar
starts at the byte the node already had.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Never

import click
from tqdm import tqdm

MIN_BAR_BYTES = 4 * 1024 * 1024


class TransferBar:
    """``update`` is a ``sharing.http_blobs.Progress``; ``say`` prints a line above the bar."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._bar: tqdm[Never] | None = None
        self._shown = sys.stderr.isatty()

    def update(self, done: int, total: int) -> None:
        if not self._shown or total < MIN_BAR_BYTES:
            return
        if self._bar is None:
            self._bar = tqdm(
                desc=self.label,
                total=total,
                initial=done,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=sys.stderr,
                leave=False,
                dynamic_ncols=True,
            )
        else:
            self._bar.update(done - self._bar.n)

    def say(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)
        else:
            click.echo(line, err=True)

    def __enter__(self) -> TransferBar:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
