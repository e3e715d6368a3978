"""The API attacked from outside, as a stranger would: no key, a malformed key, a wrong
key, a revoked key, a key of another scope, too many requests, oversized bodies, huge
pages, long ranges, a cross-site sign-in. Every route is enumerated from the app itself
(the OpenAPI schema and the mounted pages), so a route added later cannot slip through
unguarded. Real uvicorn, real PostgreSQL, keys made by `tgmed-loader keys`."""

from __future__ import annotations

import io
import json
import logging
from contextlib import redirect_stdout

import httpx
import psycopg
import pytest

from tgmed_api.access import RateLimiter
from tgmed_api.main import create_app
from tgmed_devdb.server import with_user
from tgmed_loader.cli import main as loader

OPEN = {"/health", "/ready"}
WELL_SHAPED_UNKNOWN = "tgmed_0123456789ab_" + "A" * 43


def _example(parameter: dict, channel: str) -> str | None:
    name = parameter["name"]
    if name == "channel_username":
        return channel
    if name == "product":
        return "paracetamol"
    if name == "query":
        return "birr"
    return None


def operations(app, channel: str) -> list[tuple[str, str, dict]]:
    """(method, url, query) for every operation of the schema, its required parameters
    given a value that answers 200 with a good key."""
    found = []
    for path, methods in app.openapi()["paths"].items():
        for method, operation in methods.items():
            url, query = path, {}
            for parameter in operation.get("parameters", []):
                value = _example(parameter, channel)
                if parameter["in"] == "path":
                    url = url.replace("{" + parameter["name"] + "}", value)
                elif parameter.get("required"):
                    query[parameter["name"]] = value
            found.append((method.upper(), url, query))
    return found


def leaf_routes(routes) -> list:
    """Routes and mounts, through included routers (FastAPI 0.165 keeps an included
    router as one entry; its routes carry their full paths: no prefix is added here)."""
    found = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        found.extend(leaf_routes(inner.routes) if inner is not None else [route])
    return found


def pages(app) -> list[str]:
    """Every GET path outside the schema: pages, docs, static mounts (a folder each)."""
    in_schema = set(app.openapi()["paths"])
    paths = set()
    for route in leaf_routes(app.routes):
        path = getattr(route, "path", "")
        if type(route).__name__ == "Mount":
            paths.add(f"{path}/")
        elif "{" not in path and path not in in_schema and "GET" in route.methods:
            paths.add(path)
    return sorted(paths - {"/signin"})


@pytest.fixture(scope="module")
def served(api_warehouse, api_settings, thread_server):
    """An app that re-reads keys on every request (a revocation is seen at once) and
    allows 5 requests per key per 10 s (six requests take far less, on any machine);
    its log lines collected."""
    settings = api_settings.model_copy(
        update={"key_cache_seconds": 0, "rate_limit": 5, "rate_window_seconds": 10}
    )
    app = create_app(settings)
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(level=logging.DEBUG)
    logging.getLogger().addHandler(handler)
    logging.getLogger("tgmed.api.access").setLevel(logging.INFO)
    with thread_server(app) as server:
        yield {"app": app, "url": server.url, "owner": api_warehouse["url"], "logs": records}
    logging.getLogger().removeHandler(handler)


def keys_cli(owner_url: str, monkeypatch, *argv: str) -> tuple[str, dict]:
    """`tgmed-loader keys ...` in-process: (first stdout line, the JSON summary)."""
    monkeypatch.setenv("DATABASE_URL", owner_url)
    out = io.StringIO()
    with redirect_stdout(out):
        code = loader(["keys", *argv])
    lines = out.getvalue().strip().splitlines()
    summary = json.loads(lines[-1])
    summary["exit_code"] = code
    return lines[0], summary


@pytest.fixture(scope="module")
def keys(served):
    made = {}
    with pytest.MonkeyPatch.context() as patch:
        for scope in ("reports", "posts", "all"):
            key, summary = keys_cli(
                served["owner"],
                patch,
                "create",
                f"sec-{scope}",
                "--scope",
                scope,
                "--rate-limit",
                "100000",  # these keys are not the ones the budget tests spend
            )
            assert summary["exit_code"] == 0 and summary["created"]["scope"] == scope
            made[scope] = key
    return made


def secret_of(key: str) -> str:
    """The secret part of `tgmed_<id>_<secret>`; the secret itself may hold `_`."""
    return key.split("_", 2)[2]


def get(served, method: str, url: str, query: dict, **headers: str) -> httpx.Response:
    return httpx.request(method, served["url"] + url, params=query, headers=headers, timeout=60)


