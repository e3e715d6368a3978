"""The Pipes clients' workarounds, in one place. The clients raise on a non-zero exit, and
a stage's messages would be lost with the client: a recording message reader keeps the
handler (what the stage said before it ended). Docker and Kubernetes modes read the exit
code from the engine (the container's or pod's state); the subprocess client reports it
only in its error's text, where local mode reads it."""

from __future__ import annotations

import contextlib
import json
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dagster import PipesMessageReader
from dagster_pipes import PipesDefaultMessageWriter


class Recording:
    """Mixed into a Pipes message reader: keeps the message handler, so what the stage
    reported is still there when the client raises for a non-zero exit."""

    handler: Any = None

    @contextlib.contextmanager
    def read_messages(self, handler: Any) -> Iterator[Any]:
        self.handler = handler
        with super().read_messages(handler) as params:  # type: ignore[misc]
            yield params


def whole_lines(path: str, finished: threading.Event, poll: float = 0.01) -> Iterator[str]:
    """The lines appended to `path` until `finished` is set and everything is read, each
    only once it is whole. A writer's line may be read half-written (a dbt event of
    several KB, under load); Dagster's file reader decodes whatever `readline` gives,
    fails on such a half, and its thread ends: every later message of the stage, its
    outcome included, was lost (seen once in CI: dbt's step then missed 100 outputs)."""
    pending = ""
    with Path(path).open(encoding="utf-8") as stream:
        while True:
            part = stream.readline()
            if part:
                pending += part
                if pending.endswith("\n"):
                    yield pending
                    pending = ""
            elif finished.is_set():
                if pending:  # the writer ended mid-line (killed): what there is
                    yield pending
                return
            else:
                time.sleep(poll)


class WholeLineTempFileReader(PipesMessageReader):
    """The stage's dagster-pipes writes one JSON message a line to a temporary file (as
    with Dagster's PipesTempFileMessageReader); this reader hands on whole lines only
    (`whole_lines`), and a line it cannot decode is reported and skipped, not the end of
    every later message."""

    @contextlib.contextmanager
    def read_messages(self, handler: Any) -> Iterator[Any]:
        finished = threading.Event()
        with tempfile.TemporaryDirectory(prefix="tgmed-pipes-") as folder:
            path = str(Path(folder) / "messages")
            Path(path).touch()
            reader = threading.Thread(target=self._read, args=(path, handler, finished))
            reader.daemon = True
            reader.start()
            try:
                yield {
                    PipesDefaultMessageWriter.FILE_PATH_KEY: path,
                    PipesDefaultMessageWriter.INCLUDE_STDIO_IN_MESSAGES_KEY: False,
                }
            finally:
                finished.set()
                reader.join()

    @staticmethod
    def _read(path: str, handler: Any, finished: threading.Event) -> None:
        for line in whole_lines(path, finished):
            try:
                message = json.loads(line)
            except ValueError:
                handler.report_pipes_framework_exception(
                    "tgmed's Pipes file reader: an undecodable line", sys.exc_info()
                )
                continue
            handler.handle_message(message)

    def no_messages_debug_text(self) -> str:
        return "Attempted to read messages from a local temporary file."


class WholeLineFileReader(Recording, WholeLineTempFileReader):
    """Local mode's message reader: whole lines, recording (as docker's and k8s' readers)."""


EXIT_CODE = re.compile(r"failed with code (-?\d+)")


def exit_code_from(error: BaseException) -> int | None:
    """The exit code PipesSubprocessClient puts in its error text, the only place it
    reports it ('failed with code N')."""
    found = EXIT_CODE.findall(str(error))
    return int(found[-1]) if found else None


def recording_docker_client() -> tuple[Any, Any]:
    """(reader, client) of dagster-docker's Pipes client, recording. The client stops the
    container it created but leaves it (prune removes it), so the engine still knows how
    it ended (its exit code, OOMKilled) after a failure."""
    from dagster_docker import PipesDockerClient, PipesDockerLogsMessageReader

    class RecordingDockerReader(Recording, PipesDockerLogsMessageReader):
        pass

    # no env, no registry, no volumes of the run launcher: the client passes only what
    # it is given (unlike execute_docker_container)
    reader = RecordingDockerReader()
    return reader, PipesDockerClient(message_reader=reader)


def recording_pod_logs_reader() -> Any:
    """dagster-k8s's pod log reader, recording; `pod_seen`: the client saw the pod ready
    and began reading its logs (it existed, whatever happened to it later)."""
    from dagster_k8s import PipesK8sPodLogsMessageReader

    class RecordingPodLogsReader(Recording, PipesK8sPodLogsMessageReader):
        pod_seen = False

        def consume_pod_logs(self, *args: Any, **kwargs: Any) -> Any:
            self.pod_seen = True
            return super().consume_pod_logs(*args, **kwargs)

    return RecordingPodLogsReader()
