"""Test-only fault points: where a crash test stops the loader, named by progress, not
by time (a delay that lands mid-load on one machine lands after the load on a faster one).

With `TGMED_LOADER_PAUSE_AT="<point>:<lake-relative file>"`, the process that reaches
`<point>` while loading that file writes a note to `TGMED_LOADER_PAUSE_NOTE` (JSON: pid,
point, file) and stops itself (SIGSTOP), holding its database session exactly there, so
the test can look at the server and `kill -9` the loader at that point. Points:

- `in-copy`: every row of the file has been sent inside COPY and the COPY is not ended
  (the server shows an active `copy` statement);
- `before-commit`: the rows and the file's audit row are written, the transaction is
  not committed (the server shows the session idle in transaction).

Unset (always, outside tests) it costs one dictionary lookup per file.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

PAUSE_AT = "TGMED_LOADER_PAUSE_AT"
PAUSE_NOTE = "TGMED_LOADER_PAUSE_NOTE"
POINTS = ("in-copy", "before-commit")


def reached(point: str, file: str) -> None:
    """Called by the loader at each fault point; stops this process if a test asked."""
    wanted = os.environ.get(PAUSE_AT)
    if wanted is None or wanted != f"{point}:{file}":
        return
    note = Path(os.environ[PAUSE_NOTE])
    temp = note.with_name(note.name + ".tmp")
    temp.write_text(json.dumps({"pid": os.getpid(), "point": point, "file": file}))
    temp.replace(note)  # the test sees the whole note or none
    os.kill(os.getpid(), signal.SIGSTOP)
