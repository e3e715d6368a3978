"""100 malformed lake files beside good ones: every bad one is quarantined with its file
and line in the note, every good one loads."""

import json

import psycopg

from tgmed_loader.load import load_stream


def _variants(good_line: str) -> list[tuple[str, bytes, int | None]]:
    """(name, file bytes, the bad line's number or None for whole-file problems)."""
    record = json.loads(good_line)
    lines = [good_line.replace('"message_id":1,', f'"message_id":{i},') for i in range(1, 6)]

    def with_bad(at: int, bad: bytes) -> bytes:
        body = [line.encode() + b"\n" for line in lines]
        body[at - 1] = bad
        return b"".join(body)

    def mutated(**changes) -> bytes:
        changed = {**record, **changes}
        return json.dumps(changed, ensure_ascii=False).encode() + b"\n"

    def without(field) -> bytes:
        return json.dumps({k: v for k, v in record.items() if k != field}).encode() + b"\n"

    out: list[tuple[str, bytes, int | None]] = []
    for at in range(1, 6):  # each kind of damage on each of the five lines
        out += [
            (
                f"truncated-{at}",
                b"".join(x.encode() + b"\n" for x in lines[: at - 1])
                + lines[at - 1].encode()[: 20 + 7 * at],
                at,
            ),
            (
                f"utf8-{at}",
                with_bad(at, lines[at - 1].encode().replace(b"birr", b"\xff\xfe") + b"\n"),
                at,
            ),
            (f"badjson-{at}", with_bad(at, b"{" + lines[at - 1].encode()[:30] + b"\n"), at),
            (f"idtype-{at}", with_bad(at, mutated(message_id="seven")), at),
            (f"viewstype-{at}", with_bad(at, mutated(views="many")), at),
            (f"datetype-{at}", with_bad(at, mutated(date="yesterday")), at),
            (f"naive-date-{at}", with_bad(at, mutated(date="2026-10-01T10:00:00")), at),
            (f"texttype-{at}", with_bad(at, mutated(text=5)), at),
            (f"mediatype-{at}", with_bad(at, mutated(media_type="hologram")), at),
            (f"version9-{at}", with_bad(at, mutated(schema_version=9)), at),
            (f"version0-{at}", with_bad(at, mutated(schema_version=0)), at),
            (f"negative-{at}", with_bad(at, mutated(views=-4)), at),
            (f"channel-{at}", with_bad(at, mutated(channel_username="../etc")), at),
            (f"extra-{at}", with_bad(at, mutated(colour="red")), at),
            (f"array-{at}", with_bad(at, b"[1, 2, 3]\n"), at),
            (f"blank-{at}", with_bad(at, b"\n"), at),
            (f"null-id-{at}", with_bad(at, mutated(message_id=None)), at),
            (f"zero-id-{at}", with_bad(at, mutated(message_id=0)), at),
        ]
    for field in ("source", "channel_username", "message_id", "date", "scraped_at"):
        out.append((f"missing-{field}", with_bad(2, without(field)), 2))
    out += [
        ("empty", b"", None),
        ("spaces", b"  \n\n", None),
        ("newlines", b"\n\n\n", None),
        ("binary", b"\x00\x01\x02\x03\n", 1),
    ]
    # rows that pass the record type but that PostgreSQL refuses (NUL in jsonb text)
    out.append(("nul-in-text", with_bad(3, mutated(text="a\u0000b")), None))
    return out


def test_hundred_malformed_variants_are_quarantined_and_good_files_load(db_url, lake, helpers):
    good_line = helpers.message("chemed123", 1).model_dump_json()
    variants = _variants(good_line)
    assert len(variants) == 100
    folder = lake.message_file(helpers.T0.date(), "chemed123", "x").parent
    folder.mkdir(parents=True)
    for name, body, _ in variants:
        (folder / f"bad-{name}.jsonl").write_bytes(body)
    for index in range(20):  # good files beside them, other channel so keys never clash
        records = [helpers.message("tikvahpharma", index * 10 + i) for i in range(1, 11)]
        helpers.write_file(lake, f"good-{index:02d}", records)

    summary = load_stream(db_url, lake, "messages", workers=2)

    assert summary.quarantined == 100 and summary.loaded == 20 and summary.rows == 200
    with psycopg.connect(db_url) as conn:
        loaded = conn.execute(
            "select channel_username, count(*) from raw.telegram_messages group by 1"
        ).fetchall()
    assert loaded == [("tikvahpharma", 200)]
    notes = {
        n.name.removesuffix(".jsonl.reason.json"): json.loads(n.read_text())
        for n in lake.quarantined("telegram_messages")
    }
    assert len(notes) == 100
    for name, _, line in variants:
        reason = notes[f"bad-{name}"]["reason"]
        assert f"bad-{name}.jsonl" in reason, reason
        if line is not None:
            assert f"bad-{name}.jsonl:{line}:" in reason, reason
    assert "empty file" in notes["bad-empty"]["reason"]
    assert "PostgreSQL refused" in notes["bad-nul-in-text"]["reason"]
    assert "line 3" in notes["bad-nul-in-text"]["reason"]
    assert "schema_version 9 is not supported" in notes["bad-version9-1"]["reason"]
    assert not list(folder.glob("bad-*"))  # all moved out of the lake's raw area
    # and a re-run changes nothing
    again = load_stream(db_url, lake, "messages", workers=2)
    assert again.loaded == again.quarantined == 0 and again.skipped == 20
