"""Logging: plain text for a terminal, JSON lines for a log pipeline, with ids.

The standard library's ``logging`` with a JSON formatter of our own, not
structlog: every library the gateway runs (aiohttp, SQLAlchemy, Alembic,
grpc) already logs through ``logging``, so one formatter on the root handler
makes all of it structured, with no second logging API and no new dependency.

Ids travel in context variables, set where the work starts: the HTTP
middleware (:func:`gateway.web.access.access_middleware`) sets ``request_id`` (the client's
``X-Request-ID`` when it is a sane token, else a new one, echoed in the
response), the REST routes set ``session_id`` once the token is checked, and
the Socket.IO hub sets ``connection_id`` and ``session_id`` around a
connection's slow work. :class:`ContextFilter` copies them onto every record;
a record may also carry them as ``extra``.

``configure_logging(kind, level)`` installs one stderr handler: ``"plain"``
(``time level logger: message key=value...``) or ``"json"`` (one object per
line: ``ts``, ``level``, ``logger``, ``message``, the ids, any ``extra``
fields, ``exc`` for a traceback). The access log is the ``anchorline.access``
logger: one record per HTTP request with ``method``, ``path``, ``status``,
``duration_ms``, ``client`` (the address behind trusted proxies) and
``bytes``.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import re
import secrets
import sys
import time
from collections.abc import Iterator
from typing import Any, Final

import orjson

from gateway.config import LogFormat

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "anchorline_request_id", default=None
)
connection_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "anchorline_connection_id", default=None
)
session_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "anchorline_session_id", default=None
)

ID_FIELDS: Final = ("request_id", "connection_id", "session_id")
_VARS: Final = {"request_id": request_id, "connection_id": connection_id, "session_id": session_id}
# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
_REQUEST_ID_RE: Final = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@contextlib.contextmanager
def log_context(**ids: str | None) -> Iterator[None]:
    """Set some of ``request_id``, ``connection_id``, ``session_id`` for the block."""
    tokens = [(_VARS[name], _VARS[name].set(value)) for name, value in ids.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def bind_session(value: str) -> None:
    """Name the session the current request or connection acts for, until it ends."""
    session_id.set(value)


class ContextFilter(logging.Filter):
    """Copies the context's ids onto each record (an id passed as ``extra`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _VARS.items():
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: v
        for k, v in vars(record).items()
        if k not in _STANDARD and k not in ID_FIELDS and not k.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ID_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                body[name] = value
        body.update(_extras(record))
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        elif record.stack_info:
            body["stack"] = record.stack_info
        return orjson.dumps(body, default=str).decode("utf-8")


class PlainFormatter(logging.Formatter):
    """``time level logger: message`` and then the ids and extras as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        pairs = [
            f"{name}={getattr(record, name)}"
            for name in ID_FIELDS
            if getattr(record, name, None) is not None
        ]
        pairs += [f"{k}={v}" for k, v in _extras(record).items()]
        if not pairs:
            return text
        head, sep, tail = text.partition("\n")  # keep a traceback below the line
        return f"{head} {' '.join(pairs)}{sep}{tail}"


def formatter(kind: LogFormat) -> logging.Formatter:
    """The formatter named by ``gateway.log_format``."""
    return JsonFormatter() if kind == "json" else PlainFormatter()


def configure_logging(kind: LogFormat, level: str | int = "INFO") -> logging.Handler:
    """Replace the root logger's handlers with one stderr handler of ``kind``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(kind))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    return handler


def new_request_id(offered: str | None) -> str:
    """The client's ``X-Request-ID`` when it is a short token, else a fresh one."""
    if offered and _REQUEST_ID_RE.match(offered):
        return offered
    return secrets.token_hex(8)


access_log = logging.getLogger("anchorline.access")


def record_access(
    method: str,
    path: str,
    status: int,
    started: float,
    client: str | None,
    size: int | None,
) -> None:
    """One access-log record for a finished request (``started``: ``perf_counter``)."""
    duration_ms = round((time.perf_counter() - started) * 1000, 2)
    access_log.info(
        '%s "%s %s" %d %.2fms',
        client or "-",
        method,
        path,
        status,
        duration_ms,
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
            "client": client,
            "bytes": size,
        },
    )


__all__ = [
    "ID_FIELDS",
    "ContextFilter",
    "JsonFormatter",
    "LogFormat",
    "PlainFormatter",
    "access_log",
    "bind_session",
    "configure_logging",
    "connection_id",
    "formatter",
    "log_context",
    "new_request_id",
    "record_access",
    "request_id",
    "session_id",
]
