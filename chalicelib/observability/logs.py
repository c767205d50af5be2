"""JSON log lines: Python `logging` (chalicelib's loggers and app.log) formatted as one
JSON object per line, and structured events with fields.

An exception is logged as its type and traceback frames (file, line, function), never
its message or source lines: an unexpected exception's text can hold a submitted value.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Mapping
from types import TracebackType

import orjson

from chalicelib.observability.emf import Sink, iso_time, stdout_sink

#: The `extra` key a structured event's fields travel under.
FIELDS = "fields"


class JsonFormatter(logging.Formatter):
    """A record -> one JSON line: time, level, logger, message, fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": _message(record),
        }
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, Mapping):
            line.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = record.exc_info[0].__name__
            line["traceback"] = _frames(record.exc_info[2])
        return orjson.dumps(line, default=str).decode()


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # a bad format string must not lose the line
        return str(record.msg)


def _frames(tb: TracebackType | None) -> list[str]:
    return [
        f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in traceback.extract_tb(tb)
    ]


#: Libraries whose INFO lines describe the SDK's own set-up, not the service.
SDK_LOGGERS = ("botocore", "boto3", "urllib3")


class JsonLineHandler(logging.Handler):
    """Writes formatted records to a sink (stdout, resolved at each write, by default)."""

    def __init__(self, sink: Sink = stdout_sink) -> None:
        super().__init__()
        self.sink = sink
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sink(self.format(record))
        except Exception:
            self.handleError(record)


def configure_json_logging(
    names: Iterable[str], level: int = logging.INFO, sink: Sink = stdout_sink
) -> JsonLineHandler:
    """Route every log record through one JSON line handler on the root logger.

    Lambda's own root handler (`LambdaLoggerHandler`, text with a request-id prefix)
    is replaced; other handlers (a test runner's) stay. The named loggers get `level`;
    the AWS SDK's loggers, unless set, only pass warnings (`chalice local` puts the root
    at INFO, which would log "Found credentials in environment variables" at start).
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, JsonLineHandler) or type(handler).__name__ == "LambdaLoggerHandler":
            root.removeHandler(handler)
    handler = JsonLineHandler(sink)
    root.addHandler(handler)
    for name in names:
        logging.getLogger(name).setLevel(level)
    for name in SDK_LOGGERS:
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(logging.WARNING)
    return handler


def log_event(logger: logging.Logger, event: str, fields: Mapping[str, object],
              level: int = logging.INFO) -> None:  # fmt: skip
    """One structured line: `event` as the message, `fields` as top-level members."""
    logger.log(level, event, extra={FIELDS: {"event": event, **fields}})
