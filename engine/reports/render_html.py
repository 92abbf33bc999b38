"""HTML reports (Jinja2): Arabic right to left by default, or English; one self-contained file each
(the stylesheet is inlined and charts are inline SVG), which is also what the PDF is made from."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from engine.reports.charts import charts
from engine.reports.labels import Formatter
from engine.reports.settings import ReportSettings, get_report_settings
from engine.reports.tables import tables

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "reports"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined)
    env.tests["datetime_value"] = lambda value: isinstance(value, datetime)
    return env


def formatter(language: str, settings: ReportSettings | None = None) -> Formatter:
    settings = settings or get_report_settings()
    return Formatter(language, settings.zone, settings.digits)


def render_html(report: Any, language: str = "ar", settings: ReportSettings | None = None) -> str:
    f = formatter(language, settings)
    by_key = {table.key: table for table in tables(report, f)}
    template = environment().get_template(f"{report.kind}.html")
    return template.render(report=report, f=f, tables=_Keys(by_key), charts=_Keys(charts(report, f)),
                           css=(TEMPLATES / "report.css").read_text(encoding="utf-8"))


class _Keys(dict[str, Any]):
    """A dict whose items templates reach as attributes (tables.entities)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None
