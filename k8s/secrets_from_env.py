"""Writes an overlay's Secrets from a `.env` file: one small env file per Secret under
k8s/overlays/<overlay>/secrets/ (ignored by git, mode 600), which the overlay's
secretGenerator turns into Secrets. Each Secret holds only what its users need:

    tgmed-postgres     POSTGRES_PASSWORD, WAREHOUSE_DB_PASSWORD, DAGSTER_DB_PASSWORD,
                       API_DB_PASSWORD             the StatefulSet's first start only
    tgmed-dagster-pg   postgresql-password          Dagster (webserver, daemon, code
                                                    location, run workers)
    tgmed-database     DATABASE_URL                 the load and transform stages
    tgmed-api          API_DATABASE_URL             the API (the read-only role)
    tgmed-telegram     TELEGRAM_API_ID/_HASH/_SESSION  the scrape stage
    tgmed-alerts       ALERT_WEBHOOK_URL, ALERT_TELEGRAM_*  the code location (sensors)
    tgmed-ui-login     auth: PROXY_USER and the SHA-512 crypt hash of PROXY_PASSWORD
                       (production: the Ingress's basic authentication in front of the
                       Dagster UI; `openssl passwd -6`, the password never written)
    tgmed-proxy        PROXY_USER, PROXY_PASSWORD  (local: the proxy in front of the UI,
                                                    which hashes it at start, as in compose)

    python3 k8s/secrets_from_env.py local|production [--env-file .env] [--external-postgres]

URLs are built for the in-cluster server (host `postgres`, roles tgmed, dagster and
API_DB_USER) from the passwords, unless DATABASE_URL / API_DATABASE_URL are set in the
file. With --external-postgres the server's own passwords are not needed. A missing
password fails naming the variable; no value is ever printed. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (comments, blank lines and `export ` skipped; quotes removed)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        if "=" not in line:
            raise SystemExit(f"{path}:{number}: not KEY=VALUE; fix or remove the line")
        key, value = (part.strip() for part in line.split("=", 1))
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def url(user: str, password: str, database: str) -> str:
    return (
        f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@postgres:5432/{database}"
    )


def secrets_for(env: dict[str, str], external_postgres: bool) -> dict[str, dict[str, str]]:
    missing: list[str] = []

    def need(name: str) -> str:
        value = env.get(name, "")
        if not value:
            missing.append(name)
        return value

    api_user = env.get("API_DB_USER") or "tgmed_api"
    database_url = env.get("DATABASE_URL") or url("tgmed", need("WAREHOUSE_DB_PASSWORD"), "tgmed")
    api_url = env.get("API_DATABASE_URL") or url(api_user, need("API_DB_PASSWORD"), "tgmed")
    secrets = {
        "dagster-pg": {"postgresql-password": need("DAGSTER_DB_PASSWORD")},
        "database": {"DATABASE_URL": database_url},
        "api": {"API_DATABASE_URL": api_url},
        "telegram": {
            name: env.get(name, "")
            for name in ("TELEGRAM_API_ID", "TELEGRAM_API_HASH", "TELEGRAM_SESSION")
        },
        "alerts": {
            name: env.get(name, "")
            for name in ("ALERT_WEBHOOK_URL", "ALERT_TELEGRAM_BOT_TOKEN", "ALERT_TELEGRAM_CHAT_ID")
        },
        "postgres": {},
    }
    if not external_postgres:
        secrets["postgres"] = {
            name: need(name)
            for name in (
                "POSTGRES_PASSWORD",
                "WAREHOUSE_DB_PASSWORD",
                "DAGSTER_DB_PASSWORD",
                "API_DB_PASSWORD",
            )
        }
    if missing:
        names = ", ".join(sorted(set(missing)))
        raise SystemExit(
            f"missing in the env file: {names} (set them: passwords have no defaults;"
            " e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
        )
    for values in secrets.values():
        for key, value in values.items():
            if "\n" in value:
                raise SystemExit(f"{key}: a value on several lines cannot go into an env file")
    return secrets


def proxy_login(env: dict[str, str]) -> dict[str, str]:
    """The UI's login as given (the local overlay's proxy hashes the password at start)."""
    user, password = env.get("PROXY_USER", ""), env.get("PROXY_PASSWORD", "")
    if not user or not password:
        raise SystemExit("missing in the env file: PROXY_USER, PROXY_PASSWORD (the UI's login)")
    if ":" in user or not user.isprintable():
        raise SystemExit("PROXY_USER: printable characters, no ':'")
    if "\n" in password:
        raise SystemExit("PROXY_PASSWORD: a value on several lines cannot go into an env file")
    return {"PROXY_USER": user, "PROXY_PASSWORD": password}


def ui_login(env: dict[str, str]) -> dict[str, str]:
    """The htpasswd line of the Ingress's basic authentication (ingress-nginx reads the
    Secret's key `auth`)."""
    login = proxy_login(env)
    user, password = login["PROXY_USER"], login["PROXY_PASSWORD"]
    done = subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"],
        input=password,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit("openssl passwd -6 failed (is openssl installed?)")
    return {"auth": f"{user}:{done.stdout.strip()}"}


def write(folder: Path, secrets: dict[str, dict[str, str]]) -> None:
    folder.mkdir(mode=0o700, exist_ok=True)
    for name, values in secrets.items():
        target = folder / f"{name}.env"
        temporary = folder / f".{name}.env.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.writelines(f"{key}={value}\n" for key, value in values.items())
        temporary.replace(target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overlay", help="an overlay under k8s/overlays (local, production)")
    parser.add_argument("--env-file", type=Path, default=Path(".env"))
    parser.add_argument(
        "--external-postgres",
        action="store_true",
        help="PostgreSQL outside the cluster: DATABASE_URL and API_DATABASE_URL given, "
        "no server passwords",
    )
    parser.add_argument("--root", type=Path, default=HERE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    overlay = args.root / "overlays" / args.overlay
    if not (overlay / "kustomization.yaml").is_file():
        raise SystemExit(f"no overlay {args.overlay!r} under {args.root / 'overlays'}")
    if not args.env_file.is_file():
        raise SystemExit(f"{args.env_file}: no such file (copy .env.example and fill it in)")
    env = read_env_file(args.env_file)
    secrets = secrets_for(env, args.external_postgres)
    # the UI's login, in the form the overlay's kustomization asks for: an htpasswd line
    # for an Ingress's basic authentication (production), or as given for a proxy of our
    # own that hashes it at start (local)
    kustomization = (overlay / "kustomization.yaml").read_text()
    for name, make in (("ui-login", ui_login), ("proxy", proxy_login)):
        if f"secrets/{name}.env" in kustomization:
            secrets[name] = make(env)
    write(overlay / "secrets", secrets)
    print(f"wrote {len(secrets)} secret files to {overlay / 'secrets'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
