"""The extract stage over a real lake: one extraction file per message file and version,
incremental, versioned, bad files set aside while the rest goes through, and the same
records from one process or several."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime
from unittest.mock import ANY

from tgmed_common.lake import Lake, read_extractions, read_messages
from tgmed_common.records import MessageRecord
from tgmed_extract import findings_store, stage
from tgmed_extract.cli import main
from tgmed_extract.extract import extract as extract_text
from tgmed_extract.findings_store import FindingsStore, text_key

TEXTS = [
    "Augmentin 625mg 450 birr",
    "Paracetamol 500mg 60br. Ibuprofen syrup 100ml 70 birr.",
    "BP monitor repair & calibration from 300 birr",
    "Hiwot Glow: 495 birr",
    "",
    "ፓራሲታሞል ዋጋ 55 ብር",
]


def message(channel: str, message_id: int, text: str) -> MessageRecord:
    return MessageRecord(
        source="export",
        channel_username=channel,
        message_id=message_id,
        date=datetime(2026, 11, 1, 8, tzinfo=UTC),
        text=text,
        scraped_at=datetime(2026, 11, 2, tzinfo=UTC),
    )


def write_lake(root, files: int = 2, per_file: int = 30) -> Lake:
    lake = Lake(root)
    for part in range(files):
        records = [
            message("chemed", 1 + part * per_file + i, TEXTS[i % len(TEXTS)])
            for i in range(per_file)
        ]
        lake.write_records(
            lake.message_file(date(2026, 11, 1), "chemed", f"run-{part:04d}"), records
        )
    return lake


def records(lake: Lake) -> list:
    return sorted(
        (r for path in lake.extraction_files() for r in read_extractions(path)),
        key=lambda r: (r.message_id, r.extractor_version),
    )


def test_every_message_gets_a_record_once(tmp_path):
    lake = write_lake(tmp_path)
    summary = stage.run_extraction(lake, workers=1)
    assert (summary.files, summary.messages, summary.skipped) == (2, 60, 0)
    assert summary.extracted == len(TEXTS) and summary.reused == 60 - len(TEXTS)
    found = records(lake)
    assert [r.message_id for r in found] == list(range(1, 61))
    first = found[0]  # Augmentin: its generic, the price with its strength
    assert [m.product for m in first.mentions] == ["amoxicillin + clavulanic acid"]
    assert [(p.amount, p.currency, p.strength) for p in first.prices] == [(450.0, "ETB", "625 mg")]
    repair = found[2]
    assert not repair.prices and [s.amount for s in repair.services] == [300.0]
    assert [c.name for c in found[3].candidates] == ["hiwot glow"]
    assert found[4].mentions == [] and found[4].prices == []  # an empty text still has one
    again = stage.run_extraction(lake, workers=1)
    assert (again.files, again.messages, again.already_done) == (0, 0, 2)
    assert records(lake) == found


def test_a_new_version_re_extracts_every_file_beside_the_old(tmp_path, monkeypatch):
    lake = write_lake(tmp_path, files=1, per_file=6)
    stage.run_extraction(lake, workers=1)
    monkeypatch.setattr(stage, "version_tag", lambda: "9.9.9-newcatalog")
    summary = stage.run_extraction(lake, workers=1)
    assert (summary.files, summary.messages, summary.version) == (1, 6, "9.9.9-newcatalog")
    versions = {r.extractor_version for r in records(lake)}
    assert len(versions) == 2 and "9.9.9-newcatalog" in versions
    assert len(lake.message_files()) == 1  # the messages themselves are untouched


def test_a_bad_message_file_is_set_aside_and_the_rest_goes_through(tmp_path, capsys):
    lake = write_lake(tmp_path, files=2, per_file=3)
    bad = lake.message_file(date(2026, 11, 1), "chemed", "run-9999")
    bad.write_text('{"not": "a message"}\n')
    summary = stage.run_extraction(lake, workers=1)
    assert summary.files == 2 and summary.skipped == 1
    assert list(summary.failed) == [lake.relative(bad)]
    assert f"{bad}:1:" in summary.failed[lake.relative(bad)]  # the file, the line, why
    assert len(records(lake)) == 6


def test_the_cli_says_set_aside_with_exit_1_and_a_summary(tmp_path, monkeypatch, capsys):
    lake = write_lake(tmp_path, files=1, per_file=3)
    monkeypatch.setenv("LAKE_DIR", str(lake.root))
    assert main(["run", "--workers", "1"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["stage"], summary["messages"], summary["files"]) == ("extract", 3, 1)
    bad = lake.message_file(date(2026, 11, 2), "chemed", "bad")
    bad.parent.mkdir(parents=True)
    bad.write_text("not json\n")
    assert main(["run"]) == 1
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["skipped"] == 1 and summary["failed"]


def test_several_processes_write_the_same_records(tmp_path, monkeypatch):
    one = write_lake(tmp_path / "one", files=4, per_file=40)
    several = write_lake(tmp_path / "several", files=4, per_file=40)
    stage.run_extraction(one, workers=1)
    monkeypatch.setattr(stage, "BYTES_PER_WORKER", 1)  # a small backlog still fans out
    summary = stage.run_extraction(several, workers=2)
    assert summary.workers == 2 and summary.files == 4 and summary.messages == 160

    def comparable(lake):
        return [r.model_dump(exclude={"extracted_at"}) for r in records(lake)]

    assert comparable(one) == comparable(several)


def test_a_known_brand_alone_is_no_candidate_but_a_new_name_is(extract):
    found = extract("Today's offers:\n- Nivea: 800 ETB\n- Hiwot Glow: 400 birr")
    assert [c.name for c in found.candidates] == ["hiwot glow"]


# --- the findings store: a text is extracted once per version, across runs -------------


def refresh_copy(lake: Lake, run: str) -> None:
    """What a scrape's refresh window writes: the same posts again, in a new file."""
    for path in lake.message_files()[:1]:
        records = [
            r.model_copy(update={"scraped_at": datetime(2026, 11, 3, tzinfo=UTC)})
            for r in read_messages(path)
        ]
        lake.write_records(lake.message_file(date(2026, 11, 1), "chemed", run), records)


