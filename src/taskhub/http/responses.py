"""JSON responses written by orjson straight from the values a hot path already holds.

FastAPI would validate a returned object against the route's response model and then serialize
it: for a page of 50 tasks that is ~60 % of the request's CPU. The routes that return these keep
their `response_model` for the OpenAPI document; every body the test suite sees is checked
against it by the test client (tests/conformance.py), and schemathesis checks them too. Timestamps are UTC and written with `Z`, as pydantic writes them elsewhere.
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
