"""Structured, quiet-by-default logging (SpiffWorkflow logs every state change at INFO), one format for all.

Tansiq's own lines are structlog events; every other library's lines (uvicorn's error and access loggers,
SQLAlchemy's warnings, Prefect's) are stdlib `logging` records. Both go through one stdlib handler whose
`structlog.stdlib.ProcessorFormatter` renders them alike: with `fmt="json"` one JSON object a line with
`timestamp`, `level`, `logger`, `event`, and `request_id` when a request is being answered (the API binds
it with structlog's contextvars, which the formatter merges into foreign records too).

Three ways in, one format:
- `configure_logging(level, fmt)`: this process (the CLI calls it first thing);
- `uvicorn_log_config(level, fmt)`: the dictConfig for `uvicorn.run(log_config=...)`; uvicorn applies it in
  every worker process it spawns, and building its formatter configures structlog there as well;
- `prefect_logging_env(home, level, fmt)`: a Prefect logging file plus the variables that make a Prefect
  server, worker or flow-run process use it.

This module must not import Prefect (the engine imports no Prefect code): it only writes a file.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from pathlib import Path
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, WrappedLogger

_NOISY_LOGGERS = ("spiff", "SpiffWorkflow", "spiff.task", "spiff.workflow", "alembic", "sqlalchemy")
# Attributes Prefect's run loggers add to their records (prefect.logging.loggers): worth keeping as fields.
_RECORD_EXTRAS = ("flow_run_id", "flow_run_name", "flow_name", "task_run_id", "task_run_name", "task_name",
                  "worker_id", "deployment_id")
_HANDLER_MARK = "_tansiq_handler"


def _numeric(level: str) -> int:
    numeric = logging.getLevelName(str(level).upper())
    return numeric if isinstance(numeric, int) else logging.WARNING


def _uvicorn_access_fields(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """uvicorn's access line as fields too: its record's args are (client, method, path, http version, status).
    The formatter hands a foreign record's args over as `positional_args` (already in the event): dropped."""
    args = event_dict.pop("positional_args", None)
    record = event_dict.get("_record")
    if record is not None and record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
        _, event_dict["method"], event_dict["path"], _, event_dict["status"] = args
    return event_dict


def _record_extras(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Prefect's flow- and task-run names and ids, when the record carries them."""
    record = event_dict.get("_record")
    if record is not None:
        for name in _RECORD_EXTRAS:
            value = getattr(record, name, None)
            if value is not None and name not in event_dict:
                event_dict[name] = str(value)
    return event_dict


def _shared_processors() -> list[Any]:
    """What both structlog events and foreign records go through before rendering."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]


def _configure_structlog(numeric: int) -> None:
    structlog.configure(
        processors=[*_shared_processors(), structlog.processors.StackInfoRenderer(),
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )


def formatter(fmt: str = "console", level: str = "WARNING") -> logging.Formatter:
    """The formatter of every line. A dictConfig names it with `()`, so building it in a process that
    uvicorn or Prefect started (and that never ran `configure_logging`) configures structlog there too."""
    _configure_structlog(_numeric(level))
    logging.captureWarnings(True)  # warnings.warn (SQLAlchemy's SAWarning...) as log lines, not raw stderr text
    if fmt == "json":
        renderer: list[Any] = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer(
            ensure_ascii=False)]
    else:
        renderer = [structlog.dev.ConsoleRenderer()]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(), _uvicorn_access_fields, _record_extras], pass_foreign_args=True,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
    )


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is at the time of the line (test runners and CliRunner swap it;
    a handler holding the old stream would write to a closed file)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)
        setattr(self, _HANDLER_MARK, True)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """StreamHandler's own code may assign a stream; this handler always follows sys.stderr."""


def configure_logging(level: str = "WARNING", fmt: str = "console") -> None:
    """Route this process's structlog events and stdlib records through one stderr handler in `fmt`.
    Handlers others installed on the root logger (pytest's capture, for one) are left in place."""
    numeric = _numeric(level)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(handler)
    handler = StderrHandler()
    handler.setFormatter(formatter(fmt, level))
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))


