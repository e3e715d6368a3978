"""Opening a file an export names, as untrusted input.

An export comes from someone else: its `result.json` may name `../../secret.txt`, an
absolute path, `/proc/self/environ`, a device, or a symlink in `photos/` that points out
of the folder. A file is opened only if its path, taken relative to the export folder,
stays inside it without passing through a symlink, and it is a regular file no larger
than the bound, with one link (a hard link inside the folder can be a host file: it
shares the file, not a copy) on the folder's own file system (a mount inside the export
folder is someone else's file system). The path is walked one component at a time
from an open descriptor of the folder (`openat` with O_NOFOLLOW), and the checks are
made on the opened descriptor, so nothing can be swapped in between the check and the
copy.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

DEFAULT_MAX_PHOTO_BYTES = 20_000_000  # Telegram's own photos stay under 10 MB
DEFAULT_MAX_EXPORT_BYTES = 512 * 1024 * 1024
"""result.json: a channel's whole history is tens of MB (the sample's: 60 kB per 100
posts; 500k posts ~ 300 MB)."""


_SETTING = {True: "SCRAPER_EXPORT_MAX_BYTES", False: "SCRAPER_EXPORT_MAX_PHOTO_BYTES"}


class UnsafeExportPath(ValueError):
    """A path the export names that must not be read; says why."""


def _components(relative: str) -> list[str]:
    if "\x00" in relative:
        raise UnsafeExportPath("contains a NUL character")
    path = PurePosixPath(relative.replace("\\", "/"))
    if path.is_absolute():
        raise UnsafeExportPath("an absolute path, not a file of the export folder")
    parts = [part for part in path.parts if part != "."]
    if not parts:
        raise UnsafeExportPath("an empty path")
    if ".." in parts:
        raise UnsafeExportPath("leaves the export folder ('..')")
    return parts


@contextlib.contextmanager
def open_export_file(folder: Path, relative: str, max_bytes: int | None) -> Iterator[BinaryIO]:
    """The file at `relative` inside `folder`, opened for reading, or UnsafeExportPath.
    A file that does not exist raises FileNotFoundError (a broken export, not a hostile
    one). Reading more than `max_bytes` from the stream raises UnsafeExportPath too (a
    file that grows after the check)."""
    parts = _components(relative)
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    device = os.fstat(descriptor).st_dev
    try:
        for part in parts[:-1]:
            try:
                inner = os.open(
                    part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=descriptor
                )
            except OSError as error:
                raise _refusal(error, part, folder=True) from None
            os.close(descriptor)
            descriptor = inner
        try:
            # a device or FIFO is refused before it is opened (opening one can act on it);
            # the descriptor is checked again below, in case it changed in between
            info = os.stat(parts[-1], dir_fd=descriptor, follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                raise UnsafeExportPath(f"{parts[-1]!r} is a symlink (symlinks are not followed)")
            if not stat.S_ISREG(info.st_mode):
                raise UnsafeExportPath(f"not a regular file ({_kind(info.st_mode)})")
            # O_NONBLOCK: a FIFO swapped in now must not block the open
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
            file = os.open(parts[-1], flags, dir_fd=descriptor)
        except OSError as error:
            raise _refusal(error, parts[-1], folder=False) from None
    finally:
        os.close(descriptor)
    try:
        info = os.fstat(file)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeExportPath(f"not a regular file ({_kind(info.st_mode)})")
        if info.st_nlink > 1:
            raise UnsafeExportPath(
                f"has {info.st_nlink} hard links (it may be a file from outside the export:"
                " copy the file into the export folder instead of linking it)"
            )
        if info.st_dev != device:
            raise UnsafeExportPath("lies on another file system than the export folder")
        if max_bytes is not None and info.st_size > max_bytes:
            raise UnsafeExportPath(
                f"{info.st_size:,} bytes, over the bound of {max_bytes:,} "
                f"({_SETTING[relative.endswith('.json')]})"
            )
        os.set_blocking(file, True)
        stream = os.fdopen(file, "rb")
    except BaseException:
        os.close(file)
        raise
    with stream:
        yield _Bounded(stream, max_bytes) if max_bytes is not None else stream


def _refusal(error: OSError, part: str, *, folder: bool) -> OSError:
    if error.errno == errno.ELOOP:
        return UnsafeExportPath(f"{part!r} is a symlink (symlinks are not followed)")
    if error.errno == errno.ENOTDIR and folder:
        # O_DIRECTORY | O_NOFOLLOW on a symlink to a folder also fails with ENOTDIR
        return UnsafeExportPath(f"{part!r} is a symlink or not a folder")
    return error  # FileNotFoundError and the like: a broken export


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a plain file"


class _Bounded:
    """A read-only stream that refuses to give more than `limit` bytes."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self._stream = stream
        self._left = limit

    def read(self, size: int = -1) -> bytes:
        want = self._left + 1 if size < 0 else min(size, self._left + 1)
        data = self._stream.read(want)
        self._left -= len(data)
        if self._left < 0:
            raise UnsafeExportPath("grew past the size bound while being read")
        return data
