"""An export's `result.json` read in bounded memory: the top-level object's small
fields whole, its `messages` array one message at a time.

`json.loads` of a whole export holds every message as Python dicts at once (about 8x
the file: a 227 MB export took 1.88 GB). Here the file is decoded in chunks and each
message is handed on as soon as it is complete, so what stays in memory is what the
caller keeps of each message (the importer: one record) and one chunk.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import Any, BinaryIO

CHUNK = 1 << 20
_DECODER = json.JSONDecoder()
_SPACE = " \t\n\r"


class ExportJSONError(ValueError):
    """Not a JSON object, or not valid JSON; says where (line and column)."""


class _Text:
    """A sliding window over the decoded text of a binary stream."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.buffer = ""
        self.position = 0  # in the buffer
        self.consumed_lines = 0  # newlines in the text dropped from the buffer
        self.consumed_line_start = 0  # characters since the last dropped newline
        self.eof = False

    def more(self) -> bool:
        """Read the next chunk; False at the end of the file."""
        if self.eof:
            return False
        data = self.stream.read(CHUNK)
        if not data:
            self.eof = True
            self.buffer += self.decoder.decode(b"", final=True)
            return False
        dropped = self.buffer[: self.position]
        newlines = dropped.count("\n")
        self.consumed_lines += newlines
        if newlines:
            self.consumed_line_start = len(dropped) - dropped.rfind("\n") - 1
        else:
            self.consumed_line_start += len(dropped)
        self.buffer = self.buffer[self.position :] + self.decoder.decode(data)
        self.position = 0
        return True

    def where(self) -> str:
        before = self.buffer[: self.position]
        line = self.consumed_lines + before.count("\n") + 1
        if "\n" in before:
            column = len(before) - before.rfind("\n")
        else:
            column = self.consumed_line_start + len(before) + 1
        return f"line {line}, column {column}"

    def fail(self, what: str) -> ExportJSONError:
        return ExportJSONError(f"not valid JSON ({self.where()}: {what})")

    def skip_space(self) -> None:
        while True:
            while self.position < len(self.buffer) and self.buffer[self.position] in _SPACE:
                self.position += 1
            if self.position < len(self.buffer) or not self.more():
                return

    def peek(self) -> str:
        self.skip_space()
        return self.buffer[self.position] if self.position < len(self.buffer) else ""

    def expect(self, character: str) -> None:
        if self.peek() != character:
            found = self.peek() or "the end of the file"
            raise self.fail(f"expected {character!r}, found {found!r}")
        self.position += 1

    def value(self) -> Any:
        """The next JSON value, read whole (more chunks as needed)."""
        self.skip_space()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buffer, self.position)
            except json.JSONDecodeError as error:
                if self.more():
                    continue
                self.position = error.pos
                raise self.fail(error.msg) from None
            # a number or literal that ends with the buffer may go on in the next chunk
            partial = end == len(self.buffer) and not isinstance(value, dict | list | str)
            if partial and self.more():
                continue
            self.position = end
            return value


def read_export(stream: BinaryIO) -> Iterator[tuple[str, Any]]:
    """(key, value) for each top-level field; for `messages` (an array), one
    ("message", item) per element instead, in order, then ("messages_end", count).
    Raises ExportJSONError for what is not a JSON object."""
    text = _Text(stream)
    text.expect("{")
    if text.peek() == "}":
        text.position += 1
        return
    while True:
        key = text.value()
        if not isinstance(key, str):
            raise text.fail("expected a field name")
        text.expect(":")
        if key == "messages" and text.peek() == "[":
            text.position += 1
            count = 0
            if text.peek() == "]":
                text.position += 1
            else:
                while True:
                    yield "message", text.value()
                    count += 1
                    if text.peek() == ",":
                        text.position += 1
                        continue
                    text.expect("]")
                    break
            yield "messages_end", count
        else:
            yield key, text.value()
        if text.peek() == ",":
            text.position += 1
            continue
        text.expect("}")
        break
    if text.peek():
        raise text.fail("extra data after the object")
