"""The lake's bytes on one of two backends behind one interface: a local folder
(`FolderStore`) or an S3 bucket (`lake_store_s3.S3Store`, any S3 API: SeaweedFS here, a
cloud bucket in production). What the lake contract needs of storage, and no more:

- `put_once(key, data)`: an immutable file, created once. A reader sees the whole file or
  none (rename on disk, one PUT on S3). A second writer of the key loses: if its bytes
  are the same (a retried write that had landed, a re-run) it is told so (False), else
  `AlreadyExists`.
- `get(key)`: the bytes (`FileNotFoundError` naming the key if there are none).
- `keys(folder, start_after)`: every key under a folder, in byte order, after a key (how a
  sensor lists what is new without file times).
- `read_versioned(key)` / `swap(key, data, version)`: compare-and-swap of a small mutable
  object (a high-water mark): the write happens only if nobody changed the key since it
  was read (`version` None: only if it does not exist).
- `delete(key)`.

Keys are lake-relative paths of segments `[A-Za-z0-9._=-]+` joined by single slashes:
the shapes a folder and an S3 server agree on (docs/object-storage.md: SeaweedFS folds
`//`, backslashes and trailing slashes into folders, and drops an object written under
`o/`). A key outside them is refused before any I/O.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tgmed_common.atomic import is_temp, write_bytes_atomic

_SEGMENT = re.compile(r"[A-Za-z0-9._=-]+")
_LOCKS = ".locks"  # the folder backend's lock files for swap (hidden: never a key)


class AlreadyExists(FileExistsError):
    """A create-once key holds other bytes than the ones being written."""

    def __init__(self, store: str, key: str) -> None:
        super().__init__(
            f"{store}: {key} already exists with other content (lake files are written "
            "once): write under a new name, or remove the old file if it is wrong"
        )
        self.key = key


def check_key(key: str) -> str:
    """`key` if it is a valid lake key, else ValueError naming it."""
    segments = key.split("/")
    if not all(_SEGMENT.fullmatch(s) and s not in (".", "..") for s in segments):
        raise ValueError(
            f"{key!r} is not a lake key: segments of letters, digits, '.', '_', '=' or '-' "
            "joined by single '/' (no leading, trailing or double slash)"
        )
    return key


def version_of(data: bytes) -> str:
    """An object's version: the MD5 of its bytes (what S3 servers give as its ETag)."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class LakeStore(Protocol):
    name: str

    def put_once(self, key: str, data: bytes) -> bool: ...
    def get(self, key: str) -> bytes: ...
    def keys(self, folder: str, start_after: str = "") -> Iterator[str]: ...
    def read_versioned(self, key: str) -> tuple[bytes, str] | None: ...
    def swap(self, key: str, data: bytes, version: str | None) -> bool: ...
    def delete(self, key: str) -> None: ...


@dataclass
class FolderStore:
    """The lake in a local folder (a volume, a hostPath, ./data/lake)."""

    root: Path

    @property
    def name(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_once(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_bytes_atomic(path, data, overwrite=False)
        except FileExistsError:
            if path.read_bytes() == data:
                return False
            raise AlreadyExists(self.name, key) from None
        return True

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.name}: no {key}") from None

    def keys(self, folder: str, start_after: str = "") -> Iterator[str]:
        base = self._path(folder)
        found = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            relative = Path(dirpath).relative_to(self.root).as_posix()
            found += [
                f"{relative}/{name}" for name in filenames if not name.startswith(".")
                and not is_temp(Path(name))
            ]  # fmt: skip
        # byte order, as S3 lists: sorting the UTF-8 bytes, not the code points
        for key in sorted(found, key=lambda k: k.encode()):
            if key.encode() > start_after.encode():
                yield key

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        return data, version_of(data)

    def swap(self, key: str, data: bytes, version: str | None) -> bool:
        path = self._path(key)
        locks = self.root / _LOCKS
        locks.mkdir(parents=True, exist_ok=True)
        with (locks / key.replace("/", "%")).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            current = self.read_versioned(key)
            if (current[1] if current else None) != version:
                return False
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(path, data)
            return True

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
