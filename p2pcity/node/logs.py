"""Structured logs: JSON lines to the node's log file (rotated), readable or JSON lines on stderr.

The log file rotates at ``max_bytes`` and keeps ``backups`` old files
(``node.log.1`` ...), so a node that runs for months never fills its disk
with logs. ``console_json`` writes the same JSON lines to stderr, for
journald or a container's log collector.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
import time
from pathlib import Path
from typing import Any

_STD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, district: str) -> None:
        super().__init__()
        self.district = district

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "district": self.district,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | str | bool | None) else str(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(
    district: str,
    level: str,
    log_file: Path,
    json_file: bool = True,
    *,
    console_json: bool = False,
    max_bytes: int = 50 * 1024 * 1024,
    backups: int = 5,
) -> None:
    root = logging.getLogger()
    root.setLevel(getattr(logging, level.upper()))
    for handler in list(root.handlers):
        root.removeHandler(handler)
    text = logging.Formatter(f"%(asctime)s {district} %(levelname)s %(name)s: %(message)s")
    text.converter = time.gmtime
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(JsonFormatter(district) if console_json else text)
    root.addHandler(console)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.handlers.RotatingFileHandler(log_file, maxBytes=max_bytes, backupCount=backups)
    to_file.setFormatter(JsonFormatter(district) if json_file else text)
    root.addHandler(to_file)
    # Third-party chatter stays at INFO even when we debug.
    for noisy in ("hypercorn.access", "httpx", "httpcore", "multiaddr"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))
