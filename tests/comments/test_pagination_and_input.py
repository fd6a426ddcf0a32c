"""A task's comments page oldest first; bad input is 422 (never 500) and stores nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.comments.helpers import all_comments, comment_url, comments_url, make_comment
from tests.helpers import ApiUser, assert_problem, create_task


async def test_pagination_walk_yields_every_comment_once_oldest_first(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice)
    made = [await make_comment(client, alice, task["id"], f"comment {i}") for i in range(12)]
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 5}
    pages = 0
    while True:
        response = await client.get(comments_url(task["id"]), params=params, headers=alice.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert len(page["items"]) <= 5
        seen += page["items"]
        if page["next_cursor"] is None:
            break
        # Written while walking: a comment added later comes on a later page, once.
        if pages == 1:
            made.append(await make_comment(client, alice, task["id"], "late"))
        params["cursor"] = page["next_cursor"]

    assert [c["id"] for c in seen] == [c["id"] for c in made]
    assert pages == 3
    keys = [(c["created_at"], c["id"]) for c in seen]
    assert keys == sorted(keys)


async def test_default_page_is_20(client: httpx.AsyncClient, alice: ApiUser) -> None:
    task = await create_task(client, alice)
    for i in range(21):
        await make_comment(client, alice, task["id"], f"c{i}")

    page = (await client.get(comments_url(task["id"]), headers=alice.headers)).json()

    assert len(page["items"]) == 20
    assert page["next_cursor"] is not None


async def test_a_cursor_fits_only_its_own_listing(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    first = await create_task(client, alice)
    other = await create_task(client, alice)
    for _ in range(3):
        await make_comment(client, alice, first["id"])
    page = await client.get(comments_url(first["id"]), params={"limit": 1}, headers=alice.headers)
    cursor = page.json()["next_cursor"]

    elsewhere = await client.get(
        comments_url(other["id"]), params={"cursor": cursor}, headers=alice.headers
    )
    tampered = await client.get(
        comments_url(first["id"]), params={"cursor": cursor[:-2] + "xx"}, headers=alice.headers
    )
    tasks_cursor = await client.get(
        "/api/v1/tasks", params={"cursor": cursor}, headers=alice.headers
    )

    for response in (elsewhere, tampered, tasks_cursor):
        assert_problem(response, 422)


@pytest.mark.parametrize("limit", ["0", "101", "-1", "x", ""])
async def test_a_limit_outside_1_to_100_is_422(
    client: httpx.AsyncClient, alice: ApiUser, limit: str
) -> None:
    task = await create_task(client, alice)
    response = await client.get(
        comments_url(task["id"]), params={"limit": limit}, headers=alice.headers
    )
    assert_problem(response, 422)


BAD_BODIES: dict[str, Any] = {
    "empty body": "",
    "NUL": "a\x00b",
    "too long": "x" * 10_001,
    "null": None,
    "a number": 5,
    "a list": ["hi"],
}
SERVER_FIELDS = ("id", "task_id", "author_id", "author", "created_at", "updated_at", "extra")


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
async def test_a_bad_body_is_422_and_stores_nothing(
    client: httpx.AsyncClient, alice: ApiUser, name: str
) -> None:
    task = await create_task(client, alice)
    kept = await make_comment(client, alice, task["id"], "kept")
    body = {"body": BAD_BODIES[name]}

    created = await client.post(comments_url(task["id"]), json=body, headers=alice.headers)
    edited = await client.patch(comment_url(kept["id"]), json=body, headers=alice.headers)

    for response in (created, edited):
        assert ["body", "body"] in [e["loc"] for e in assert_problem(response, 422)["errors"]]
    assert await all_comments(client, alice, task["id"]) == [kept]


@pytest.mark.parametrize("field", SERVER_FIELDS)
async def test_server_controlled_or_unknown_fields_are_422(
    client: httpx.AsyncClient, alice: ApiUser, field: str
) -> None:
    task = await create_task(client, alice)
    kept = await make_comment(client, alice, task["id"], "kept")
    body = {"body": "sneaky", field: alice.id}

    created = await client.post(comments_url(task["id"]), json=body, headers=alice.headers)
    edited = await client.patch(comment_url(kept["id"]), json=body, headers=alice.headers)

    for response in (created, edited):
        assert ["body", field] in [e["loc"] for e in assert_problem(response, 422)["errors"]]
    assert await all_comments(client, alice, task["id"]) == [kept]


async def test_a_missing_body_is_422(client: httpx.AsyncClient, alice: ApiUser) -> None:
    task = await create_task(client, alice)
    kept = await make_comment(client, alice, task["id"])
    assert_problem(await client.post(comments_url(task["id"]), json={}, headers=alice.headers), 422)
    assert_problem(await client.patch(comment_url(kept["id"]), json={}, headers=alice.headers), 422)


async def test_10000_characters_are_kept_as_written(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice)
    body = "  \u00e4" + "\u03c3" * 9_993 + "\n\t  "  # a-umlaut, sigma
    assert len(body) == 10_000

    comment = await make_comment(client, alice, task["id"], body)

    assert comment["body"] == body
    assert (await all_comments(client, alice, task["id"]))[0]["body"] == body


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "1", "00000000-0000-0000-0000-00000000000g"])
async def test_an_id_that_is_not_a_uuid_is_422(
    client: httpx.AsyncClient, alice: ApiUser, bad_id: str
) -> None:
    responses = [
        await client.get(comments_url(bad_id), headers=alice.headers),
        await client.post(comments_url(bad_id), json={"body": "x"}, headers=alice.headers),
        await client.patch(comment_url(bad_id), json={"body": "x"}, headers=alice.headers),
        await client.delete(comment_url(bad_id), headers=alice.headers),
    ]
    for response in responses:
        assert_problem(response, 422)


async def test_ids_match_in_any_letter_case(client: httpx.AsyncClient, alice: ApiUser) -> None:
    task = await create_task(client, alice)
    comment = await make_comment(client, alice, task["id"])

    listed = await client.get(comments_url(task["id"].upper()), headers=alice.headers)
    edited = await client.patch(
        comment_url(comment["id"].upper()), json={"body": "again"}, headers=alice.headers
    )

    assert listed.status_code == 200
    assert edited.status_code == 200, edited.text
