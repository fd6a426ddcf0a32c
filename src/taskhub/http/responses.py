"""JSON responses written by orjson straight from the values a hot path already holds.

FastAPI would validate a returned object against the route's response model and serialize it
again, most of a listing's CPU (docs/benchmarks.md). Each resource's renderer and response model are made
from one record (`schemas.py`), and the test client checks every body against the model.
Timestamps are UTC and written with `Z`, as pydantic writes them elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response


def json_response(
    body: Mapping[str, Any], *, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_UTC_Z),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )
