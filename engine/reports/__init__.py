"""The unit's reports (daily, periodic, seasonal): data computed from the database with set-based
queries, rendered as HTML, PDF, XLSX and CSV, archived and recorded as report runs. No Prefect here:
`workflows/` wraps these functions in flows; the CLI and tests call them directly.

May import: `engine.insight` and everything below it; independent of `engine.delivery`."""

from engine.reports.common import DAILY, KINDS, PERIODIC, SEASONAL
from engine.reports.daily import DailyReport, daily
from engine.reports.periodic import PeriodicReport, periodic
from engine.reports.seasonal import SeasonalReport, seasonal

Report = DailyReport | PeriodicReport | SeasonalReport

__all__ = [
    "DAILY",
    "KINDS",
    "PERIODIC",
    "SEASONAL",
    "DailyReport",
    "PeriodicReport",
    "Report",
    "SeasonalReport",
    "daily",
    "periodic",
    "seasonal",
]
