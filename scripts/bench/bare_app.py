"""The calibration point: a bare Starlette JSON endpoint, served with the same uvicorn flags as
TaskHub (1 worker, uvloop and httptools when installed, no access log). The issue's reference
machine served ~33,000 req/s from it; the ratio of this machine's figure to that one scales the
reference's other figures to this machine.

    python -m uvicorn bare_app:app --app-dir scripts/bench
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def health(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[Route("/health", health)])
