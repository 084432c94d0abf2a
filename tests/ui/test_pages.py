"""The status page's HTML without a host: escaping, links that keep the key, refresh, costs.

Real view models (``shared.http.ui.pages``) rendered by the real templates, then read back
with the standard library's HTML parser, so a value that escaped its text would show up as
an element or attribute here. The browser test (test_status_page.py) does the same through
the local functions host; these cover the cases a live stack cannot stage cheaply.
"""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.requests import Request

from shared.app_context import AppContext
from shared.http.ui import handlers, pages, render
from shared.http.ui.links import Links
from shared.pipeline import stats
from shared.pipeline.ledger.records import SourceState
from shared.pipeline.queries import (
    ErrorInfo,
    HistoryEvent,
    TranscriptionHistory,
    TranscriptionPage,
    TranscriptionStatus,
)

NOW = dt.datetime(2026, 5, 4, 12, 0, tzinfo=dt.UTC)
CODE = 'k3y/with"quote&amp<'
HOSTILE_PATH = "in/<script>alert(1)</script>.wav"
HOSTILE_TEXT = "<img src=x onerror=alert(2)>"


class Page(HTMLParser):
    """Tags, attributes and text of a rendered page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.chunks: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.chunks).split())

    def urls(self) -> list[str]:
        """Links and the targets of POST forms (a GET form's query comes from its fields)."""
        return [a["href"] for t, a in self.tags if t == "a"] + [
            a["action"] for t, a in self.tags if t == "form" and a.get("method") == "post"
        ]


def status(path: str = "in/a.wav", state: SourceState = SourceState.SUCCEEDED, **kw: Any) -> Any:
    return TranscriptionStatus(
        container="audio-input",
        path=path,
        etag="0x8DC1",
        kind="audio",
        state=state,
        received_at=NOW - dt.timedelta(minutes=5),
        updated_at=NOW - dt.timedelta(minutes=1),
        **kw,
    )


def usage(cost: float | None = None) -> stats.Usage:
    files = {"Succeeded": 2, "Failed": 1}
    seconds = {"batch": 5400.0, "fast": 0.0}
    return stats.Usage(
        currency="EUR",
        price_per_hour={"batch": 1.0 if cost is not None else None, "fast": None},
        days=[
            stats.DayUsage(
                day=dt.date(2026, 5, 3), files={}, audio_seconds={}, audio_hours=0, cost=None
            ),
            stats.DayUsage(
                day=dt.date(2026, 5, 4),
                files=files,
                audio_seconds=seconds,
                audio_hours=1.5,
                cost=cost,
            ),
        ],
        prefixes=[
            stats.PrefixUsage(
                prefix="in/", files=files, audio_seconds=seconds, audio_hours=1.5, cost=cost
            )
        ],
        total=stats.UsageTotals(
            files=files,
            audio_seconds=seconds,
            audio_hours=1.5,
            cost=cost,
            month_estimate=None if cost is None else cost * 30,
        ),
    )


def list_view(
    counts: dict[str, int] | None = None,
    *,
    items: list[TranscriptionStatus] | None = None,
    filters: pages.Filters | None = None,
    continuation: str | None = None,
    cost: float | None = None,
) -> pages.ListView:
    counts = counts or {"Succeeded": 3}
    failed = status(
        HOSTILE_PATH,
        SourceState.FAILED,
        error=ErrorInfo(code="InvalidData", message=f"metadata model: got '{HOSTILE_TEXT}'"),
    )
    return pages.ListView(
        filters=filters or pages.Filters(),
        counts=[
            pages.StateCount(s.value, counts.get(s.value, 0), s in pages.IN_FLIGHT)
            for s in SourceState
        ],
        oldest=None,
        failures=[failed],
        failures_partial=False,
        page=TranscriptionPage(
            container="audio-input",
            items=[failed, *(items or [])],
            continuation=continuation,
        ),
        usage=usage(cost),
        retry_max=100,
    )


def render_list(view: pages.ListView, code: str | None = CODE) -> Page:
    html = render.render(
        "list.html.j2",
        view=view,
        links=Links(code=code, container=view.filters.container),
        refresh_seconds=view.refresh_seconds,
    )
    return Page(html)


def render_file(view: pages.FileView) -> Page:
    html = render.render(
        "file.html.j2",
        view=view,
        links=Links(code=CODE),
        refresh_seconds=view.refresh_seconds,
        rerunnable=pages.RERUNNABLE,
        cancellable=pages.CANCELLABLE,
    )
    return Page(html)


def file_view(*versions: TranscriptionStatus, preview: pages.Preview | None = None) -> Any:
    return pages.FileView(
        history=TranscriptionHistory(
            container="audio-input",
            path=versions[0].path,
            latest=versions[0],
            history=list(versions),
        ),
        downloads=[
            pages.Download("txt", f"{versions[0].path}.txt", "https://acct/x.txt?sv=1&sig=abc")
        ],
        preview=preview,
        sas_minutes=15,
    )


def test_data_from_storage_is_text_and_no_element() -> None:
    filters = pages.Filters(prefix='in/"><script>alert(3)</script>')
    page = render_list(list_view(filters=filters))
    assert {tag for tag, _ in page.tags}.isdisjoint({"script", "img", "iframe", "svg"})
    assert not any(k.startswith("on") for _, attrs in page.tags for k in attrs)
    assert HOSTILE_PATH in page.text
    assert HOSTILE_TEXT in page.text
    prefix = next(a for t, a in page.tags if t == "input" and a.get("name") == "prefix")
    assert prefix["value"] == filters.prefix, "an attribute holds the value whole"


def test_every_link_and_form_carries_the_key_and_nowhere_else() -> None:
    page = render_list(list_view(continuation="tok"))
    urls = page.urls()
    assert len(urls) > 10
    for url in urls:
        assert parse_qs(urlsplit(url).query).get("code") == [CODE], url
    hidden = [a for t, a in page.tags if t == "input" and a.get("type") == "hidden"]
    assert [a["value"] for a in hidden if a["name"] == "code"] == [CODE], "the GET form's key"
    assert CODE not in page.text


def test_without_a_key_no_link_invents_one() -> None:
    page = render_list(list_view(), code=None)
    assert all("code=" not in url for url in page.urls())
    assert not any(a.get("name") == "code" for _, a in page.tags)


def test_file_links_quote_the_path() -> None:
    url = Links(code="k").file("a b/c?d#e%f.wav", container="archive")
    assert url == "/api/ui/files/a%20b/c%3Fd%23e%25f.wav?code=k&container=archive"
    action = Links(code="k").action("a:b.wav", "retry", etag="0x1", container="in")
    assert action == "/api/transcriptions/a%3Ab.wav:retry?code=k&etag=0x1&container=in&redirect=ui"


def test_the_page_refreshes_only_while_files_are_in_flight() -> None:
    done = render_list(list_view({"Succeeded": 4, "Failed": 1}))
    assert not any(t == "meta" and "http-equiv" in a for t, a in done.tags)
    assert "Refreshing" not in done.text

    busy = render_list(list_view({"Succeeded": 4, "Queued": 2, "Submitted": 1}))
    assert ("meta", {"http-equiv": "refresh", "content": "5"}) in busy.tags
    assert "Refreshing every 5 s while 3 files are in flight." in busy.text


def test_counts_next_page_and_bulk_rerun() -> None:
    filters = pages.Filters(state=SourceState.FAILED, prefix="in/", limit=20)
    page = render_list(list_view({"Failed": 7}, filters=filters, continuation="next-token"))
    assert "7 Failed" in page.text
    nxt = next(a["href"] for t, a in page.tags if t == "a" and a.get("rel") == "next")
    assert parse_qs(urlsplit(nxt).query) == {
        "code": [CODE],
        "state": ["Failed"],
        "prefix": ["in/"],
        "limit": ["20"],
        "continuation": ["next-token"],
    }
    bulk = next(a["action"] for t, a in page.tags if t == "form" and a.get("method") == "post")
    assert urlsplit(bulk).path == "/api/retry"
    assert parse_qs(urlsplit(bulk).query) == {
        "code": [CODE],
        "state": ["Failed"],
        "prefix": ["in/"],
        "redirect": ["ui"],
    }
    assert "Re-run all Failed under in/" in page.text


@pytest.mark.parametrize(
    ("cost", "shown"),
    [
        (None, "set PRICE_PER_AUDIO_HOUR_BATCH / _FAST for an estimate"),
        (1.5, "Estimated cost 1.50 EUR; at this pace about 45.00 EUR a month."),
    ],
)
def test_usage_shows_hours_and_cost_or_how_to_get_one(cost: float | None, shown: str) -> None:
    page = render_list(list_view(cost=cost))
    assert shown in page.text
    assert "1.50 h of audio transcribed (batch 1.50 h)" in page.text
    assert "2026-05-04" in page.text
    assert "2026-05-03" not in page.text, "days without files are left out"


def test_file_page_actions_follow_the_state() -> None:
    versions = [
        status(state=SourceState.QUEUED),
        status(state=SourceState.FAILED, error=ErrorInfo(code="InvalidData")),
        status(state=SourceState.SUCCEEDED),
    ]
    page = render_file(file_view(*versions))
    actions = [urlsplit(a["action"]).path for t, a in page.tags if t == "form"]
    assert actions == ["/api/transcriptions/in/a.wav:cancel", "/api/transcriptions/in/a.wav:retry"]
    assert ("meta", {"http-equiv": "refresh", "content": "5"}) in page.tags


def test_file_page_shows_events_preview_and_downloads() -> None:
    latest = status(
        HOSTILE_PATH,
        events=[HistoryEvent(at=NOW, event="RoutedBatch", detail=HOSTILE_TEXT)],
        job_id="job-1",
        route="batch",
        audio_seconds=70.4,
    )
    preview = pages.Preview(lines=["Speaker 1: hello <b>there</b>"], truncated=True)
    page = render_file(file_view(latest, preview=preview))
    assert {tag for tag, _ in page.tags}.isdisjoint({"script", "img", "b"})
    assert "RoutedBatch" in page.text
    assert HOSTILE_TEXT in page.text
    assert "Speaker 1: hello <b>there</b> …" in page.text
    assert "1:10" in page.text
    download = next(a["href"] for t, a in page.tags if t == "a" and a.get("data-kind") == "txt")
    assert download == "https://acct/x.txt?sv=1&sig=abc", "the SAS URL as given, unprefixed"
    assert "code" not in download
    assert not any(t == "meta" and "http-equiv" in a for t, a in page.tags)


@pytest.mark.parametrize(
    ("data", "complete", "lines", "truncated"),
    [
        (b"one\ntwo\n", True, ["one", "two"], False),
        (b"one\ntwo\nthr", False, ["one", "two"], True),
        ("caf\u00e9".encode()[:-1], False, ["caf"], True),
        (b"".join(b"%d\n" % i for i in range(30)), True, [str(i) for i in range(20)], True),
    ],
)
def test_the_preview_is_whole_lines_of_utf8(
    data: bytes, complete: bool, lines: list[str], truncated: bool
) -> None:
    preview = pages._first_lines(data, complete=complete)
    assert (preview.lines, preview.truncated) == (lines, truncated)


def request(query: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/api/ui",
            "query_string": query.encode(),
            "headers": [],
        }
    )


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("state=Finished", "state"),
        ("continuation=not-a-token", "continuation"),
        ("limit=0", "limit"),
        ("container=Not_A_Container", "container"),
        ("prefix=a&prefix=b", "prefix"),
    ],
)
async def test_bad_filters_are_400_pages_naming_the_parameter(query: str, parameter: str) -> None:
    # A bad filter is answered before anything reads the ledger: no context is needed.
    response = await handlers.list_page(request(f"code=k&{query}"), cast(AppContext, None))
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    page = Page(bytes(response.body).decode())
    assert f"the parameter {parameter} is not valid" in page.text
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("seconds", "age", "clock"),
    [
        (None, "—", "—"),
        (42.9, "42 s", "0:43"),
        (3720, "1 h 2 min", "1:02:00"),
        (90000, "1 d 1 h", "25:00:00"),
    ],
)
def test_durations_read_well(seconds: float | None, age: str, clock: str) -> None:
    assert render.age(seconds) == age
    assert render.clock(seconds) == clock


def test_audio_amounts_read_well() -> None:
    assert [render.hours(s) for s in (None, 4.2, 359, 360, 5400)] == [
        "—",
        "4 s",
        "359 s",
        "0.10 h",
        "1.50 h",
    ]
