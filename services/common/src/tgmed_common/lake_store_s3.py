"""The lake store's S3 backend (see tgmed_common.lake_store for the contract), through
obstore: the `s3` extra of tgmed-common (docs/object-storage.md says why this client)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import obstore
from obstore.exceptions import AlreadyExistsError, PreconditionError
from obstore.store import S3Store as ObjectStore

from tgmed_common.lake_store import AlreadyExists, check_key


class S3Store:
    """The lake in an S3 bucket, through obstore (docs/object-storage.md says why)."""

    def __init__(
        self,
        url: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        *,
        region: str = "us-east-1",
        retries: int = 20,
    ) -> None:
        self.name = f"s3://{bucket} at {url}"
        # credentials given, never taken from AWS_* or an instance's metadata address;
        # retries outlast a server's restart (~2 s here: 10 ran out in one try of three)
        self._store = ObjectStore(
            bucket,
            endpoint=url,
            access_key_id=access_key,
            secret_access_key=secret_key,
            region=region,
            virtual_hosted_style_request=False,
            client_options={"allow_http": url.startswith("http://")},
            retry_config={"max_retries": retries, "retry_timeout": timedelta(seconds=120)},
        )

    def put_once(self, key: str, data: bytes) -> bool:
        try:
            obstore.put(self._store, check_key(key), data, mode="create")
        except AlreadyExistsError:
            # a retried PUT may meet its own first try, stored but not acknowledged
            if self.get(key) == data:
                return False
            raise AlreadyExists(self.name, key) from None
        return True

    def get(self, key: str) -> bytes:
        try:
            return bytes(obstore.get(self._store, check_key(key)).bytes())
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.name}: no {key}") from None

    def keys(self, folder: str, start_after: str = "") -> Iterator[str]:
        found = []
        stream = obstore.list(self._store, prefix=check_key(folder), offset=start_after or None)
        for batch in stream:
            found += [item["path"] for item in batch]
        # byte order whatever the server's (SeaweedFS lists by walking its folders: the
        # two agree on the lake's layout, where no folder name has a sibling that extends
        # it with a character below '/'; docs/object-storage.md)
        after = start_after.encode()
        yield from (k for k in sorted(found, key=lambda k: k.encode()) if k.encode() > after)

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        try:
            result = obstore.get(self._store, check_key(key))
        except FileNotFoundError:
            return None
        return bytes(result.bytes()), str(result.meta["e_tag"]).strip('"')

    def swap(self, key: str, data: bytes, version: str | None) -> bool:
        mode = "create" if version is None else {"e_tag": f'"{version}"'}
        try:
            obstore.put(self._store, check_key(key), data, mode=mode)
        except (AlreadyExistsError, PreconditionError):
            return False
        return True

    def delete(self, key: str) -> None:
        obstore.delete(self._store, check_key(key))
