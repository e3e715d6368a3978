"""`tgmed-devdb start|stop|url`: the embedded PostgreSQL for development and the demo.

`start` prints `DATABASE_URL=...` for the warehouse database (created if missing), so
`eval "$(tgmed-devdb start)"` or the Makefile can pick it up.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tgmed_devdb.server import create_database, start, stop, with_user


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tgmed-devdb", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["start", "stop", "url"])
    parser.add_argument(
        "--pgdata", type=Path, default=Path("data/pg"), help="server data folder (default: data/pg)"
    )
    parser.add_argument("--database", default="tgmed", help="warehouse database name")
    parser.add_argument(
        "--user", help="the URL for this role instead (e.g. the API's read-only tgmed_api)"
    )
    args = parser.parse_args(argv)
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
