"""What a browser opens: the dashboard, the API docs (Swagger UI, ReDoc) and the
warehouse's documentation (dbt docs). Every script and style comes from an installed
package (assets.py), never a CDN; the dbt docs page from the warehouse, where the
transform stage publishes it after each build."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, HTTPException, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from tgmed_api.assets import DASHBOARD_DIR, plotly_js, swagger_dir
from tgmed_api.db import fetch_one
from tgmed_api.deps import PoolDep

router = APIRouter(include_in_schema=False)

DOCS_ASSETS = "/assets/docs"

# The browser may fetch nothing but this server: a page that tries (ReDoc's footer logo
# lives on a CDN; dbt docs can load an analytics script) is stopped by the browser
# itself, so the pages work the same offline and never call out online.
SAME_ORIGIN_ONLY = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:; "
    "font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; frame-src 'self'"
}
SWAGGER_PARAMETERS = {"validatorUrl": None}  # its default badge is fetched from swagger.io
LONG_CACHE = {"Cache-Control": "public, max-age=86400"}


class SameOriginStaticFiles(StaticFiles):
    async def get_response(self, path: str, scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SAME_ORIGIN_ONLY)
        return response


def mount_static(app: FastAPI) -> None:
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_dir()), name="docs-assets")
    dashboard = SameOriginStaticFiles(directory=DASHBOARD_DIR, html=True)
    app.mount("/dashboard", dashboard, name="dashboard")


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/dashboard/")


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="tgmed analytical API - Swagger UI",
        swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        swagger_ui_parameters=SWAGGER_PARAMETERS,
    )
    page.headers.update(SAME_ORIGIN_ONLY)
    return page


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    page = get_redoc_html(
        openapi_url="/openapi.json",
        title="tgmed analytical API - ReDoc",
        redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        with_google_fonts=False,
    )
    page.headers.update(SAME_ORIGIN_ONLY)
    return page


@router.get("/assets/vendor/plotly.min.js")
async def plotly() -> FileResponse:
    return FileResponse(plotly_js(), media_type="text/javascript", headers=LONG_CACHE)


@router.get("/dbt-docs")
async def dbt_docs_redirect() -> RedirectResponse:
    return RedirectResponse("/dbt-docs/")


@router.get("/dbt-docs/")
async def dbt_docs(pool: PoolDep) -> Response:
    """The dbt docs site of the last build (one self-contained page: manifest and catalog
    inside), as the transform stage published it into marts.dbt_docs."""
    try:
        row = await fetch_one(pool, "select html from marts.dbt_docs where site = 'index'")
    except Exception as error:  # the table appears with the first published build
        if getattr(error, "sqlstate", None) != "42P01":
            raise
        row = None
    if row is None:
        raise HTTPException(
            404, "no dbt docs published yet: run `tgmed-transform build` (or `docs`)"
        )
    return HTMLResponse(row["html"], headers=SAME_ORIGIN_ONLY)
