"""Warming the cache after a build: the dashboard's default views are requested through
the app itself (in process, no socket), so the first analyst after a pipeline run gets
cached answers. Which views are the defaults is the dashboard's own file
(dashboard/defaults.json), read by its script too."""

from __future__ import annotations

import json
import logging
import time

import httpx
from fastapi import FastAPI

from tgmed_api.access import WARM_HEADER
from tgmed_api.assets import DASHBOARD_DIR

log = logging.getLogger("tgmed.api.warm")


def default_paths(channels: list[str], product: str | None) -> list[str]:
    defaults = json.loads((DASHBOARD_DIR / "defaults.json").read_text(encoding="utf-8"))
    top, period = defaults["top_limit"], defaults["period"]
    # the same requests as dashboard/app.js makes on its first view (no filters)
    paths = [
        "/api/reports/top-products?limit=100",  # the product list
        f"/api/reports/top-products?limit={top}&source=text",
        f"/api/reports/top-products?limit={top}&source=image",
        f"/api/reports/visual-content?top={defaults['visual_top']}",
        f"/api/reports/subscribers?period={period}",
        f"/api/reports/engagement?period={period}",
        f"/api/reports/reactions?limit={defaults['reactions_top']}",
        "/api/reports/view-growth",
    ]
    for channel in channels:
        paths.append(f"/api/channels/{channel}/activity?period={period}")
        paths.append(f"/api/reports/top-products?limit=100&source=text&channel={channel}")
        paths.append(f"/api/reports/top-products?limit=100&source=image&channel={channel}")
    if product:
        paths.append(f"/api/reports/prices?product={product}")
        paths.append(f"/api/reports/prices/history?product={product}&period={period}")
    return paths


async def warm_default_views(app: FastAPI) -> int:
    """Request the default views; returns how many answered 200."""
    started = time.monotonic()
    transport = httpx.ASGITransport(app=app)
    warmed = 0
    try:
        # in process, past the key check: a token that never leaves this process
        headers = {WARM_HEADER: app.state.warm_token}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://warm", headers=headers
        ) as client:
            listed = await client.get("/api/channels")
            if listed.status_code != 200:
                return 0
            channels = [c["channel_username"] for c in listed.json()["data"]]
            top = await client.get("/api/reports/top-products", params={"limit": 1})
            items = top.json().get("data", []) if top.status_code == 200 else []
            product = items[0]["key"] if items else None
            for path in default_paths(channels, product):
                warmed += (await client.get(path)).status_code == 200
    except (httpx.HTTPError, OSError, ValueError) as error:
        log.warning("warming the cache stopped: %s", error)
    log.info("cache warmed: %d views in %.2fs", warmed, time.monotonic() - started)
    return warmed
