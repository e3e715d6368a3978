"""Where the browser's files come from: installed packages, never a CDN, so the
dashboard and the API docs work on air-gapped sites.

- Swagger UI and ReDoc: the `fastapi-offline` package ships their bundles.
- Plotly (the dashboard's charts): the `plotly` package ships `plotly.min.js`; only the
  file is served, the Python package is never imported.
- The dashboard itself (HTML, JS, CSS): this package, `tgmed_api/dashboard/`.

Found through the import system without importing the packages (importing plotly costs
a second of start-up and memory for nothing).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the package {name!r} is not installed: reinstall tgmed-api")
    return Path(next(iter(spec.submodule_search_locations)))


def swagger_dir() -> Path:
    """swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png"""
    return package_dir("fastapi_offline") / "static"


def plotly_js() -> Path:
    return package_dir("plotly") / "package_data" / "plotly.min.js"


DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboard"
