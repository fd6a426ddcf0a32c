"""Strict JSON types in every request body (the contract's Errors, added 2026-12-07), on every
route that takes one, generated from the app's own OpenAPI document with the machinery of
test_hostile_bodies: a route or a field added later is covered without anyone editing this file.

- each field, and each item of an array field, gets every JSON value of a type its schema does
  not allow: a boolean `"yes"`, `1`, `"true"`; an integer `1.5`, `"1"`, `true`; a string `1`,
  `true`, `[]`; `null` where the field is not nullable. 422, naming the field's loc;
- and nothing in the database changed;
- while a UUID, an RFC 3339 timestamp or an enum's value still travels as the JSON string it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from tests.helpers import ApiUser, assert_problem
from tests.projects.helpers import PROJECTS, make_project
from tests.security import test_hostile_bodies as hostile_bodies
from tests.security.test_hostile_bodies import (
    VALID_BODIES,
    JsonOperation,
    database_snapshot,
    json_operations,
    send,
)

# The same resources of alice's (a task, a project, a comment) as the hostile-body checks use.
ids = hostile_bodies.ids

Schema = dict[str, Any]
Location = tuple[str | int, ...]
JSON_TYPES = frozenset({"string", "integer", "number", "boolean", "null", "array", "object"})
# A value of every JSON type, with the spellings a lax parser reads as a boolean or a number.
WRONG_TYPED: tuple[tuple[str, Any], ...] = (
    ("string", "yes"),
    ("string", "true"),
    ("string", "1"),
    ("string", "1.5"),
    ("integer", 1),
    ("integer", 0),
    ("number", 1.5),
    ("boolean", True),
    ("boolean", False),
    ("null", None),
    ("array", []),
    ("array", ["x"]),
    ("object", {}),
    ("object", {"x": 1}),
)
# What a JSON string carries that Python holds as another type, by the schema's `format`.
STRING_FORMATS = {
    "uuid": ("6f1c2a4e-8b3d-4c5e-9f70-1a2b3c4d5e6f",),
    "date-time": ("2026-12-01T10:00:00Z", "2026-12-01T10:00:00.5+02:00"),
}


def resolved(schema: Schema, document: Schema) -> Schema:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def alternatives(schema: Schema, document: Schema) -> list[Schema]:
    """The schemas a value may match: the members of an anyOf/oneOf, or the schema itself."""
    schema = resolved(schema, document)
    members = schema.get("anyOf") or schema.get("oneOf")
    if members is None:
        return [schema]
    return [one for member in members for one in alternatives(member, document)]


def json_types(schema: Schema) -> frozenset[str]:
    """The JSON types one (resolved, non-union) schema takes; a schema that names none takes any."""
    declared = schema.get("type")
    if declared is None and "enum" in schema:
        declared = sorted({_json_type(value) for value in schema["enum"]})
    if declared is None:
        return JSON_TYPES
    types = frozenset([declared] if isinstance(declared, str) else declared)
    return types | {"integer"} if "number" in types else types


def _json_type(value: Any) -> str:
    for kind, python_type in (
        ("null", type(None)),
        ("boolean", bool),
        ("integer", int),
        ("number", float),
        ("string", str),
        ("array", list),
    ):
        if isinstance(value, python_type):
            return kind
    return "object"


def wrong_values(schema: Schema, document: Schema) -> Iterator[tuple[Location, Any]]:
    """Values of a type the schema does not take, each with where in the value the wrong type is:
    the value itself, an item of an array (`[wrong]`), a property of an object (`{name: wrong}`)."""
    members = alternatives(schema, document)
    allowed = frozenset().union(*(json_types(member) for member in members))
    for kind, value in WRONG_TYPED:
        if kind not in allowed:
            yield (), value
    for member in members:
        if "items" in member:
            for place, value in wrong_values(member["items"], document):
                yield (0, *place), [value]
        for name, field in member.get("properties", {}).items():
            for place, value in wrong_values(field, document):
                yield (name, *place), {name: value}


def body_fields(document: Schema, operation: JsonOperation) -> dict[str, Schema]:
    request_body = document["paths"][operation.path][operation.method.lower()]["requestBody"]
    schema = resolved(request_body["content"]["application/json"]["schema"], document)
    fields: dict[str, Schema] = schema["properties"]
    return fields


def names(response: httpx.Response, loc: list[str | int]) -> bool:
    """Whether a 422 problem document lists an error at `loc` (or inside it: a union's member)."""
    problem = assert_problem(response, 422)
    return any(error["loc"][: len(loc)] == loc for error in problem["errors"])


async def test_a_value_of_the_wrong_json_type_in_any_body_field_is_422_and_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient, alice: ApiUser, ids: dict[str, str]
) -> None:
    document = app.openapi()
    before = await database_snapshot(app)
    assert before["project"]  # there is something that could change
    assert before["task"]
    failures = []
    sent: dict[tuple[str, str], list[str]] = {}
    for operation in json_operations(app):
        valid = VALID_BODIES[(operation.method, operation.path)](alice)
        for field, schema in body_fields(document, operation).items():
            for place, value in wrong_values(schema, document):
                body = json.dumps({**valid, field: value}).encode()
                response = await send(client, operation, ids, alice, body)
                sent.setdefault((str(operation), field), []).append(json.dumps(value))
                loc: list[str | int] = ["body", field, *place]
                if response.status_code != 422 or not names(response, loc):
                    failures.append(
                        f"{operation} {field}={json.dumps(value)}: "
                        f"{response.status_code} {response.text}"
                    )
    # Each field of every operation, with the values the contract names among them.
    assert len(sent) >= 20, sorted(sent)
    assert {'"yes"', "1", '"true"', "null"} <= set(
        sent["PATCH /api/v1/projects/{project_id}", "archived"]
    )
    assert {"1", "true", "[]"} <= set(sent["PATCH /api/v1/projects/{project_id}", "name"])
    assert "null" not in sent["PATCH /api/v1/projects/{project_id}", "description"]  # nullable
    assert {"[1]", "[true]", "[null]"} <= set(sent["POST /api/v1/tasks", "labels"])
    assert not failures, "wrong JSON types not refused:\n" + "\n".join(failures)
    assert await database_snapshot(app) == before


