"""`tgmed-api serve`: the analytical API with uvicorn.

Reads API_DATABASE_URL (the read-only role's URL), API_HOST (default 127.0.0.1) and
API_PORT (default 8000). Logs on stderr; exit code 2 for a configuration error.
"""

from __future__ import annotations

import argparse
import sys

from tgmed_api.config import ApiSettings
from tgmed_common.logs import configure_logging
from tgmed_common.settings import load_settings, secret_values
from tgmed_common.stage import run_stage


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="tgmed-api", description=__doc__.split("\n\n")[0])
    root.add_argument("--log-level", default=None, help="default API_LOG_LEVEL (INFO)")
    commands = root.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve the API (uvicorn) until stopped",
        description="OpenAPI docs at /docs. API_HOST and API_PORT say where to listen.",
    )
    serve.add_argument("--host", help="default API_HOST")
    serve.add_argument("--port", type=int, help="default API_PORT")
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    return root


def _serve(args: argparse.Namespace) -> dict:
    import uvicorn

    settings = load_settings(ApiSettings)
    level = args.log_level or settings.log_level
    configure_logging(level, secret_values(settings))
    host, port = args.host or settings.host, args.port or settings.port
    uvicorn.run(
        "tgmed_api.main:app_from_env",
        factory=True,  # each worker process builds its app (and pool) from the environment
        host=host,
        port=port,
        workers=args.workers,
        log_config=None,  # our handler (redacting) on the root logger
        log_level=level.lower(),
        access_log=False,
        server_header=False,
    )
    return {"stage": "serve", "host": host, "port": port, "workers": args.workers}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(args.log_level or "INFO")
    return run_stage("serve", lambda: _serve(args))


if __name__ == "__main__":
    sys.exit(main())
