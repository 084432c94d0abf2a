"""Ledger keys, packing, display names and chunking: the parts that need no storage."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest

from shared.pipeline.grouping import group_of
from shared.pipeline.ledger.keys import (
    MAX_KEY_PATH_UNITS,
    SourceRef,
    encode_key_part,
    key_upper_bound,
    path_key,
)
from shared.pipeline.ledger.records import SourceKind, SourceRecord, SourceState, pack, unpack
from shared.pipeline.manifest_document import parse_manifest
from shared.pipeline.submission import (
    MAX_DISPLAY_NAME,
    batch_id_of,
    custom_properties,
    display_name_for,
)

FORBIDDEN = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


@pytest.mark.parametrize(
    "path",
    ["a/b c.wav", "we#ird?/x\\y.wav", "tab\there.wav", "100%/pipe|x.wav", "ünï/códe.wav", "\x85"],
)
def test_keys_have_no_forbidden_characters_and_are_reversible(path: str) -> None:
    key = SourceRef("audio-input", path, "0x8DC").row_key
    assert not FORBIDDEN.search(key)
    encoded = encode_key_part(path)
    assert key.startswith(encoded + "|")
    assert unquote(encoded) == path


def test_an_encoded_prefix_is_a_prefix_of_the_encoded_path() -> None:
    for prefix, path in [("calls/2026/", "calls/2026/11/a.wav"), ("a%", "a%b/c"), ("x#", "x#y")]:
        assert encode_key_part(path).startswith(encode_key_part(prefix))
        lower = encode_key_part(prefix)
        assert lower <= encode_key_part(path) < key_upper_bound(lower)


def test_versions_and_origins_get_distinct_keys_under_one_path() -> None:
    one = SourceRef("c", "p.wav", "0x1").row_key
    two = SourceRef("c", "p.wav", "0x2").row_key
    manifest = SourceRef("c", "p.wav", "0x1", "req/m.json@0x9").row_key
    assert len({one, two, manifest}) == 3
    assert all(k.startswith("p.wav|") for k in (one, two, manifest))
    # A path that merely starts like another is outside its exact-path range.
    other = SourceRef("c", "p.wav|0x1", "0x1").row_key
    assert not other.startswith("p.wav|")


def test_very_long_paths_are_clipped_with_a_hash_and_stay_within_key_limits() -> None:
    long_a = "deep/" * 300 + "a.wav"
    long_b = "deep/" * 300 + "b.wav"
    assert path_key(long_a) != path_key(long_b)
    key = SourceRef("c", long_a, "0x8DC", "m").row_key
    assert len(key.encode("utf-16-le")) <= 1024
    assert len(path_key(long_a)) <= MAX_KEY_PATH_UNITS + 25


def test_pack_round_trips_and_splits_into_chunks() -> None:
    value = [[f"https://a/c/{i}.wav", "c", f"{i}.wav", f"0x{i:x}"] for i in range(3000)]
    packed = pack(value, "Sources")
    assert all(len(chunk) <= 64 * 1024 for chunk in packed.values())
    assert unpack(packed, "Sources") == value
    assert unpack({}, "Sources") is None


def test_batch_names_are_deterministic_whatever_the_order_and_bounded() -> None:
    def row(path: str, etag: str = "0x1", submissions: int = 0) -> SourceRecord:
        ref = SourceRef("audio-input", path, etag)
        return SourceRecord(
            ref=ref,
            kind=SourceKind.AUDIO,
            state=SourceState.QUEUED,
            row_etag="",
            submissions=submissions,
        )

    rows = [row(f"{'x' * 500}/{i}.wav") for i in range(3)]
    batch = batch_id_of(rows)
    assert batch == batch_id_of(list(reversed(rows))), "the same members, the same batch"
    assert batch != batch_id_of(rows[:2])
    assert batch != batch_id_of([row(r.ref.path, "0x2") for r in rows])
    retried = [row(r.ref.path, submissions=1) for r in rows]
    assert batch != batch_id_of(retried), "a retry of the same versions is a new submission"
    first = rows[0].ref
    name = display_name_for("batch", batch, f"3 file(s): {first.container}/{first.path}")
    assert len(name) <= MAX_DISPLAY_NAME
    assert name.startswith("stt:")


def test_groups_are_stable_and_keep_destinations_apart() -> None:
    options = {"locale": "en-US", "diarization": False}
    group, key = group_of(options, output_container="transcripts")
    assert (
        group == group_of(dict(reversed(list(options.items()))), output_container="transcripts")[0]
    )
    assert key["destinationPrefix"] == ""
    assert group != group_of(options, output_container="transcripts", destination_prefix="m/")[0]
    assert group != group_of({**options, "locale": "de-DE"}, output_container="transcripts")[0]


def test_custom_properties_respect_the_service_limits() -> None:
    props = custom_properties(source="c/" + "p" * 400, etag="0x1", empty="")
    assert set(props) == {"source", "etag"}
    assert len(props["source"]) == 256
    assert props["source"].endswith("ppp")


def test_manifest_paths_and_prefixes_are_normalised() -> None:
    manifest = parse_manifest(b'{"files": ["/a.wav", "a.wav"], "destinationPrefix": "/out"}')
    assert manifest.files == ["a.wav", "a.wav"]
    assert manifest.destination_prefix == "out/"
    assert parse_manifest(b'\xef\xbb\xbf{"prefix": ""}').prefix == ""
