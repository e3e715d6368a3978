"""`tgmed-devdb start|stop|url|run`: the embedded PostgreSQL for development and the demo.

`start` prints `DATABASE_URL=...` for the warehouse database (created if missing), so
`eval "$(tgmed-devdb start)"` or the Makefile can pick it up.

`run -- COMMAND...` runs COMMAND with DATABASE_URL set and owns the server for as long
as it runs: a server this command started is stopped when COMMAND ends (Ctrl-C
included), one that was running before is left running and the last line says so and
how to stop it. With DATABASE_URL already set, COMMAND just runs (nothing to own).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from tgmed_devdb.server import create_database, running, start, stop, with_user


def run(command: list[str], pgdata: Path, database: str) -> int:
    """COMMAND in the foreground (the terminal's Ctrl-C reaches it, not only us); then
    the server stopped if this call started it."""
    if not command:
        print("tgmed-devdb run: no command given (tgmed-devdb run -- COMMAND ...)", file=sys.stderr)
        return 2
    if os.environ.get("DATABASE_URL"):
        return subprocess.call(command)
    was_running = running(pgdata)
    url = create_database(start(pgdata), database)
    interrupted = []
    # a handler, not SIG_IGN: handlers are reset for the child at exec, ignored signals
    # would be inherited; SIGINT comes from the terminal to the child itself
    signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
    child = subprocess.Popen(command, env={**os.environ, "DATABASE_URL": url})
    for forwarded in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(forwarded, lambda number, _: child.send_signal(number))
    code = child.wait()
    for restored in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(restored, signal.SIG_IGN)  # the stop below must not be cut short
    if was_running:
        print(
            f"PostgreSQL ({pgdata}) keeps running: it was running before this command "
            "(make db-stop stops it)",
            flush=True,
        )
    else:
        stop(pgdata)
        print(f"stopped the embedded PostgreSQL ({pgdata}) this command started", flush=True)
    if interrupted:
        return 0  # Ctrl-C: stopping was what the person asked for
    return 128 - code if code < 0 else code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tgmed-devdb",
        description=__doc__.split("\n\n")[0],
        epilog="run: tgmed-devdb run [--pgdata P] -- COMMAND ...",
    )
    parser.add_argument("command", choices=["start", "stop", "url", "run"])
    parser.add_argument(
        "--pgdata", type=Path, default=Path("data/pg"), help="server data folder (default: data/pg)"
    )
    parser.add_argument("--database", default="tgmed", help="warehouse database name")
    parser.add_argument(
        "--user", help="the URL for this role instead (e.g. the API's read-only tgmed_api)"
    )
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    if args.command == "run":
        return run(argv[split + 1 :], args.pgdata, args.database)
    if args.command == "stop":
        print("stopped" if stop(args.pgdata) else "not running")
        return 0
    url = create_database(start(args.pgdata), args.database)
    if args.user:
        url = with_user(url, args.user)
    print(f"DATABASE_URL={url}" if args.command == "start" else url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
