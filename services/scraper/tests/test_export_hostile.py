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


def hard_link(folder: Path) -> str:
    """A photo that is the host's file under another name (same inode): no symlink,
    inside the folder, a regular file, so only its link count gives it away."""
    os.link(folder.parent.parent / "secret.txt", folder / "photos" / "linked.jpg")
    return "photos/linked.jpg"


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
    "a hard link to a file outside": (hard_link, "2 hard links"),
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
    out, err = capsys.readouterr()
    summary = json.loads(out.splitlines()[-1])
    assert code == 1
    [reason] = summary["failed"].values()
    assert "symlink" in reason
    # the log says what was done: set aside, not copied (issue 24)
    assert "without copying it" in err and "copied" not in err.replace("without copying", "")
    lake = tmp_path / "lake"
    assert Lake(lake).quarantined("exports")  # the note says why
    assert SECRET not in lake_bytes(lake)  # but the file it points to was not copied


def test_result_json_hard_linked_to_a_host_file_is_refused_and_not_copied(
    tmp_path, monkeypatch, capsys
):
    secret = tmp_path / "secret.json"
    secret.write_bytes(b'{"name": "x", "messages": [], "leak": "' + SECRET + b'"}')
    folder = tmp_path / "in" / "chemed123"
    folder.mkdir(parents=True)
    os.link(secret, folder / "result.json")
    monkeypatch.setenv("LAKE_DIR", str(tmp_path / "lake"))
    assert cli.main(["import-export", str(folder)]) == 1
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    [reason] = summary["failed"].values()
    assert "2 hard links" in reason
    lake = Lake(tmp_path / "lake")
    [note] = lake.quarantined("exports")
    assert "not_copied" in json.loads(note.read_text())
    assert SECRET not in lake_bytes(lake.root)


@pytest.mark.parametrize("sparse", [False, True], ids=["oversized", "sparse 1 GiB"])
def test_an_oversized_result_json_is_refused_unread_and_not_copied(
    tmp_path, monkeypatch, capsys, sparse
):
    folder = tmp_path / "in" / "chemed123"
    folder.mkdir(parents=True)
    result = folder / "result.json"
    if sparse:  # 1 GiB that takes no disk: a copy would take 1 GiB
        with result.open("wb") as out:
            out.truncate(1 << 30)
    else:
        posts = [
            {"id": i, "type": "message", "date_unixtime": "1700000000", "text": "x" * 500}
            for i in range(1, 400)
        ]
        result.write_text(json.dumps({"name": "Chemed", "messages": posts}))
        monkeypatch.setenv("SCRAPER_EXPORT_MAX_BYTES", "100000")
    monkeypatch.setenv("LAKE_DIR", str(tmp_path / "lake"))
    assert cli.main(["import-export", str(folder)]) == 1
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    [reason] = summary["failed"].values()
    assert "over the bound" in reason and "SCRAPER_EXPORT_MAX_BYTES" in reason
    lake = tmp_path / "lake"
    [note] = Lake(lake).quarantined("exports")
    assert "not_copied" in json.loads(note.read_text())
    on_disk = sum(p.stat().st_blocks * 512 for p in lake.rglob("*") if p.is_file())
    assert on_disk < 1_000_000, on_disk  # the note only


# VmHWM (this process's peak), not ru_maxrss: Linux keeps ru_maxrss across fork and
# exec, so a child of a big pytest process starts with pytest's peak
PEAK = """
import sys
from pathlib import Path
from tgmed_scraper.export_import import parse_export
def status(name):
    for line in open("/proc/self/status"):
        if line.startswith(name):
            return int(line.split()[1]) * 1024
base = status("VmRSS:")
parsed = parse_export(Path(sys.argv[1]))
print(len(parsed.records), status("VmHWM:") - base)
"""


def test_a_large_export_is_read_in_bounded_memory(sample, tmp_path):
    """result.json is decoded a message at a time: the parse holds the records (about
    1.6x the file: 219 MB for a 137 MB export of 100k posts, where json.loads alone took
    1,193 MB). Bound: 3x the file, measured in a process of its own."""
    import subprocess
    import sys

    exports, _ = sample
    document = json.loads((exports / "CheMed123" / "result.json").read_text())
    posts = [m for m in document["messages"] if m["type"] == "message" and "photo" not in m]
    document["messages"] = [{**posts[i % len(posts)], "id": i + 1} for i in range(30_000)]
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "result.json").write_text(json.dumps(document, ensure_ascii=False, indent=1))
    size = (folder / "result.json").stat().st_size
    out = subprocess.run(
        [sys.executable, "-c", PEAK, str(folder / "result.json")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    records, growth = int(out[0]), int(out[1])
    assert records == 30_000
    assert growth <= 3 * size, f"{growth / 1e6:.0f} MB for a {size / 1e6:.0f} MB export"