def test_a_refreshed_post_is_not_extracted_again(tmp_path):
    lake = write_lake(tmp_path, files=1, per_file=12)
    stage.close_stores()
    stage._seen.clear()  # a new process: nothing of this run's texts in memory
    first = stage.run_extraction(lake, workers=1)
    assert first.extracted == len(TEXTS) and first.remembered == 0
    refresh_copy(lake, "run-refresh")
    stage._seen.clear()  # the next run is another process
    again = stage.run_extraction(lake, workers=1)
    assert (again.files, again.messages, again.extracted) == (1, 12, 0)
    assert again.remembered == len(TEXTS) and again.reused == 12 - len(TEXTS)
    # the same findings as an extraction from scratch
    by_file = {}
    for path in lake.extraction_files():
        by_file[path.name] = [
            r.model_dump(include={"mentions", "prices", "services", "candidates"})
            for r in read_extractions(path)
        ]
    assert len(by_file) == 2
    [original, refreshed] = by_file.values()
    assert original == refreshed


def test_another_version_starts_a_store_of_its_own_and_drops_the_old(tmp_path, monkeypatch):
    lake = write_lake(tmp_path, files=1, per_file=6)
    stage._seen.clear()
    stage.run_extraction(lake, workers=1)
    [old] = (lake.root / "state" / "extract").glob("findings-*.sqlite")
    monkeypatch.setattr(stage, "version_tag", lambda: "9.9.9-newcatalog")
    stage._seen.clear()
    summary = stage.run_extraction(lake, workers=1)
    assert summary.extracted == len(TEXTS) and summary.remembered == 0  # never the old one's
    stores = [p.name for p in (lake.root / "state" / "extract").glob("findings-*.sqlite")]
    assert stores == ["findings-9.9.9-newcatalog.sqlite"] and not old.exists()


