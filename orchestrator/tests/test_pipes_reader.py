"""Local mode's Pipes message reader hands on whole lines only: a message the stage is
still writing (a dbt event of several KB, under load) is not decoded half-written, and
a line that cannot be decoded does not lose every message after it. Dagster's own file
reader did both (seen in CI: dbt's step lost its outcome and 100 outputs)."""

from __future__ import annotations

import sys
import threading
import time

from dagster import PipesSubprocessClient, job, op

from tgmed_orchestrator.launchers.pipes import WholeLineFileReader, whole_lines

# a stage that writes one large message in two halves with a pause between (what a
# reader sees when it reads while the write is under way), a line that is not JSON,
# then reports through dagster-pipes as a stage does
CHILD = r"""
import json, time
from dagster_pipes import (
    PIPES_PROTOCOL_VERSION, PIPES_PROTOCOL_VERSION_FIELD, PipesEnvVarParamsLoader,
    open_dagster_pipes,
)
with open_dagster_pipes() as pipes:
    path = PipesEnvVarParamsLoader().load_messages_params()["path"]
    big = {
        PIPES_PROTOCOL_VERSION_FIELD: PIPES_PROTOCOL_VERSION,
        "method": "report_custom_message",
        "params": {"payload": {"kind": "big", "text": "x" * 50_000}},
    }
    line = json.dumps(big) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line[:1000])
        f.flush()
        time.sleep(0.5)
        f.write(line[1000:])
        f.write("not json\n")
    pipes.report_custom_message({"kind": "after"})
"""


@op
def a_stage(context) -> list:
    reader = WholeLineFileReader()
    PipesSubprocessClient(message_reader=reader).run(
        context=context, command=[sys.executable, "-c", CHILD]
    )
    return list(reader.handler.get_custom_messages())


@job
def one_stage() -> None:
    a_stage()


def test_a_message_read_while_it_is_written_arrives_whole_and_later_ones_too():
    messages = one_stage.execute_in_process().output_for_node("a_stage")
    assert [m["kind"] for m in messages] == ["big", "after"]
    assert len(messages[0]["text"]) == 50_000


def test_whole_lines_waits_for_the_end_of_a_line(tmp_path):
    path = tmp_path / "messages"
    path.write_text("")
    finished = threading.Event()
    seen: list[str] = []
    thread = threading.Thread(target=lambda: seen.extend(whole_lines(str(path), finished)))
    thread.start()
    with path.open("a") as f:
        f.write('{"a": 1}\n{"b": ')
        f.flush()
        while not seen:  # the first line, then no half (pytest-timeout bounds a hang)
            time.sleep(0.01)
        assert seen == ['{"a": 1}\n']
        f.write("2}\n")
        f.write('{"c": 3')  # the writer killed mid-line: handed on as it is at the end
    finished.set()
    thread.join()
    assert seen == ['{"a": 1}\n', '{"b": 2}\n', '{"c": 3']
