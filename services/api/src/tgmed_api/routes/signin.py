"""The dashboard's sign-in: a page where a person pastes an API key, and a cookie that
carries it afterwards (HttpOnly: no script reads it; SameSite=Strict: no other site's
page sends it; Secure when the request came over TLS, directly or through the proxy).
Every route the cookie opens only reads, and the sign-in form checks the Origin it
came from, so another site can neither use nor plant a session."""

from __future__ import annotations

import html
from typing import Annotated
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Header, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tgmed_api.access import COOKIE
from tgmed_api.routes.pages import SAME_ORIGIN_ONLY

router = APIRouter(include_in_schema=False)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tgmed: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}}
input{{width:100%;padding:.5rem;margin:.5rem 0;box-sizing:border-box}}
.error{{color:#b00020}}</style></head>
<body><h1>Sign in</h1>
<p>Paste an API key (an operator makes one with
<code>tgmed-loader keys create NAME --scope reports</code>).</p>
<p class="error" role="alert">{error}</p>
<form method="post" action="/signin">
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="off" required>
<input type="hidden" name="next" value="{next}">
<input type="submit" value="Sign in">
</form></body></html>"""


def _local(target: str | None) -> str:
    """Where to go after signing in: a path on this server, never another site."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/dashboard/"
    return target


def _page(error: str = "", target: str = "/dashboard/", status: int = 200) -> HTMLResponse:
    body = PAGE.format(error=html.escape(error), next=html.escape(_local(target), quote=True))
    return HTMLResponse(body, status, headers={**SAME_ORIGIN_ONLY, "Cache-Control": "no-store"})


def _over_tls(request: Request, forwarded_proto: str | None) -> bool:
    return request.url.scheme == "https" or (forwarded_proto or "").lower() == "https"


@router.get("/signin")
async def signin_page(next: str | None = None) -> HTMLResponse:
    return _page(target=next or "/dashboard/")


@router.post("/signin")
async def signin(
    request: Request,
    origin: Annotated[str | None, Header()] = None,
    x_forwarded_proto: Annotated[str | None, Header()] = None,
) -> Response:
    host = request.headers.get("host", "")
    if origin is not None and origin != "null" and urlsplit(origin).netloc != host:
        return _page("Sign in from this server's own page.", status=403)
    form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=10)
    key = (form.get("key") or [""])[0].strip()
    target = _local((form.get("next") or [None])[0])
    settings = request.app.state.settings
    found = await request.app.state.keys.verify(request.app.state.pool, key) if key else None
    if found is None:
        return _page("Unknown or revoked key.", target, status=401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        key,
        max_age=int(settings.session_hours * 3600),
        path="/",
        httponly=True,
        samesite="strict",
        secure=_over_tls(request, x_forwarded_proto),
    )
    return response


@router.post("/signout")
async def signout() -> Response:
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
