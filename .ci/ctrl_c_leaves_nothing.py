"""Ctrl-C (or SIGTERM, or SIGHUP) on a long-running command leaves no process it started.

    python .ci/ctrl_c_leaves_nothing.py [--signal INT|TERM|HUP] (--url URL ... | --log-line REGEX)
        [--while-up SHELL] -- COMMAND ...

Starts COMMAND in a session of its own (as a terminal would: one foreground process
group), waits until every URL answers, or a line of its output matches --log-line (or
COMMAND ends: a failure), runs the --while-up checks (their failure fails this), sends
the signal to the process group (SIGINT: what Ctrl-C does; SIGTERM: a service manager
or a CI timeout; SIGHUP: a closed terminal), and waits for COMMAND to end. Then it looks for what
is left: any process of COMMAND's session (a child that moved to a process group of its
own is still in the session), any new process whose working folder is inside this
checkout, and the embedded PostgreSQL of data/pg (postmaster.pid). Exit code 0 when
nothing is left; otherwise it lists what is and exits 1. COMMAND's output goes to a log
whose last lines are printed either way.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def processes() -> dict[int, dict]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            try:
                cwd = str((entry / "cwd").readlink())
            except OSError:
                cwd = ""
        except OSError:
            continue
        if fields[0] == "Z":
            continue  # a zombie has ended; its parent reaps it
        found[int(entry.name)] = {"sid": int(fields[3]), "cmd": cmdline.strip()[:160], "cwd": cwd}
    return found


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (our own URLs)
            return response.status < 500
    except OSError:
        return False


def postmaster(pgdata: Path) -> int | None:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def default_signals() -> None:
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", action="append", default=[], help="answers when ready")
    parser.add_argument("--log-line", help="a regex: signal once a line of the output matches")
    parser.add_argument("--signal", default="INT", choices=["INT", "TERM", "HUP"])
    parser.add_argument("--while-up", action="append", default=[], help="a check while up")
    parser.add_argument("--log", type=Path, default=ROOT / "data" / "logs" / "ctrl-c-check.log")
    parser.add_argument("--pgdata", type=Path, default=ROOT / "data" / "pg")
    argv = sys.argv[1:]
    split = argv.index("--")
    args = parser.parse_args(argv[:split])
    command = argv[split + 1 :]
    if not args.url and not args.log_line:
        parser.error("--url or --log-line: when to send the signal")
    before = set(processes())
    db_before = postmaster(args.pgdata)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    with args.log.open("w") as log:
        # the signals at their defaults in COMMAND, as in a terminal: started under nohup
        # (or by a CI runner that ignores them), it would inherit them ignored, and a
        # shell cannot trap a signal ignored at its start
        child = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=default_signals,  # no threads in this process
        )
    waited_for = ", ".join(args.url) or f"a line matching {args.log_line!r}"
    print(f"started {' '.join(command)} (session {child.pid}); waiting for {waited_for}")
    started = time.monotonic()

    def ready() -> bool:
        if args.log_line:
            return any(re.search(args.log_line, line) for line in args.log.read_text().splitlines())
        return all(answers(url) for url in args.url)

    while not ready():
        if child.poll() is not None:
            print(f"it ended ({child.returncode}) before answering; the end of {args.log}:")
            print("\n".join(args.log.read_text().splitlines()[-30:]))
            return 1
        time.sleep(1)
    print(f"answering after {time.monotonic() - started:.0f} s")
    failed = [check for check in args.while_up if subprocess.call(check, shell=True) != 0]  # noqa: S602
    number = getattr(signal, f"SIG{args.signal}")
    print(f"SIG{args.signal} to its process group" + (" (Ctrl-C)" if args.signal == "INT" else ""))
    os.killpg(child.pid, number)
    try:
        code = child.wait(timeout=180)
    except subprocess.TimeoutExpired:
        print(f"it did not end within 180 s of SIG{args.signal}")
        os.killpg(child.pid, signal.SIGKILL)
        return 1
    lines = args.log.read_text().splitlines()
    print(f"it ended with {code}; its last lines:")
    print("\n".join("  | " + line for line in lines[-6:]))
    time.sleep(1)  # processes that are ending (a parent reaping them) leave /proc
    left = {
        pid: info
        for pid, info in processes().items()
        if pid not in before
        and pid != os.getpid()
        and (info["sid"] == child.pid or info["cwd"].startswith(str(ROOT)))
    }
    db = postmaster(args.pgdata)
    if db and db != db_before:
        left.setdefault(db, {"cmd": f"PostgreSQL of {args.pgdata}", "sid": 0, "cwd": ""})
    if left:
        print("left running:")
        for pid, info in sorted(left.items()):
            print(f"  {pid}  {info['cmd']}  (cwd {info['cwd']})")
        return 1
    print("nothing it started is left running")
    if failed:
        print(f"failed while it was up: {failed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
