"""The lake store's two backends behave alike: a local folder and a real S3 server
(SeaweedFS, the `s3_server` fixture), each operation on both."""

from __future__ import annotations

import threading
import uuid

import pytest
from obstore.exceptions import PermissionDeniedError

from tgmed_common.lake_store import AlreadyExists, FolderStore, LakeStore, check_key, version_of
from tgmed_common.lake_store_s3 import S3Store

# the lake's own key shapes (docs/architecture.md's layout), deliberately out of order
LAKE_KEYS = [
    "raw/telegram_messages/date=2026-01-02/channel=chemed/20260102T000000Z-abc-0001.jsonl",
    "raw/telegram_messages/date=2026-01-01/channel=chemed_2/20260101T000000Z-abc-0000.jsonl",
    "raw/telegram_messages/date=2026-01-01/channel=chemed/20260101T000000Z-abc-0001.jsonl",
    "raw/telegram_messages/date=2026-01-01/channel=chemed/20260101T000000Z-abc-0000.jsonl",
    "raw/telegram_messages/date=2026-01-01/channel=a1/20260101T000000Z-abc-0000.jsonl",
    "raw/telegram_media/channel=chemed/1234.jpg",
]


@pytest.fixture(params=["folder", "s3"])
def store(request, tmp_path) -> LakeStore:
    if request.param == "folder":
        return FolderStore(tmp_path / "lake")
    server = request.getfixturevalue("s3_server")
    return S3Store(server.url, server.bucket, server.access_key, server.secret_key)


@pytest.fixture
def root() -> str:
    """Each test's own folder (the S3 server and its bucket serve the whole session)."""
    return f"t{uuid.uuid4().hex}"


def test_a_file_is_written_once_and_read_back(store, root):
    key = f"{root}/raw/x/a.jsonl"
    assert store.put_once(key, b'{"a":1}\n') is True
    assert store.get(key) == b'{"a":1}\n'
    # the same bytes again (a retry whose first try landed, a re-run): no error, no write
    assert store.put_once(key, b'{"a":1}\n') is False
    with pytest.raises(AlreadyExists, match="already exists with other content"):
        store.put_once(key, b'{"a":2}\n')
    assert store.get(key) == b'{"a":1}\n'
    store.delete(key)
    with pytest.raises(FileNotFoundError, match=r"no .*/raw/x/a\.jsonl"):
        store.get(key)


def test_keys_are_listed_in_byte_order_after_a_key(store, root):
    for key in LAKE_KEYS:
        store.put_once(f"{root}/{key}", key.encode())
    messages = f"{root}/raw/telegram_messages"
    listed = list(store.keys(messages))
    expected = sorted(f"{root}/{k}" for k in LAKE_KEYS if k.startswith("raw/telegram_messages"))
    assert listed == expected
    # a sensor's cursor: what came after the last key it saw, present or not
    assert list(store.keys(messages, start_after=listed[1])) == expected[2:]
    absent = listed[2].removesuffix(".jsonl") + "5.jsonl"  # between listed[2] and [3]
    assert list(store.keys(messages, start_after=absent)) == expected[3:]
    assert list(store.keys(f"{root}/raw/telegram_media")) == [f"{root}/{LAKE_KEYS[-1]}"]


def test_a_swap_writes_only_over_the_version_it_read(store, root):
    key = f"{root}/state/marks/chemed.json"
    assert store.read_versioned(key) is None
    assert store.swap(key, b"1", None) is True
    assert store.swap(key, b"2", None) is False  # created meanwhile by someone else
    data, version = store.read_versioned(key)
    assert (data, version) == (b"1", version_of(b"1"))
    assert store.swap(key, b"2", version) is True
    assert store.swap(key, b"3", version) is False  # stale: it changed since it was read
    assert store.get(key) == b"2"


def test_racing_writers_of_one_key_make_one_winner(store, root):
    """Create-once and compare-and-swap under real concurrency: 4 threads per round."""
    for round_ in range(10):
        key = f"{root}/race/{round_}.jsonl"
        barrier = threading.Barrier(4)
        won: list[bytes] = []

        def write(body: bytes, key=key, barrier=barrier, won=won) -> None:
            barrier.wait()
            try:
                if store.put_once(key, body):
                    won.append(body)
            except AlreadyExists:
                pass

        threads = [threading.Thread(target=write, args=(f"{i}".encode(),)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1 and store.get(key) == won[0]

    mark = f"{root}/race/mark"
    store.swap(mark, b"0", None)

    def add_one() -> None:  # read, add one, swap; again when someone swapped first
        for _ in range(5):
            while True:
                data, version = store.read_versioned(mark)
                if store.swap(mark, str(int(data) + 1).encode(), version):
                    break

    threads = [threading.Thread(target=add_one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get(mark) == b"10"  # no increment lost


@pytest.mark.parametrize(
    "key", ["a//b", "/a", "a/", "a\\b", "a/../b", "a/./b", "a b", ""]
)  # fmt: skip
def test_a_key_of_another_shape_is_refused_before_any_write(key, tmp_path):
    with pytest.raises(ValueError, match="is not a lake key"):
        check_key(key)
    with pytest.raises(ValueError, match="is not a lake key"):
        FolderStore(tmp_path).put_once(key, b"x")
    assert not any(tmp_path.iterdir())


def test_the_s3_store_outlasts_a_restart_of_its_server(s3_server):
    """The server killed (-9) and started again on its folder: what was written is
    there, and a write sent while it was down lands once it is back."""
    store = S3Store(s3_server.url, s3_server.bucket, s3_server.access_key, s3_server.secret_key)
    root = f"t{uuid.uuid4().hex}"
    for n in range(20):
        store.put_once(f"{root}/before/{n:03}.jsonl", f"{n}".encode())
    s3_server.kill()
    writer = threading.Thread(target=store.put_once, args=(f"{root}/during.jsonl", b"late"))
    writer.start()  # retried until the server answers again
    s3_server.start()
    writer.join()
    assert [store.get(f"{root}/before/{n:03}.jsonl") for n in range(20)] == [
        f"{n}".encode() for n in range(20)
    ]
    assert store.get(f"{root}/during.jsonl") == b"late"


def test_wrong_credentials_are_refused(s3_server):
    store = S3Store(s3_server.url, s3_server.bucket, s3_server.access_key, "wrong", retries=0)
    with pytest.raises(PermissionDeniedError):
        store.put_once(f"t{uuid.uuid4().hex}/x.jsonl", b"x")
