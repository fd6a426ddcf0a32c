"""One shape per resource: every resource a route returns is declared once, as the record its
repository selects; its response model (the OpenAPI schema) and its renderer are made from it."""

from __future__ import annotations

import dataclasses
import types
import typing
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel

from taskhub.auth.schemas import Account, render_account
from taskhub.comments.schemas import CommentRecord, render_comment
from taskhub.notifications.schemas import NotificationRecord, render_notification
from taskhub.projects.schemas import MemberRecord, ProjectRecord, render_member, render_project
from taskhub.schemas import INTERNAL, RECORDS
from taskhub.tasks.schemas import TaskRecord, render_task

# Shapes written by hand on purpose: none is a stored resource read from one record.
HAND_WRITTEN = {
    "TokenPair",  # two signed tokens, made per request
    "SessionRead",  # a session with `current`, which depends on the caller's token
    "SessionList",
    "MemberList",  # every member at once, no cursor
    "RoleTable",  # the roles table, from access.roles
    "RoleRead",
    "TokenCreated",  # a token's record (`Token`, from TokenRecord) and its secret, shown once
}

RENDERERS: list[tuple[type[Any], Any]] = [
    (TaskRecord, render_task),
    (ProjectRecord, render_project),
    (MemberRecord, render_member),
    (CommentRecord, render_comment),
    (NotificationRecord, render_notification),
    (Account, render_account),
]


def _returned_models(app: FastAPI) -> set[type[BaseModel]]:
    """Every response model of every route, and the item model of every page or list."""
    models: set[type[BaseModel]] = set()
    for route in app.routes:
        model = getattr(route, "response_model", None) if isinstance(route, APIRoute) else None
        if isinstance(model, type) and issubclass(model, BaseModel):
            models.add(model)
            items = model.model_fields.get("items")
            if items is not None:
                (item,) = typing.get_args(items.annotation)
                models.add(item)
    return models


def test_every_returned_resource_is_made_from_the_record_its_repository_selects(
    app: FastAPI,
) -> None:
    returned = _returned_models(app)
    pages = {model for model in returned if "items" in model.model_fields}
    resources = returned - pages - {m for m in returned if m.__name__ in HAND_WRITTEN}
    assert resources, "no route returns a resource"
    assert {model.__name__ for model in resources - RECORDS.keys()} == set()
    # Every page's items are a resource made from a record, or a hand-written shape listed above.
    for page in pages:
        (item,) = typing.get_args(page.model_fields["items"].annotation)
        assert item in RECORDS or item.__name__ in HAND_WRITTEN, page.__name__


def test_a_resource_shows_every_field_of_its_record_but_the_internal_ones() -> None:
    for model, record in RECORDS.items():
        hints = typing.get_type_hints(record, include_extras=True)
        shown = [
            field.name
            for field in dataclasses.fields(record)
            if INTERNAL not in getattr(hints[field.name], "__metadata__", ())
        ]
        assert list(model.model_fields) == shown, model.__name__


# A plausible value of each type a record field may have; a few fields by name, where the
# schema narrows the type (a role, a status, a kind).
_BY_NAME: dict[str, Any] = {"role": "editor", "status": "todo", "kind": "task_due", "priority": 2}
_BY_TYPE: dict[Any, Any] = {
    uuid.UUID: uuid.UUID(int=7),
    datetime: datetime(2026, 12, 8, 10, 0, tzinfo=UTC),
    str: "text",
    int: 2,
    bool: False,
}


def _value_of(hint: Any) -> Any:
    base = typing.get_origin(hint)
    if base is typing.Annotated:
        return _value_of(typing.get_args(hint)[0])
    if base is list:
        return [_value_of(typing.get_args(hint)[0])]
    if base in (typing.Union, types.UnionType):
        return _value_of(next(arg for arg in typing.get_args(hint) if arg is not type(None)))
    return _BY_TYPE[hint]


def _sample(record: type[Any]) -> Any:
    """An instance of `record` with a plausible value in every field."""
    hints = typing.get_type_hints(record, include_extras=True)
    values = {
        field.name: _BY_NAME[field.name] if field.name in _BY_NAME else _value_of(hints[field.name])
        for field in dataclasses.fields(record)
    }
    return record(**values)


def test_the_renderer_of_a_resource_writes_exactly_its_response_model() -> None:
    models = {record: model for model, record in RECORDS.items()}
    for record, render in RENDERERS:
        rendered = render(_sample(record))
        model = models[record]
        assert list(rendered) == list(model.model_fields), record.__name__
        model.model_validate(rendered)


def test_a_stored_rank_is_shown_by_name() -> None:
    assert render_task(_sample(TaskRecord))["priority"] == "medium"
    assert "version" not in render_task(_sample(TaskRecord))
