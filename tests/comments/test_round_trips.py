"""Each comment route costs the auth check and one statement of its own; a refusal costs more,
to say why. Counted where statements leave the app (taskhub.db.runner)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from taskhub.comments import repository as comment_repository
from taskhub.comments.service import CHANGED_MEANWHILE
from tests.comments.helpers import comment_url, comments_url, make_comment
from tests.db.test_round_trips import statements
from tests.helpers import ApiUser, assert_problem, create_task


async def test_every_comment_route_is_one_statement_after_the_auth_check(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI
) -> None:
    task = await create_task(client, alice)
    comment = await make_comment(client, alice, task["id"])
    requests = {
        "list": ("GET", comments_url(task["id"]), None),
        "create": ("POST", comments_url(task["id"]), {"body": "more"}),
        "edit": ("PATCH", comment_url(comment["id"]), {"body": "edited"}),
        "delete": ("DELETE", comment_url(comment["id"]), None),
    }
    for name, (method, path, body) in requests.items():
        with statements(app) as sent:
            response = await client.request(method, path, json=body, headers=alice.headers)
        assert response.is_success, (name, response.text)
        assert len(sent) == 2, (name, sent)
        assert "BEGIN" not in sent, name


async def test_an_empty_page_looks_the_task_up(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser, app: FastAPI
) -> None:
    task = await create_task(client, alice)

    empty = await client.get(comments_url(task["id"]), headers=alice.headers)
    hidden = await client.get(comments_url(task["id"]), headers=bob.headers)

    assert empty.json() == {"items": [], "next_cursor": None}
    assert_problem(hidden, 404)


@pytest.mark.parametrize("write", ["insert_comment", "update_comment", "delete_comment"])
async def test_a_write_refused_although_the_rules_allow_it_is_409(
    client: httpx.AsyncClient, alice: ApiUser, monkeypatch: pytest.MonkeyPatch, write: str
) -> None:
    """The caller's rights changed between the write and the explanation (a race): retry."""
    task = await create_task(client, alice)
    comment = await make_comment(client, alice, task["id"])

    async def refused(*_args: object, **_kwargs: object) -> None:
        return None

    monkeypatch.setattr(comment_repository, write, refused)
    method, path, body = {
        "insert_comment": ("POST", comments_url(task["id"]), {"body": "x"}),
        "update_comment": ("PATCH", comment_url(comment["id"]), {"body": "x"}),
        "delete_comment": ("DELETE", comment_url(comment["id"]), None),
    }[write]

    response = await client.request(method, path, json=body, headers=alice.headers)

    assert assert_problem(response, 409)["detail"] == CHANGED_MEANWHILE