def test_a_corrupt_store_is_reported_and_every_text_extracted(tmp_path, caplog):
    lake = write_lake(tmp_path, files=1, per_file=6)
    path = lake.root / "state" / "extract" / f"findings-{stage.version_tag()}.sqlite"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 100)
    stage._seen.clear()
    summary = stage.run_extraction(lake, workers=1)
    assert summary.files == 1 and summary.extracted == len(TEXTS) and summary.skipped == 0
    assert "cannot be used" in caplog.text and str(path) in caplog.text
    assert len(records(lake)) == 6


def test_several_processes_share_the_store(tmp_path, monkeypatch):
    lake = write_lake(tmp_path, files=4, per_file=40)
    monkeypatch.setattr(stage, "BYTES_PER_WORKER", 1)
    stage._seen.clear()
    first = stage.run_extraction(lake, workers=2)
    assert first.workers == 2 and first.remembered == 0
    # each text extracted by one process only: the other takes it from the store
    assert (first.extracted, first.reused) == (len(TEXTS), 160 - len(TEXTS))
    for run in ("run-r1", "run-r2"):
        refresh_copy(lake, run)
    again = stage.run_extraction(lake, workers=2)
    assert again.messages == 80 and again.extracted == 0 and again.remembered > 0


def test_a_text_another_process_claimed_and_never_stored_is_extracted_here(
    tmp_path, monkeypatch, caplog
):
    store = FindingsStore(tmp_path / "findings.sqlite")
    other = sqlite3.connect(tmp_path / "findings.sqlite")
    with other:  # a process that claimed a text, then died before storing it
        other.execute("insert into claims values (?, 1)", (text_key(TEXTS[0]),))
    monkeypatch.setattr(stage, "_WAIT_SECONDS", 0.2)
    stage._seen.clear()
    texts = stage._FileFindings(store)
    texts.add(TEXTS[:2])
    assert list(texts.waiting.values()) == [TEXTS[0]] and TEXTS[1] in texts.found
    texts.finish()
    assert texts.origin == {TEXTS[0]: "extracted", TEXTS[1]: "extracted"}
    assert texts.found[TEXTS[0]] == (stage.findings_json(extract_text(TEXTS[0])), ANY)
    assert "claimed by another process" in caplog.text
    assert set(store.get_many([text_key(t) for t in TEXTS[:2]])) == {text_key(t) for t in TEXTS[:2]}
    store.close()


def test_a_lookup_searches_the_store_by_key_never_scans_it(tmp_path):
    store = FindingsStore(tmp_path / "findings.sqlite")
    with sqlite3.connect(tmp_path / "findings.sqlite") as conn:
        conn.execute("create temp table wanted (k blob primary key)")
        for query in (findings_store.STORED, findings_store.MINE):
            plan = " / ".join(
                row[3]
                for row in conn.execute(f"explain query plan {query}", (1,) * query.count("?"))
            )
            assert "SCAN w" in plan and "SCAN f" not in plan and "SCAN c" not in plan, plan
    store.close()


def test_a_store_of_the_first_layout_keeps_working(tmp_path):
    """Stores written before the findings were appended in rowid order (a table clustered
    on the key) are read and added to as they are."""
    path = tmp_path / "findings.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "create table findings (text_hash blob primary key, findings text not null, "
            "with_products integer not null, mentions integer not null, prices integer not "
            "null, services integer not null, candidates integer not null) without rowid"
        )
        conn.execute("insert into findings values (?, 'old', 1, 1, 0, 0, 0)", (text_key("a"),))
    store = FindingsStore(path)
    store.put([(text_key("b"), "new", (0, 0, 0, 0, 1)), (text_key("a"), "again", (0,) * 5)])
    found = store.get_many([text_key("a"), text_key("b"), text_key("c")])
    assert store.broken is None
    assert found == {
        text_key("a"): ("old", (1, 1, 0, 0, 0), False),  # stored once: never replaced
        text_key("b"): ("new", (0, 0, 0, 0, 1), False),
    }
    store.close()
