"""Headless Chromium driven over the DevTools protocol, for tests that look at the console as a person would.

``chromium --dump-dom`` prints nothing while a page holds an EventSource open
(it waits for the network to go idle, which a live page never does), so the
page's script could not be seen running that way. Here Chromium runs with
``--remote-debugging-pipe``: DevTools protocol messages, JSON terminated by a
NUL byte, go in on the child's fd 3 and come out on its fd 4 (the transport
Puppeteer uses), so no websocket client and no extra package is needed.

``Browser.open(url)`` gives a ``Tab``: ``evaluate`` runs JavaScript in it,
``wait_for`` polls an expression until it is truthy, ``screenshot`` returns a
PNG, and ``problems`` lists the page's uncaught exceptions, console errors and
CSP violations. ``Tab.replace_script`` serves another body for one URL (the
planted-bug controls use it to run a broken copy of the console's script).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from typing import Any

# The Debian package the test setup installs when no Chromium is found, pinned to the major version
# these tests were written against (a glob, so Debian's security updates within it still install).
CHROMIUM_PACKAGE = "chromium=150.*"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


class BrowserError(RuntimeError):
    """The browser died, did not answer, or a DevTools command failed."""


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def install_chromium() -> tuple[str | None, str]:
    """Chromium's path, installing Debian's package if it is missing and we may; else (None, why not)."""
    found = find_chromium()
    if found:
        return found, ""
    if os.environ.get("P2PCITY_NO_INSTALL"):
        return None, "no chromium on PATH and P2PCITY_NO_INSTALL is set"
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return None, "no chromium on PATH, and apt-get as root is not available to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for step in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", CHROMIUM_PACKAGE]):
        done = subprocess.run(step, capture_output=True, text=True, env=env, timeout=900, check=False)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            return None, f"installing {CHROMIUM_PACKAGE} failed at '{' '.join(step)}': {tail[0]}"
    found = find_chromium()
    return (found, "") if found else (None, f"{CHROMIUM_PACKAGE} installed but no chromium on PATH")


class Browser:
    """One headless Chromium process; use as a context manager (the process is always killed)."""

    def __init__(self, executable: str, width: int = 1100, height: int = 900) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="p2pcity-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # dup2 needs fds that cannot collide with 3 and 4 while it works.
        high_r, high_w = os.dup(to_child_r) + 100, os.dup(from_child_w) + 100
        os.dup2(to_child_r, high_r)
        os.dup2(from_child_w, high_w)

        def on_fds_3_and_4() -> None:
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        args = [
            executable,
            "--headless",
            "--no-sandbox",  # tests run as root in CI, where Chromium's sandbox refuses to start
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
            f"--user-data-dir={self._profile.name}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=on_fds_3_and_4,  # noqa: PLW1509 - no threads here; fds must land on 3 and 4
        )
        for fd in (to_child_r, from_child_w, high_r, high_w):
            os.close(fd)
        self._next_id = 0
        self._buffer = b""
        self._replies: dict[int, dict[str, Any]] = {}
        self._tabs: dict[str, Tab] = {}
        self.size = (width, height)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(BrowserError):
                self.send("Browser.close", timeout=5)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        for fd in (self._to_child, self._from_child):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._profile.cleanup()

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 60,
    ) -> dict[str, Any]:
        """Send one DevTools command and return its result (events that arrive meanwhile are kept)."""
        self._next_id += 1
        ident = self._next_id
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._to_child, data) :]
        deadline = time.monotonic() + timeout
        # An event handler may itself send (a paused request is answered), so replies are kept by id.
        while ident not in self._replies:
            self._take(self._read(deadline))
        reply = self._replies.pop(ident)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        result = reply.get("result", {})
        assert isinstance(result, dict)
        return result

    def pump(self, seconds: float) -> None:
        """Take in the events that arrive within ``seconds`` (between polls)."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                self._take(self._read(deadline))
            except TimeoutError:
                return

    def _take(self, message: dict[str, Any]) -> None:
        if "id" in message:
            self._replies[int(message["id"])] = message
            return
        tab = self._tabs.get(message.get("sessionId", ""))
        if tab is not None and "method" in message:
            tab.on_event(message)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no DevTools message in time")
            ready, _, _ = select.select([self._from_child], [], [], min(left, 1.0))
            if not ready:
                if self._proc.poll() is not None:
                    raise BrowserError(f"chromium exited with code {self._proc.returncode}")
                continue
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise BrowserError("chromium closed its DevTools pipe")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message = json.loads(raw)
        assert isinstance(message, dict)
        return message

    def open(self, url: str) -> Tab:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        tab = Tab(self, session)
        self._tabs[session] = tab
        for domain in ("Page", "Runtime", "Log"):
            tab.send(f"{domain}.enable")
        width, height = self.size
        tab.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        tab.navigate(url)
        return tab


class Tab:
    """One page in the browser, driven through its DevTools session."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session
        self.problems: list[str] = []
        self._replacements: dict[str, tuple[str, str]] = {}

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60) -> dict[str, Any]:
        return self.browser.send(method, params, self.session, timeout)

    def on_event(self, event: dict[str, Any]) -> None:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            self.problems.append(f"uncaught: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.problems.append("console.error: " + " ".join(str(a.get("value")) for a in params["args"]))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            self.problems.append(f"log: {params['entry'].get('text')}")
        elif method == "Fetch.requestPaused":
            self._fulfil(params)

    def navigate(self, url: str) -> None:
        done = self.send("Page.navigate", {"url": url})
        if done.get("errorText"):
            raise BrowserError(f"cannot load {url}: {done['errorText']}")

    def evaluate(self, expression: str, timeout: float = 60) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        done = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout,
        )
        if "exceptionDetails" in done:
            raise BrowserError(f"{expression!r} threw: {done['exceptionDetails'].get('text')}")
        return done.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 90, what: str = "") -> Any:
        """Poll ``expression`` until it is truthy; its value. Generous deadlines: CI is loaded."""
        deadline = time.monotonic() + timeout
        last_error = ""
        while True:
            try:
                value = self.evaluate(expression)
            except BrowserError as exc:  # the page may still be loading: the names are not there yet
                value, last_error = None, str(exc)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {what or expression}; problems: {self.problems} {last_error}"
                )
            self.browser.pump(0.25)

    def screenshot(self) -> bytes:
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})["data"]
        assert isinstance(data, str)
        return base64.b64decode(data)

    def replace_script(self, url_pattern: str, body: str, content_type: str = "text/javascript") -> None:
        """Serve ``body`` instead of what the node sends for URLs matching ``url_pattern`` (a glob)."""
        self._replacements[url_pattern] = (body, content_type)
        patterns = [{"urlPattern": p, "requestStage": "Request"} for p in self._replacements]
        self.send("Fetch.enable", {"patterns": patterns})

    def _fulfil(self, params: dict[str, Any]) -> None:
        url = params["request"]["url"]
        for pattern, (body, content_type) in self._replacements.items():
            if re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), url):
                self.browser.send(
                    "Fetch.fulfillRequest",
                    {
                        "requestId": params["requestId"],
                        "responseCode": 200,
                        "responseHeaders": [{"name": "Content-Type", "value": content_type}],
                        "body": base64.b64encode(body.encode()).decode(),
                    },
                    self.session,
                )
                return
        self.browser.send("Fetch.continueRequest", {"requestId": params["requestId"]}, self.session)
