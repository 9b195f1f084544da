"""The relay's log: one JSON object per line, with a level, and never a secret.

Every record is ``{"ts": EPOCH_SECONDS, "level": "info"|"warning"|"error",
"event": NAME, ...fields}``. Tokens and session ids never appear: callers log
``fingerprint(...)`` of them instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from typing import Any, TextIO

# Events anyone on the network can trigger (a refused connection, a bad
# request) are throttled per client: a burst, then one line a second; the next
# line logged says how many were left out.
THROTTLE_BURST = 20.0
THROTTLE_RATE = 1.0  # lines a second
_THROTTLE_KEYS = 4096


def fingerprint(secret: str, length: int = 12) -> str:
    """A short stable name for a secret: enough to correlate log lines, useless to replay."""
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()[:length]


class JsonLog:
    """JSON lines on stderr or appended to a file (reopened by ``reopen`` for log rotation)."""

    def __init__(self, path: str | None = None, stream: TextIO | None = None) -> None:
        self.path = path
        self.out: TextIO = stream or sys.stderr
        if path is not None:
            self.out = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the log
        self._throttle: dict[str, tuple[float, float, int]] = {}

    def reopen(self) -> None:
        """Open the file again (after logrotate moved it); stderr stays as it is."""
        if self.path is None:
            return
        fresh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        old, self.out = self.out, fresh
        old.close()

    def close(self) -> None:
        if self.path is not None:
            self.out.close()

    def write(self, level: str, event: str, fields: dict[str, Any]) -> None:
        record = {"ts": round(time.time(), 3), "level": level, "event": event, **fields}
        try:
            self.out.write(json.dumps(record, default=str) + "\n")
            self.out.flush()
        except (OSError, ValueError):
            pass  # a full disk or a closed stderr must not stop the relay

    def __call__(self, event: str, **fields: Any) -> None:
        self.write("info", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self.write("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self.write("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self.write("error", event, fields)

    def throttled(self, key: str, level: str, event: str, **fields: Any) -> None:
        """Log for ``key`` within its budget (a burst, then one a second), else count."""
        now = time.monotonic()
        budget, last, skipped = self._throttle.get(key, (THROTTLE_BURST, now, 0))
        budget = min(THROTTLE_BURST, budget + (now - last) * THROTTLE_RATE)
        if budget < 1:
            self._throttle[key] = (budget, now, skipped + 1)
            return
        if len(self._throttle) >= _THROTTLE_KEYS:
            self._throttle.clear()
        self._throttle[key] = (budget - 1, now, 0)
        if skipped:
            fields["suppressed"] = skipped
        self.write(level, event, fields)


class _ToJsonLog(logging.Handler):
    def __init__(self, log: JsonLog, event: str) -> None:
        super().__init__(logging.WARNING)
        self.log = log
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        level = "error" if record.levelno >= logging.ERROR else "warning"
        # the message only: a library's traceback is no operator's business
        self.log.write(level, self.event, {"logger": record.name, "message": record.getMessage()})


def route_library_logs(log: JsonLog, *names: str) -> None:
    """Send what libraries log (``websockets``, ``trio``) to the JSON log, not raw to stderr."""
    for name in names:
        logger = logging.getLogger(name)
        logger.handlers[:] = [_ToJsonLog(log, "library_warning")]
        logger.propagate = False
