"""An export built as an attacker would build it: result.json names files outside the
export folder, through symlinks, on /proc or /dev, or too large. None of them reaches
the lake; the message is kept without its photo and named in the summary; everything
else in the export imports; the exit code says something was set aside."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tgmed_common.lake import Lake, read_messages
from tgmed_sample.generate import generate
from tgmed_scraper import cli

SECRET = b"TOP-SECRET-host-file-7f3a"
API_HASH = "hash-that-must-never-reach-the-lake-91c2"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile-sample")
    truth = generate(out, posts_per_channel=12, days=6)
    return out / "exports", truth["channels"]["chemed123"]


def hostile_export(exports: Path, tmp_path: Path, make_path) -> tuple[Path, int]:
    """A copy of one export whose first photo message names what `make_path(folder)`
    returns; a secret file lies beside the export's parent folder."""
    (tmp_path / "secret.txt").write_bytes(SECRET)
    folder = tmp_path / "in" / "chemed123"
    shutil.copytree(exports / "CheMed123", folder)
    result = folder / "result.json"
    document = json.loads(result.read_text())
    message = next(m for m in document["messages"] if "photo" in m)
    message["photo"] = make_path(folder)
    result.write_text(json.dumps(document, ensure_ascii=False))
    return folder, message["id"]


def symlink(name: str, target: str):
    def make(folder: Path) -> str:
        (folder / "photos" / name).symlink_to(target)
        return f"photos/{name}"

    return make


def fifo(folder: Path) -> str:
    os.mkfifo(folder / "photos" / "pipe.jpg")
    return "photos/pipe.jpg"


def device(folder: Path) -> str:
    try:
        os.mknod(folder / "photos" / "zero.jpg", 0o600 | 0o020000, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("creating a device node needs root")
    return "photos/zero.jpg"


def folder_symlink(folder: Path) -> str:
    outside = folder.parent.parent / "elsewhere"
    outside.mkdir()
    (outside / "a.jpg").write_bytes(SECRET)
    (folder / "linked").symlink_to(outside, target_is_directory=True)
    return "linked/a.jpg"


def too_large(folder: Path) -> str:
    (folder / "photos" / "huge.jpg").write_bytes(b"\xff\xd8" + b"\0" * 200_000)
    return "photos/huge.jpg"


CASES = {
    "path traversal ../../secret.txt": (lambda folder: "../../secret.txt", "leaves the export"),
    "absolute path": (lambda folder: str(folder.parent.parent / "secret.txt"), "absolute path"),
    "symlink in photos/ to a file outside": (symlink("evil.jpg", "../../../secret.txt"), "symlink"),
    "symlink in photos/ to an absolute path": (symlink("abs.jpg", "/etc/hostname"), "symlink"),
    "/proc/self/environ": (lambda folder: "/proc/self/environ", "absolute path"),
    "/dev/zero": (lambda folder: "/dev/zero", "absolute path"),
    "symlink to /dev/zero": (symlink("zero.jpg", "/dev/zero"), "symlink"),
    "a device node in photos/": (device, "character device"),
    "a FIFO in photos/": (fifo, "FIFO"),
    "a folder symlink on the way": (folder_symlink, "symlink"),
    "a photo over the size bound": (too_large, "over the bound of 100,000"),
}


def lake_bytes(lake: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(lake.rglob("*")) if p.is_file())


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_photo_path_never_reaches_the_lake(
    sample, tmp_path, monkeypatch, capsys, caplog, case
):
    exports, truth = sample
    make_path, says = CASES[case]
    folder, message_id = hostile_export(exports, tmp_path, make_path)
    monkeypatch.setenv("LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.setenv("TELEGRAM_API_HASH", API_HASH)  # what /proc/self/environ would leak
    monkeypatch.setenv("SCRAPER_EXPORT_MAX_PHOTO_BYTES", "100000")  # sample photos: < 80 kB
    monkeypatch.chdir(tmp_path)

    code = cli.main(["import-export", str(folder)])

    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert code == 1  # something was set aside: someone should look
    assert summary["media_refused"] == 1
    [named] = summary["media_refused_messages"]
    assert str(folder / "result.json") in named and f"message {message_id}:" in named
    assert says in named, named
    assert f"message {message_id}" in caplog.text  # the log names it too
    # the rest of the export imported; the message is kept, without its photo
    lake = Lake(tmp_path / "lake")
    records = {r.message_id: r for p in lake.message_files() for r in read_messages(p)}
    assert len(records) == truth["messages"] == summary["messages"]
    assert records[message_id].media_type == "photo"
    assert records[message_id].media_path is None
    assert summary["photos"] == truth["photos"] - 1
    assert len(lake.media_files()) == truth["photos"] - 1
    # nothing from outside the export folder, nor the environment, is in the lake
    everything = lake_bytes(lake.root)
    assert SECRET not in everything
    assert API_HASH.encode() not in everything
    assert not list(lake.root.rglob("*environ*"))


def test_a_photo_within_the_bound_is_copied(sample, tmp_path, monkeypatch, capsys):
    exports, truth = sample
    monkeypatch.setenv("LAKE_DIR", str(tmp_path / "lake"))
    monkeypatch.setenv("SCRAPER_EXPORT_MAX_PHOTO_BYTES", str(10_000_000))
    assert cli.main(["import-export", str(exports / "CheMed123")]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["photos"] == truth["photos"] and summary["media_refused"] == 0


def test_result_json_symlinked_outside_is_refused_and_not_copied_to_quarantine(
    tmp_path, monkeypatch, capsys
):
    (tmp_path / "secret.txt").write_bytes(SECRET)
    folder = tmp_path / "in" / "chemed123"
    folder.mkdir(parents=True)
    (folder / "result.json").symlink_to(tmp_path / "secret.txt")
    monkeypatch.setenv("LAKE_DIR", str(tmp_path / "lake"))
    code = cli.main(["import-export", str(folder)])
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert code == 1
    [reason] = summary["failed"].values()
    assert "symlink" in reason
    lake = tmp_path / "lake"
    assert Lake(lake).quarantined("exports")  # the note says why
    assert SECRET not in lake_bytes(lake)  # but the file it points to was not copied
