"""The Pipes clients' workarounds, in one place. The clients raise on a non-zero exit, and
a stage's messages would be lost with the client: a recording message reader keeps the
handler (what the stage said before it ended). Docker and Kubernetes modes read the exit
code from the engine (the container's or pod's state); the subprocess client reports it
only in its error's text, where local mode reads it."""

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