@pytest.mark.parametrize("archived", ["yes", 1, "true", "false", 0])
async def test_patch_project_archived_must_be_a_json_boolean_and_a_refusal_archives_nothing(
    client: httpx.AsyncClient, alice: ApiUser, archived: Any
) -> None:
    project = await make_project(client, alice)
    url = f"{PROJECTS}/{project['id']}"

    response = await client.patch(url, json={"archived": archived}, headers=alice.headers)

    problem = assert_problem(response, 422)
    assert [error["loc"] for error in problem["errors"]] == [["body", "archived"]]
    after = await client.get(url, headers=alice.headers)
    assert after.json() == project
    listed = await client.get(PROJECTS, params={"archived": "true"}, headers=alice.headers)
    assert listed.json()["items"] == []


def test_uuids_timestamps_and_enum_values_still_travel_as_json_strings(app: FastAPI) -> None:
    """Strict types must not refuse what JSON can carry only as a string: each such field of every
    body validates, the way the app validates it (the route's body field), from its string."""
    document = app.openapi()
    failures = []
    checked = 0
    for route in app.routes:
        if not isinstance(route, APIRoute) or route.body_field is None:
            continue
        for method in route.methods:
            fields = body_fields(document, JsonOperation(method, route.path))
            for field, schema in fields.items():
                for value in string_carried(schema, document):
                    _, errors = route.body_field.validate({field: value}, {}, loc=("body",))
                    checked += 1
                    if any(error["loc"][:2] == ("body", field) for error in errors):
                        failures.append(f"{method} {route.path} {field}={value!r}: {errors}")
    assert checked >= 15, checked  # uuids, timestamps, statuses, priorities, roles
    assert not failures, "refused as strings:\n" + "\n".join(failures)


def string_carried(schema: Schema, document: Schema) -> Iterator[str]:
    for member in alternatives(schema, document):
        if member.get("type") == "string":
            yield from member.get("enum", ())
            yield from STRING_FORMATS.get(member.get("format", ""), ())
