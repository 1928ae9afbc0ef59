"""Structured logs: JSON lines to the node's log file, readable lines on stderr."""

from __future__ import annotations

import json
import logging
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


def setup_logging(district: str, level: str, log_file: Path, json_file: bool = True) -> None:
    root = logging.getLogger()
    root.setLevel(getattr(logging, level.upper()))
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter(f"%(asctime)s {district} %(levelname)s %(name)s: %(message)s"))
    console.formatter.converter = time.gmtime  # type: ignore[union-attr]
    root.addHandler(console)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(log_file)
    to_file.setFormatter(JsonFormatter(district) if json_file else console.formatter)
    root.addHandler(to_file)
    # Third-party chatter stays at INFO even when we debug.
    for noisy in ("hypercorn.access", "httpx", "httpcore", "multiaddr"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))
