"""The Pipes clients' workarounds, in one place. The clients raise on a non-zero exit and
report the exit code only in their error's text, and a stage's messages would be lost with
the client: a recording message reader keeps the handler (what the stage said before it
ended), and the exit code is read from the error text."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from dagster import PipesTempFileMessageReader


class Recording:
    """Mixed into a Pipes message reader: keeps the message handler, so what the stage
    reported is still there when the client raises for a non-zero exit."""

    handler: Any = None

    @contextlib.contextmanager
    def read_messages(self, handler: Any) -> Iterator[Any]:
        self.handler = handler
        with super().read_messages(handler) as params:  # type: ignore[misc]
            yield params


class RecordingTempFileReader(Recording, PipesTempFileMessageReader):
    pass


EXIT_CODE = re.compile(r"(?:code|StatusCode'?:?)\s*:?\s*(-?\d+)")


def exit_code_from(error: BaseException) -> int | None:
    """The exit code the Pipes clients put in their error text (the only place they
    report it: 'failed with code N', "{'StatusCode': N}")."""
    found = EXIT_CODE.findall(str(error))
    return int(found[-1]) if found else None


def recording_docker_client() -> tuple[Any, Any]:
    """(reader, client) of dagster-docker's Pipes client, recording; the client keeps the
    container it created: it stops it but leaves it (prune removes it), so its state
    (OOMKilled) can be read after a failure."""
    from dagster_docker import PipesDockerClient, PipesDockerLogsMessageReader

    class RecordingDockerReader(Recording, PipesDockerLogsMessageReader):
        pass

    class RecordingDockerClient(PipesDockerClient):
        container: Any = None

        def _create_container(self, *args: Any, **kwargs: Any) -> Any:
            self.container = super()._create_container(*args, **kwargs)
            return self.container

    # no env, no registry, no volumes of the run launcher: the client passes only what
    # it is given (unlike execute_docker_container)
    reader = RecordingDockerReader()
    return reader, RecordingDockerClient(message_reader=reader)


def recording_pod_logs_reader() -> Any:
    """dagster-k8s's pod log reader, recording."""
    from dagster_k8s import PipesK8sPodLogsMessageReader

    class RecordingPodLogsReader(Recording, PipesK8sPodLogsMessageReader):
        pass

    return RecordingPodLogsReader()
