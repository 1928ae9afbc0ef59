"""Running the js-libp2p peer of tests/interop/js: its npm install, its process, its events.

The npm packages are pinned by js/package-lock.json and installed once per
lockfile into ``$P2PCITY_INTEROP_CACHE`` (default ``~/.cache/p2pcity-interop``),
in a directory named by the lockfile's hash; a clean clone installs once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

JS_DIR = Path(__file__).parent / "js"
SOURCES = ("package.json", "package-lock.json", "peer.mjs", "polyfill.mjs")
Event = dict[str, Any]


def js_install_dir() -> Path:
    """The directory holding node_modules for our lockfile; installs it on first use, or skips."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node/npm not found on PATH: the js-libp2p interop test needs Node.js >= 20")
    lock = (JS_DIR / "package.json").read_bytes() + (JS_DIR / "package-lock.json").read_bytes()
    root = Path(os.environ.get("P2PCITY_INTEROP_CACHE", Path.home() / ".cache" / "p2pcity-interop"))
    target = root / f"js-{hashlib.sha256(lock).hexdigest()[:16]}"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # another test process may be installing
        if not (target / ".installed").exists():
            target.mkdir(exist_ok=True)
            for name in ("package.json", "package-lock.json"):
                shutil.copy(JS_DIR / name, target / name)
            try:
                result = subprocess.run(
                    [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                    cwd=target,
                    capture_output=True,
                    text=True,
                    timeout=600,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                pytest.skip("npm ci did not finish within 600 s (no registry access?)")
            if result.returncode != 0:
                tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
                pytest.skip(f"npm could not install the pinned js-libp2p packages: {' | '.join(tail)}")
            (target / ".installed").write_text("ok\n")
    # The scripts sit next to node_modules: ES modules resolve imports from their own folder.
    for name in ("peer.mjs", "polyfill.mjs"):
        shutil.copy(JS_DIR / name, target / name)
    return target


class JsPeer:
    """One ``node peer.mjs`` process; its JSON-line events collected by a reader thread."""

    def __init__(self, install: Path, config: dict[str, Any], workdir: Path) -> None:
        config_file = workdir / "js-peer.json"
        config_file.write_text(json.dumps(config))
        self.log_file = workdir / "js-peer.stderr"
        self._stderr = open(self.log_file, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            ["node", "--import", "./polyfill.mjs", "peer.mjs", str(config_file)],
            cwd=install,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.events: list[Event] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                with self._changed:
                    self.events.append(event)
                    self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float, what: str) -> Event:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"js peer: no {what} within {timeout:.0f} s; {self.describe()}")
                self._changed.wait(min(left, 0.5))

    def send(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def describe(self) -> str:
        stderr = self.log_file.read_text(errors="replace")[-2000:]
        return f"exit={self.proc.poll()} events={self.events[-8:]} stderr={stderr!r}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                self.send({"cmd": "stop"})
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        self._stderr.close()


@contextlib.contextmanager
def js_peer(install: Path, config: dict[str, Any], workdir: Path) -> Iterator[JsPeer]:
    peer = JsPeer(install, config, workdir)
    try:
        yield peer
    finally:
        peer.stop()