def test_every_route_but_health_and_readiness_needs_a_valid_key(served, keys, api_warehouse):
    channel = next(iter(api_warehouse["truth"]["channels"]))
    routes = operations(served["app"], channel)
    assert len(routes) >= 12, routes  # the enumeration found the API, not an empty schema
    for method, url, query in routes:
        if url in OPEN:
            assert get(served, method, url, query).status_code == 200, url
            continue
        for headers in (
            {},
            {"Authorization": "Bearer not-a-key"},
            {"X-API-Key": WELL_SHAPED_UNKNOWN},
            {"Authorization": f"Bearer {keys['all'][:-1]}x"},  # a right id, a wrong secret
            {"Cookie": f"tgmed_key={WELL_SHAPED_UNKNOWN}"},
        ):
            answer = get(served, method, url, query, **headers)
            assert answer.status_code == 401, (url, headers, answer.text)
            assert answer.headers["www-authenticate"].startswith("Bearer")
        good = get(served, method, url, query, Authorization=f"Bearer {keys['all']}")
        assert good.status_code == 200, (url, good.text)


def test_pages_outside_the_schema_need_a_key_too(served, keys):
    listed = pages(served["app"])
    assert {"/", "/docs", "/redoc", "/openapi.json", "/dashboard/", "/dbt-docs/"} <= set(listed)
    for path in listed:
        assert get(served, "GET", path, {}).status_code == 401, path
        browser = get(served, "GET", path, {}, Accept="text/html")
        assert browser.status_code == 303 and browser.headers["location"].startswith(
            "/signin?next="
        ), path
    assert get(served, "GET", "/docs", {}, **{"X-API-Key": keys["posts"]}).status_code == 200


def test_a_key_of_another_scope_is_refused(served, keys):
    search = ("GET", "/api/search/messages", {"query": "birr"})
    report = ("GET", "/api/reports/top-products", {})
    assert get(served, *search, **{"X-API-Key": keys["reports"]}).status_code == 403
    assert get(served, *report, **{"X-API-Key": keys["posts"]}).status_code == 403
    assert get(served, *search, **{"X-API-Key": keys["posts"]}).status_code == 200
    assert get(served, *report, **{"X-API-Key": keys["reports"]}).status_code == 200


def test_a_revoked_key_is_refused(served, monkeypatch):
    key, _ = keys_cli(served["owner"], monkeypatch, "create", "to-revoke", "--scope", "all")
    assert get(served, "GET", "/api/channels", {}, **{"X-API-Key": key}).status_code == 200
    _, summary = keys_cli(served["owner"], monkeypatch, "revoke", "to-revoke")
    assert summary["exit_code"] == 0 and summary["revoked"][0]["name"] == "to-revoke"
    assert get(served, "GET", "/api/channels", {}, **{"X-API-Key": key}).status_code == 401
    _, again = keys_cli(served["owner"], monkeypatch, "revoke", "to-revoke")
    assert again["exit_code"] == 2 and "no active key" in again["error"]


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    """The rate limiter's clock, stopped: a test moves it (clock[0] += s) instead of
    sleeping, so no window depends on how fast this machine answers."""
    now = [1_000.0]
    monkeypatch.setattr(RateLimiter, "clock", staticmethod(lambda: now[0]))
    return now


def test_the_n_plus_first_request_in_a_window_gets_429_and_the_key_recovers(
    served, monkeypatch, clock
):
    key, _ = keys_cli(served["owner"], monkeypatch, "create", "budget", "--scope", "reports")
    other, _ = keys_cli(served["owner"], monkeypatch, "create", "other", "--scope", "reports")
    answers = [get(served, "GET", "/api/channels", {}, **{"X-API-Key": key}) for _ in range(6)]
    assert [a.status_code for a in answers[:5]] == [200] * 5
    refused = answers[5]
    assert refused.status_code == 429, refused.text
    assert refused.headers["retry-after"] == "10"  # the whole window: the clock stands still
    # one key's budget is its own
    assert get(served, "GET", "/api/channels", {}, **{"X-API-Key": other}).status_code == 200
    clock[0] += 9.5
    refused = get(served, "GET", "/api/channels", {}, **{"X-API-Key": key})
    assert (refused.status_code, refused.headers["retry-after"]) == (429, "1")
    clock[0] += 0.5  # the window is over
    assert get(served, "GET", "/api/channels", {}, **{"X-API-Key": key}).status_code == 200


