"""A lake on a full filesystem (a real one: a small tmpfs, where the machine allows
mounting): every write fails with DiskFullError naming the folder and what to do, and
leaves no temporary file and nothing published."""

from __future__ import annotations

import os
import subprocess

import pytest

from tgmed_common.atomic import AtomicBatch, DiskFullError, atomic_writer, is_temp


@pytest.fixture
def full_folder(tmp_path):
    """A 1 MiB tmpfs, filled up but for a few kilobytes."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        stats = os.statvfs(mount)
        free = stats.f_bavail * stats.f_frsize
        fd = os.open(mount / "filler", os.O_CREAT | os.O_WRONLY)
        try:
            os.posix_fallocate(fd, 0, free - 8192)
        finally:
            os.close(fd)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def leftovers(folder):
    return sorted(p.name for p in folder.rglob("*") if p.name != "filler")


def test_atomic_writer_on_a_full_disk_names_the_folder_and_leaves_nothing(full_folder):
    target = full_folder / "raw" / "part.jsonl"
    with pytest.raises(DiskFullError) as raised, atomic_writer(target) as stream:
        for _ in range(64):
            stream.write(b"x" * 4096)
    message = str(raised.value)
    assert str(target.parent) in message and "free space there" in message
    assert "nothing of this write was kept" in message
    assert not target.exists()
    assert not [p for p in full_folder.rglob("*") if is_temp(p)]


def test_a_batch_on_a_full_disk_publishes_none_of_its_files(full_folder):
    batch = AtomicBatch()
    with pytest.raises(DiskFullError) as raised:
        for n in range(8):
            with batch.open(full_folder / f"file-{n}.jpg") as stream:
                stream.write(b"y" * 4096)
        batch.commit()
    batch.abort()
    assert "file-" in str(raised.value)
    assert leftovers(full_folder) == []
