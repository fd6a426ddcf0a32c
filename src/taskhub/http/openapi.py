"""OpenAPI helpers: every documented error is a problem+json document."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase
from pydantic import BaseModel

from taskhub.errors import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {
                        "type": "array",
                        "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    },
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Document the given statuses (plus the ones any route can return) as problem documents."""
    documented = {*statuses, 500, 503}
    if 415 in documented:  # a route that takes a body also refuses bad JSON and oversize bodies
        documented |= {400, 413}
    if 401 in documented:  # authenticated routes and login are rate limited
        documented.add(429)
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in sorted(documented)
    }


def operation_id(route: APIRoute) -> str:
    """The operationId of a route: its function's name in camelCase (`list_tasks` -> `listTasks`).

    Short and stable for client generators, which name their methods and models after it;
    FastAPI's default appends the path and the method (`list_tasks_api_v1_tasks_get`).
    """
    first, *rest = route.name.split("_")
    return first + "".join(word[:1].upper() + word[1:] for word in rest)


def install_openapi(
    app: FastAPI,
    *,
    scheme: SecurityBase,
    token_need: Callable[[APIRoute], str | None],
    extra_schemas: tuple[type[BaseModel], ...] = (),
    new_password_fields: tuple[tuple[type[BaseModel], str], ...] = (),
) -> None:
    """The app's OpenAPI document: problem documents for errors, `scheme` on every route that
    `token_need` names a need for (what a personal access token needs there: a scope, `session`
    or `any token`), and models that routes document by reference only."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            schemas["Problem"] = PROBLEM_SCHEMA
            for model in extra_schemas:
                schemas[model.__name__] = model.model_json_schema()
            _document_password_min_length(
                schemas, new_password_fields, app.state.settings.PASSWORD_MIN_LENGTH
            )
            _drop_default_validation_errors(schema)
            _declare_security(schema, app, scheme, token_need)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document_password_min_length(
    schemas: dict[str, Any],
    fields: tuple[tuple[type[BaseModel], str], ...],
    min_length: int,
) -> None:
    """PASSWORD_MIN_LENGTH is checked by the password rules, not by the schemas, so that a short
    password gets the rule's own message; the document states it as minLength."""
    for model, field in fields:
        schemas[model.__name__]["properties"][field]["minLength"] = min_length


def _declare_security(
    schema: dict[str, Any],
    app: FastAPI,
    scheme: SecurityBase,
    token_need: Callable[[APIRoute], str | None],
) -> None:
    """The scheme on every operation that requires authentication, with what a personal access
    token needs there (`x-token-scope`) and the 403 a token without it gets. The auth dependency
    reads the Authorization header itself rather than through the scheme's dependency, so
    FastAPI would not document it: this declares it from the same source of truth."""
    name = scheme.scheme_name
    components = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    components[name] = scheme.model.model_dump(mode="json", by_alias=True, exclude_none=True)
    paths = schema.get("paths", {})
    refused = error_responses(403)[403]
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        need = token_need(route)
        if need is None:
            continue
        for method in route.methods or ():
            operation = paths.get(route.path_format, {}).get(method.lower())
            if operation is not None:
                operation["security"] = [{name: []}]
                operation["x-token-scope"] = need
                operation["responses"].setdefault("403", refused)


def _drop_default_validation_errors(schema: dict[str, Any]) -> None:
    """FastAPI documents 422 as its HTTPValidationError; ours is a Problem, documented per route."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            response = operation.get("responses", {}).get("422")
            if response and "application/json" in response.get("content", {}):
                response["content"] = {
                    PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
                }
    components = schema.get("components", {}).get("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