def test_a_key_with_its_own_limit(served, monkeypatch, clock):
    key, summary = keys_cli(
        served["owner"], monkeypatch, "create", "slow", "--scope", "all", "--rate-limit", "2"
    )
    assert summary["created"]["rate_limit"] == 2
    codes = [get(served, "GET", "/health", {}).status_code]  # open: not counted
    codes += [
        get(served, "GET", "/api/channels", {}, **{"X-API-Key": key}).status_code for _ in range(3)
    ]
    assert codes == [200, 200, 200, 429]


def test_oversized_bodies_huge_pages_and_long_ranges_are_refused(served, keys):
    key = {"X-API-Key": keys["all"]}
    big = httpx.post(served["url"] + "/signin", content=b"key=" + b"a" * 20_000, timeout=30)
    assert big.status_code == 413
    chunked = httpx.post(
        served["url"] + "/api/channels", content=iter([b"x" * 100]), headers=key, timeout=30
    )
    assert chunked.status_code == 411
    for url, query in (
        ("/api/reports/top-products", {"limit": 100_000}),
        ("/api/search/messages", {"query": "birr", "limit": 10_000}),
        ("/api/search/messages", {"query": "birr", "offset": 10_000_000}),
        ("/api/reports/top-products", {"from": "2025-01-01", "to": "2025-12-31"}),
    ):
        answer = get(served, "GET", url, query, **key)
        assert answer.status_code == 422, (url, query, answer.text)
    assert "API_MAX_RANGE_DAYS" in answer.json()["detail"]
    half_year = {"from": "2026-06-01", "to": "2026-11-30"}
    assert get(served, "GET", "/api/reports/top-products", half_year, **key).status_code == 200


def test_signing_in_sets_a_safe_cookie_and_refuses_another_site(served, keys):
    url = served["url"]
    with httpx.Client(base_url=url, timeout=30) as browser:
        wrong = browser.post("/signin", data={"key": WELL_SHAPED_UNKNOWN})
        assert wrong.status_code == 401 and "tgmed_key" not in wrong.headers.get("set-cookie", "")
        forged = browser.post(
            "/signin", data={"key": keys["reports"]}, headers={"Origin": "http://evil.example"}
        )
        assert forged.status_code == 403 and not forged.headers.get("set-cookie")
        away = browser.post("/signin", data={"key": keys["reports"], "next": "//evil.example/x"})
        assert away.status_code == 303 and away.headers["location"] == "/dashboard/"
        cookie = away.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
        assert browser.get("/api/channels").status_code == 200  # the cookie admits it
        out = browser.post("/signout")
        assert out.status_code == 303
        browser.cookies.clear()
        assert browser.get("/api/channels").status_code == 401
    behind_tls = httpx.post(
        url + "/signin",
        data={"key": keys["reports"]},
        headers={"X-Forwarded-Proto": "https"},
        timeout=30,
    )
    assert "secure" in behind_tls.headers["set-cookie"].lower()


def test_keys_are_stored_hashed_and_the_api_role_cannot_write_them(served, keys, monkeypatch):
    _, listing = keys_cli(served["owner"], monkeypatch, "list")
    listed = json.dumps(listing)
    assert {"sec-reports", "sec-posts", "sec-all"} <= {k["name"] for k in listing["keys"]}
    with psycopg.connect(served["owner"]) as conn:
        stored = json.dumps(conn.execute("select * from auth.api_keys").fetchall(), default=str)
    for key in keys.values():
        secret = secret_of(key)
        assert secret not in stored and secret not in listed
    with (
        psycopg.connect(with_user(served["owner"], "tgmed_api")) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(
            "insert into auth.api_keys (key_id, name, scope, secret_hash)"
            " values ('aaaaaaaaaaaa', 'mine', 'all', 'x')"
        )


def test_no_response_or_log_line_carries_a_key_or_a_password(served, keys):
    """Run last in this module: everything above wrote to the log."""
    answers = [
        get(served, "GET", "/api/channels", {}, **{"X-API-Key": keys["all"]}),
        get(
            served, "GET", "/api/search/messages", {"query": "x"}, **{"X-API-Key": keys["reports"]}
        ),
        get(served, "GET", "/api/channels", {}, **{"X-API-Key": keys["all"][:-2] + "zz"}),
    ]
    password = psycopg.conninfo.conninfo_to_dict(served["owner"]).get("password")
    lines = [record.getMessage() for record in served["logs"]]
    access = [line for line in lines if " key=" in line]
    assert any("key=sec-all(" in line for line in access), access[-5:]
    for text in [*lines, *(a.text for a in answers), *(str(a.headers) for a in answers)]:
        for key in keys.values():
            assert key not in text and secret_of(key) not in text
        if password:
            assert password not in text
