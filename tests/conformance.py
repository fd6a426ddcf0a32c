"""Response conformance: a 2xx JSON body is what the serving route's `response_model` would render.

The routes write their bodies by hand (orjson, the `render_*` functions) and keep `response_model`
for the OpenAPI document only, so nothing in the app checks one against the other. The test
client does, on every response (`conformance_checker`, installed by `tests.conftest.client_of`):
the body must validate against the model, and must equal what FastAPI itself would have sent for
the validated value: no field the model lacks, none missing, nothing coerced (a number sent as a
string, a timestamp not in UTC).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import orjson
from fastapi import FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import TypeAdapter, ValidationError

MAX_REPORTED = 5  # differences or validation errors named in one failure


def serving_route(app: FastAPI, method: str, path: str) -> RouteContext | None:
    """The path operation that serves `method path`, as the router would pick it (first match),
    included routers expanded; None if a non-API route (docs, a mount) or no route serves it."""
    for context in iter_route_contexts(app.routes):
        regex = getattr(context, "path_regex", None)
        if regex is None or not regex.match(path):
            continue
        methods = context.methods
        if methods is not None and method not in methods:
            continue  # the router would try the next route (405 only if none matches)
        return context if isinstance(context.original_route, APIRoute) else None
    return None


@functools.cache
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def nonconformity(route: RouteContext, body: bytes) -> str | None:
    """Why `body` is not what `route`'s response_model renders, or None if it is."""
    model = route.response_model
    adapter = _adapter(model)
    name = getattr(model, "__name__", repr(model))
    try:
        value = adapter.validate_json(body)
    except ValidationError as invalid:
        errors = invalid.errors(include_url=False, include_input=False)[:MAX_REPORTED]
        found = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(body)'}: {e['msg']}" for e in errors)
        return f"does not validate as {name}: {found}"
    rendered = adapter.dump_python(
        value,
        mode="json",
        include=route.response_model_include,
        exclude=route.response_model_exclude,
        by_alias=route.response_model_by_alias,
        exclude_unset=route.response_model_exclude_unset,
        exclude_defaults=route.response_model_exclude_defaults,
        exclude_none=route.response_model_exclude_none,
    )
    sent = orjson.loads(body)
    differences = list(_differences(sent, rendered, "(body)"))[:MAX_REPORTED]
    if differences:
        return f"is not what {name} renders: {'; '.join(differences)}"
    return None


def _differences(sent: Any, rendered: Any, where: str) -> Iterator[str]:
    if isinstance(sent, dict) and isinstance(rendered, dict):
        for key in sent.keys() - rendered.keys():
            yield f"{where}.{key} is not in the model"
        for key in rendered.keys() - sent.keys():
            yield f"{where}.{key} is missing"
        for key in sent.keys() & rendered.keys():
            yield from _differences(sent[key], rendered[key], f"{where}.{key}")
    elif isinstance(sent, list) and isinstance(rendered, list) and len(sent) == len(rendered):
        for index, (item, expected) in enumerate(zip(sent, rendered, strict=True)):
            yield from _differences(item, expected, f"{where}[{index}]")
    elif sent != rendered or type(sent) is not type(rendered):
        yield f"{where} is {sent!r}, the model renders {rendered!r}"


def response_nonconformity(app: FastAPI, response: httpx.Response) -> str | None:
    """Why a read response does not conform to its route's response_model; None if it does or
    nothing is declared for it (not 2xx, not JSON, no route or no response_model)."""
    request = response.request
    media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not 200 <= response.status_code < 300 or media_type != "application/json":
        return None
    if request.method == "HEAD":
        return None
    route = serving_route(app, request.method, request.url.path)
    if route is None or route.response_model is None:
        return None
    return nonconformity(route, response.content)


def conformance_checker(
    app: FastAPI, violations: list[str]
) -> Callable[[httpx.Response], Awaitable[None]]:
    """An httpx response hook: records a nonconforming response in `violations` and raises."""

    async def check_conformance(response: httpx.Response) -> None:
        await response.aread()
        problem = response_nonconformity(app, response)
        if problem is not None:
            request = response.request
            violations.append(
                f"{request.method} {request.url.path} -> {response.status_code}: body {problem}"
            )
            raise AssertionError(f"nonconforming response: {violations[-1]}")

    return check_conformance
