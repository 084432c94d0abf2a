"""HTML from the templates beside this module: Jinja2 with autoescaping always on.

Every value from storage, metadata or the ledger (blob names, error messages, metadata
values) reaches the page through ``{{ ... }}`` and is escaped there; no template marks data
``|safe``. ``autoescape=True`` rather than :func:`jinja2.select_autoescape`, whose extension
test would not match ``*.html.j2``. ``StrictUndefined`` turns a misspelt variable into an
error in the tests instead of an empty cell in production.

Every page is sent with headers that keep it and its links to itself: ``no-store`` (it holds
the function key in its links and short-lived download SAS URLs), ``no-referrer`` (so
following a download link does not hand the page's ``?code=`` to storage), and a content
security policy that allows no script at all, a second wall behind the escaping.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from starlette.responses import HTMLResponse

TEMPLATES = Path(__file__).resolve().parent / "templates"

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
}


def age(seconds: float | None) -> str:
    """``42 s``, ``3 min``, ``2 h 5 min``, ``3 d 4 h``: how long, for a person."""
    if seconds is None:
        return "—"
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, _ = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def clock(seconds: float | None) -> str:
    """An audio length as ``1:10`` or ``1:02:03``; a dash when unknown."""
    if seconds is None:
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def when(value: dt.datetime | None) -> str:
    """A UTC time to the second, ``2026-05-04 13:02:11 UTC``; a dash for none."""
    if value is None:
        return "—"
    utc = value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return utc.strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """How long before ``now`` ``value`` was (``3 min ago``)."""
    if value is None:
        return "—"
    moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return f"{age(((now or dt.datetime.now(dt.UTC)) - moment).total_seconds())} ago"


def hours(seconds: float | None) -> str:
    """An amount of audio: hours with two decimals (``1.25 h``), seconds below 0.1 h."""
    if seconds is None:
        return "—"
    return f"{seconds:.0f} s" if seconds < 360 else f"{seconds / 3600:.2f} h"


def money(value: float | None, currency: str) -> str:
    """``12.34 USD``; None (no price set) is left to the template to explain."""
    return "—" if value is None else f"{value:,.2f} {currency}"


@cache
def environment() -> jinja2.Environment:
    """The one template environment of the process (templates are read once)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(age=age, clock=clock, when=when, ago=ago, hours=hours, money=money)
    return env


def render(template: str, **values: Any) -> str:
    """``template`` rendered with ``values``."""
    return environment().get_template(template).render(**values)


def page(template: str, *, status: int = 200, **values: Any) -> HTMLResponse:
    """``template`` as a complete HTML response with the page's security headers."""
    return HTMLResponse(render(template, **values), status_code=status, headers=HEADERS)
