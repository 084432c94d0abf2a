"""Route templates, NCRONTAB schedules, blob paths and binding expressions."""

from __future__ import annotations

import datetime as dt

import pytest

from local.host.patterns import (
    BindingExpressionError,
    BlobPath,
    NcrontabSchedule,
    RouteTemplate,
    fill_expressions,
)

UTC = dt.UTC


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("items/{id}", "/items/7", {"id": "7"}),
        ("items/{id}", "/ITEMS/7/", {"id": "7"}),
        ("items/{id}", "/items", None),
        ("items/{id}", "/items/7/8", None),
        ("items/{id:int}", "/items/-7", {"id": "-7"}),
        ("items/{id:int}", "/items/seven", None),
        ("items/{id:alpha}", "/items/seven", {"id": "seven"}),
        (
            "items/{id:guid}",
            "/items/0f8fad5b-d9cb-469f-a165-70867728950e",
            {"id": "0f8fad5b-d9cb-469f-a165-70867728950e"},
        ),
        ("files/{*path}", "/files/a/b/c.txt", {"path": "a/b/c.txt"}),
        ("files/{*path}", "/files", {}),
        ("docs/{name}.{ext}", "/docs/report.final.pdf", {"name": "report.final", "ext": "pdf"}),
        ("a/{b?}", "/a", {}),
        ("a/{b?}", "/a/x", {"b": "x"}),
        ("", "", {}),
        ("health", "/health", {}),
    ],
)
def test_route_templates_match_like_aspnet(
    template: str, path: str, expected: dict[str, str] | None
) -> None:
    assert RouteTemplate.parse(template).match(path) == expected


def test_unknown_constraints_are_reported_not_enforced() -> None:
    route = RouteTemplate.parse("items/{id:length(3)}")
    assert route.unenforced == ("{id:length(3)}",)
    assert route.match("/items/whatever") == {"id": "whatever"}


@pytest.mark.parametrize("template", ["files/{*path}/more", "a/{b?}c", "a/{}", "a/{b", "a/{1b}"])
def test_bad_route_templates_are_refused(template: str) -> None:
    with pytest.raises(ValueError, match="route"):
        RouteTemplate.parse(template)


def test_literal_routes_win_over_parameters_and_catch_alls_come_last() -> None:
    routes = [RouteTemplate.parse(t) for t in ("{*all}", "items/{id}", "items/new", "{x}/{y}")]
    ordered = [r.template for r in sorted(routes, key=RouteTemplate.precedence)]
    assert ordered == ["items/new", "items/{id}", "{x}/{y}", "{*all}"]


def test_ncrontab_has_six_fields_seconds_first() -> None:
    every_five = NcrontabSchedule.parse("*/5 * * * * *")
    moment = dt.datetime(2026, 1, 1, 0, 0, 1, 500_000, tzinfo=UTC)
    assert every_five.next_after(moment) == dt.datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    assert every_five.latest_at_or_before(moment) == dt.datetime(2026, 1, 1, tzinfo=UTC)
    on_the_dot = dt.datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    assert every_five.latest_at_or_before(on_the_dot) == on_the_dot
    assert every_five.next_after(on_the_dot) == dt.datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    weekdays = NcrontabSchedule.parse("0 30 9 * * MON-FRI")
    saturday = dt.datetime(2026, 1, 3, 12, tzinfo=UTC)
    assert weekdays.next_after(saturday) == dt.datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="6 fields"):
        NcrontabSchedule.parse("*/5 * * * *")
    with pytest.raises(ValueError, match="not a valid NCRONTAB"):
        NcrontabSchedule.parse("* * * * * BLURSDAY")


def test_blob_paths_match_sub_folders_and_give_expressions() -> None:
    path = BlobPath.parse("audio-input/{name}")
    assert (path.container, path.prefix) == ("audio-input", "")
    assert path.match("a/b/c.wav") == {"name": "a/b/c.wav"}
    typed = BlobPath.parse("data/in/{stem}.{ext}")
    assert typed.prefix == "in/"
    assert typed.match("in/x/y.tar.gz") == {"stem": "x/y.tar", "ext": "gz"}
    assert typed.match("out/x.txt") is None
    exact = BlobPath.parse("data/fixed.json")
    assert exact.match("fixed.json") == {}
    assert exact.match("fixed.json.bak") is None
    for bad in ("{name}", "container", "c{x}/{name}", "c/{na-me}", "c/{a}/{a}"):
        with pytest.raises(ValueError, match="blob path"):
            BlobPath.parse(bad)


def test_binding_expressions() -> None:
    assert fill_expressions("out/{Name}.txt", {"name": "a/b"}) == "out/a/b.txt"
    assert len(fill_expressions("{rand-guid}", {})) == 36
    assert fill_expressions("{DateTime}", {}).endswith("Z")
    with pytest.raises(BindingExpressionError, match=r"\{missing\}"):
        fill_expressions("x/{missing}", {})