def _quiet_loggers(level: str) -> dict[str, dict[str, Any]]:
    floor = logging.getLevelName(max(_numeric(level), logging.WARNING))
    return {name: {"level": floor} for name in _NOISY_LOGGERS}


def uvicorn_log_config(level: str = "WARNING", fmt: str = "console") -> dict[str, Any]:
    """A dictConfig for `uvicorn.run(..., log_config=uvicorn_log_config(level, fmt))`: uvicorn's error and
    access loggers propagate to the root logger, whose one handler renders them like Tansiq's own lines.
    (uvicorn's `log_level=` still sets the level of its own loggers after applying this.)"""
    upper = logging.getLevelName(_numeric(level))
    return {
        "version": 1,
        "disable_existing_loggers": False,  # the engine's module-level loggers exist before uvicorn starts
        "formatters": {"tansiq": {"()": "engine.foundation.logs.formatter", "fmt": fmt, "level": upper}},
        "handlers": {"stderr": {"()": "engine.foundation.logs.StderrHandler", "formatter": "tansiq"}},
        "loggers": {
            "uvicorn": {"level": upper, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": upper, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": upper, "handlers": [], "propagate": True},
            **_quiet_loggers(level),
        },
        "root": {"level": upper, "handlers": ["stderr"]},
    }


def _prefect_logging_config(level: str, fmt: str) -> dict[str, Any]:
    """Prefect's own logging.yml with its console handlers swapped for ours; its API handlers (the run logs
    the Prefect UI shows) stay. JSON is YAML, so the file is written without a YAML library."""
    upper = logging.getLevelName(_numeric(level))
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"tansiq": {"()": "engine.foundation.logs.formatter", "fmt": fmt, "level": upper}},
        "handlers": {
            "console": {"()": "engine.foundation.logs.StderrHandler", "formatter": "tansiq"},
            "api": {"level": 0, "class": "prefect.logging.handlers.APILogHandler"},
            "worker_api": {"level": 0, "class": "prefect.logging.handlers.WorkerAPILogHandler"},
        },
        "loggers": {
            "prefect": {"level": "${PREFECT_LOGGING_LEVEL}"},
            "prefect.extra": {"level": "${PREFECT_LOGGING_LEVEL}", "handlers": ["api"], "propagate": False},
            "prefect.flow_runs": {"level": "NOTSET", "handlers": ["api"]},
            "prefect.task_runs": {"level": "NOTSET", "handlers": ["api"]},
            "prefect.workers": {"level": "NOTSET", "handlers": ["worker_api"]},
            "prefect.server": {"level": "${PREFECT_SERVER_LOGGING_LEVEL}"},
            "prefect.client": {"level": "${PREFECT_LOGGING_LEVEL}"},
            "prefect.infrastructure": {"level": "${PREFECT_LOGGING_LEVEL}"},
            "prefect._internal": {"level": "${PREFECT_INTERNAL_LOGGING_LEVEL}"},
            "uvicorn": {"level": "${PREFECT_SERVER_LOGGING_LEVEL}"},
            "fastapi": {"level": "${PREFECT_SERVER_LOGGING_LEVEL}"},
            **_quiet_loggers(level),
        },
        "root": {"level": upper, "handlers": ["console"]},
    }


def prefect_logging_env(home: Path, level: str = "WARNING", fmt: str = "console") -> dict[str, str]:
    """Write `home/prefect-logging.yml` and return the variables that make a Prefect process (server, worker,
    flow run) log through it: add them to the environment of the process you start."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "prefect-logging.yml"
    path.write_text(json.dumps(_prefect_logging_config(level, fmt), indent=2) + "\n", encoding="utf-8")
    upper = logging.getLevelName(_numeric(level))
    return {
        "PREFECT_LOGGING_SETTINGS_PATH": str(path.resolve()),
        "PREFECT_LOGGING_LEVEL": upper,
    }


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
