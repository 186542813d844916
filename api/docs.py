"""GET /docs: the API page, Swagger UI rendering /openapi.json, served offline by the API itself.

Swagger UI's static files (Swagger UI 5, which reads OpenAPI 3.1) come from the
`swagger-ui-py` package, so the page needs no CDN and works on a machine with no way out.
Only its static folder is used: the package's own handlers would mount routes past auth.py.
Open like /openapi.json: the page and its files hold no data; "Authorize" takes a key for the
calls made from it. Only the bundle's own files are served, by name, never a path from outside.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse

ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "favicon-32x32.png")


def bundle_dir() -> Path:
    """swagger-ui-py's static folder (found, not imported: the package itself loads Jinja and YAML)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(spec.origin).parent / "static"


_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>solo API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout",
      persistAuthorization: true,
    });
  </script>
</body>
</html>
"""


class ApiDocs:
    def __init__(self, bundle: Path | None = None) -> None:
        folder = bundle or bundle_dir()
        self.files = {name: folder / name for name in ASSETS if (folder / name).is_file()}

    async def page(self, request: Request) -> HTMLResponse:
        return HTMLResponse(_PAGE)

    async def asset(self, request: Request) -> FileResponse:
        path = self.files.get(request.path_params["file"])
        if path is None:
            raise HTTPException(404)
        return FileResponse(path)
