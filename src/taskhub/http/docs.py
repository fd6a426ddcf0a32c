"""Swagger UI at /docs, served from the files the `swagger-ui-bundle-v2` package ships.

Nothing is loaded from outside the server (no CDN, favicon included), and the page runs under a
Content-Security-Policy that only allows this origin. "Authorize" uses the OAuth2 password flow
against /api/v1/auth/login.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.routing import APIRoute
from swagger_ui_bundle import swagger_ui_path

from taskhub.errors import NotFound
from taskhub.http.routing import add_routes_of

# Only these files are served: the bundle's own index.html and initializer point elsewhere.
STATIC_FILES = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
    "oauth2-redirect.html": "text/html",
    "oauth2-redirect.js": "text/javascript",
}
# Swagger UI sets inline styles from its scripts, hence 'unsafe-inline' for styles only.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>TaskHub API</title>
  <link rel="stylesheet" href="/docs/static/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/static/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
"""

INIT_JS = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    oauth2RedirectUrl: window.location.origin + "/docs/static/oauth2-redirect.html",
    persistAuthorization: false
  });
});
"""

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return HTMLResponse(PAGE, headers={"Content-Security-Policy": DOCS_CSP})


@router.get("/docs/init.js")
async def swagger_ui_init() -> Response:
    return Response(INIT_JS, media_type="text/javascript")


@router.get("/docs/static/{name}")
async def swagger_ui_static(name: str) -> FileResponse:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise NotFound("No such file")
    path = Path(str(swagger_ui_path)) / name
    return FileResponse(
        path,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=86400", "Content-Security-Policy": DOCS_CSP},
    )


DOCS_PATHS = frozenset(route.path for route in router.routes if isinstance(route, APIRoute))


def install_docs(app: FastAPI) -> None:
    add_routes_of(app, router)
