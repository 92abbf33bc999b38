"""PDF reports: the HTML report laid out by WeasyPrint on A4 pages, with Debian's Noto Naskh Arabic and
Noto Kufi Arabic fonts (package fonts-noto-core) for Arabic and Noto Sans for English; table headers
repeat on every page and rows never split. Needs the pango libraries (Debian: libpango-1.0-0,
libpangoft2-1.0-0); ~0.15 s a page."""

from __future__ import annotations

from typing import Any

from engine.reports.render_html import TEMPLATES, render_html
from engine.reports.settings import ReportSettings


def render_pdf(report: Any, language: str = "ar", settings: ReportSettings | None = None) -> bytes:
    from weasyprint import HTML  # imported here: it loads pango, which only PDF output needs

    html = render_html(report, language, settings)
    pdf: bytes = HTML(string=html, base_url=str(TEMPLATES)).write_pdf()  # weasyprint has no types
    return pdf
