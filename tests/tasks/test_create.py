"""POST /tasks: the Task body, defaults, validation of every field, and the refusals around it.

Cases of one rule share a test (and its users) to keep the suite fast; each assertion names
the case it checks.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.helpers import ApiUser, assert_problem, create_task
from tests.tasks.helpers import TASK_FIELDS, TASKS, task_url, ts


async def post(client: httpx.AsyncClient, user: ApiUser, payload: Any) -> httpx.Response:
    return await client.post(TASKS, json=payload, headers=user.headers)


async def post_raw(
    client: httpx.AsyncClient, user: ApiUser, raw: bytes, content_type: str = "application/json"
) -> httpx.Response:
    return await client.post(
        TASKS, content=raw, headers={**user.headers, "Content-Type": content_type}
    )


def error_locs(body: dict[str, Any]) -> list[list[Any]]:
    return [error["loc"] for error in body["errors"]]


async def assert_rejected(
    client: httpx.AsyncClient, user: ApiUser, payload: Any, field: str | None
) -> None:
    """422 problem naming the field, and no task was created."""
    body = assert_problem(await post(client, user, payload), 422)
    if field is not None:
        assert ["body", field] in error_locs(body), (payload, body)
    assert await task_count(client, user) == 0, payload


async def task_count(client: httpx.AsyncClient, user: ApiUser) -> int:
    listing = await client.get(TASKS, params={"limit": "100"}, headers=user.headers)
    assert listing.status_code == 200
    return len(listing.json()["items"])


async def test_create_returns_201_with_the_task_body_and_no_owner_field(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    response = await post(
        client,
        alice,
        {
            "title": "Write the report",
            "description": "Quarterly numbers",
            "status": "in_progress",
            "priority": "high",
            "due_at": "2026-12-01T10:00:00Z",
        },
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == TASK_FIELDS
    uuid.UUID(body["id"])
    assert body["title"] == "Write the report"
    assert body["description"] == "Quarterly numbers"
    assert body["status"] == "in_progress"
    assert body["priority"] == "high"
    assert body["due_at"] == "2026-12-01T10:00:00Z"
    assert body["completed_at"] is None
    assert body["created_at"] == body["updated_at"]
    assert body["created_at"].endswith("Z")
    ts(body["created_at"])


async def test_create_sets_location_to_the_task_path(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    response = await post(client, alice, {"title": "located"})
    assert response.status_code == 201
    location = response.headers["location"]
    assert location == f"/api/v1/tasks/{response.json()['id']}"
    fetched = await client.get(location, headers=alice.headers)
    assert fetched.status_code == 200
    assert fetched.json() == response.json()


async def test_create_defaults_status_todo_priority_medium_and_empty_optionals(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice, title="bare")
    assert task["status"] == "todo"
    assert task["priority"] == "medium"
    assert task["description"] is None
    assert task["due_at"] is None
    assert task["completed_at"] is None


async def test_create_accepts_explicit_nulls_for_optional_fields(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice, title="nulls", description=None, due_at=None)
    assert task["description"] is None
    assert task["due_at"] is None


async def test_create_stores_the_title_trimmed(client: httpx.AsyncClient, alice: ApiUser) -> None:
    task = await create_task(client, alice, title="  \t padded title \n ")
    assert task["title"] == "padded title"
    fetched = await client.get(task_url(task["id"]), headers=alice.headers)
    assert fetched.json()["title"] == "padded title"


async def test_create_accepts_a_title_of_200_characters_after_trimming(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for title in ("x" * 200, "ж" * 199 + "\N{GRINNING FACE}"):
        task = await create_task(client, alice, title=f"   {title}   ")
        assert task["title"] == title
        fetched = await client.get(task_url(task["id"]), headers=alice.headers)
        assert fetched.json()["title"] == title


async def test_create_rejects_a_title_over_200_characters(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for title in ("x" * 201, "é" * 201, " " + "x" * 201 + " "):
        await assert_rejected(client, alice, {"title": title}, "title")


async def test_create_rejects_a_title_that_is_empty_after_trimming(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for title in ("", "   ", "\t\n "):
        await assert_rejected(client, alice, {"title": title}, "title")


async def test_create_requires_a_title(client: httpx.AsyncClient, alice: ApiUser) -> None:
    await assert_rejected(client, alice, {"description": "no title"}, "title")


async def test_create_rejects_a_title_that_is_not_a_string(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for title in (None, 42, ["a"], {"a": 1}, True):
        await assert_rejected(client, alice, {"title": title}, "title")


async def test_create_accepts_a_description_of_10000_characters(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    description = "d" * 10_000
    task = await create_task(client, alice, description=description)
    assert task["description"] == description
    empty = await create_task(client, alice, description="")
    assert empty["description"] == ""


async def test_create_rejects_a_description_over_10000_characters(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await assert_rejected(
        client, alice, {"title": "long", "description": "d" * 10_001}, "description"
    )


async def test_create_rejects_nul_in_text_fields_with_422(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for field in ("title", "description"):
        for text in ("\x00", "bad\x00byte", "\x00trailing "):
            await assert_rejected(client, alice, {"title": "fine", field: text}, field)


async def test_create_rejects_a_lone_surrogate_in_the_title_without_500(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    response = await post_raw(client, alice, b'{"title": "broken \\ud800 text"}')
    assert response.status_code in {400, 422}, response.text
    assert_problem(response, response.status_code)
    assert await task_count(client, alice) == 0


async def test_create_rejects_unknown_fields(client: httpx.AsyncClient, alice: ApiUser) -> None:
    for field in ("foo", "tags", "Title"):
        await assert_rejected(client, alice, {"title": "t", field: "x"}, field)


async def test_create_rejects_server_owned_fields(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    some_id = "8d7a4f1e-3c1b-4b8e-9a55-0f3c7f0c2b11"
    for field, value in (
        ("id", some_id),
        ("created_at", "2026-01-01T00:00:00Z"),
        ("updated_at", "2026-01-01T00:00:00Z"),
        ("completed_at", "2026-01-01T00:00:00Z"),
        ("owner_id", some_id),
        ("owner", "bob"),
        ("search_text", "anything"),
    ):
        await assert_rejected(client, alice, {"title": "t", field: value}, field)


async def test_create_rejects_a_naive_or_non_rfc3339_due_at(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for due_at in (
        "2026-12-01T10:00:00",
        "2026-12-01 10:00:00",
        "2026-12-01",
        "tomorrow",
        "",
        1764583200,
        "1764583200",
    ):
        await assert_rejected(client, alice, {"title": "t", "due_at": due_at}, "due_at")


async def test_create_returns_due_at_normalised_to_utc_with_z(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for sent, returned in (
        ("2026-12-01T12:00:00+02:00", "2026-12-01T10:00:00Z"),
        ("2026-12-01T05:30:00-04:30", "2026-12-01T10:00:00Z"),
        ("2026-12-01T10:00:00.250000+00:00", "2026-12-01T10:00:00.250000Z"),
        ("2026-12-01T10:00:00Z", "2026-12-01T10:00:00Z"),
    ):
        task = await create_task(client, alice, due_at=sent)
        assert task["due_at"] == returned, sent
        fetched = await client.get(task_url(task["id"]), headers=alice.headers)
        assert fetched.json()["due_at"] == returned, sent


async def test_create_accepts_due_at_at_the_ends_of_the_calendar(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for due_at in ("9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"):
        task = await create_task(client, alice, due_at=due_at)
        assert task["due_at"] == due_at
        fetched = await client.get(task_url(task["id"]), headers=alice.headers)
        assert fetched.json()["due_at"] == due_at


async def test_create_rejects_due_at_that_leaves_the_calendar_in_utc_with_422(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for due_at in ("9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+01:00"):
        await assert_rejected(client, alice, {"title": "t", "due_at": due_at}, "due_at")


async def test_create_with_status_done_sets_completed_at(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice, status="done")
    assert task["status"] == "done"
    assert task["completed_at"] is not None
    assert task["completed_at"].endswith("Z")
    assert ts(task["completed_at"]) == ts(task["created_at"])


async def test_create_with_open_status_leaves_completed_at_null(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for status in ("todo", "in_progress"):
        task = await create_task(client, alice, status=status)
        assert task["status"] == status
        assert task["completed_at"] is None


async def test_create_accepts_every_priority(client: httpx.AsyncClient, alice: ApiUser) -> None:
    for priority in ("low", "medium", "high"):
        task = await create_task(client, alice, priority=priority)
        assert task["priority"] == priority


async def test_create_rejects_an_invalid_status(client: httpx.AsyncClient, alice: ApiUser) -> None:
    for status in ("finished", "TODO", "in progress", "", None, 1):
        await assert_rejected(client, alice, {"title": "t", "status": status}, "status")


async def test_create_rejects_an_invalid_priority(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for priority in ("urgent", "HIGH", "", None, 1, 3):
        await assert_rejected(client, alice, {"title": "t", "priority": priority}, "priority")


async def test_create_rejects_malformed_json_with_400_problem(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for raw in (b'{"title": "x"', b"{title: 'x'}", b"not json", b'{"title": "x"} trailing'):
        body = assert_problem(await post_raw(client, alice, raw), 400)
        assert "errors" not in body, raw
    assert await task_count(client, alice) == 0


async def test_create_rejects_a_body_that_is_not_an_object(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for payload in ([], ["title"], "title", 3, None):
        await assert_rejected(client, alice, payload, None)


async def test_create_rejects_a_missing_body(client: httpx.AsyncClient, alice: ApiUser) -> None:
    assert_problem(await client.post(TASKS, headers=alice.headers), 422)


async def test_create_rejects_a_body_that_is_not_json_with_415(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        response = await post_raw(client, alice, b'{"title": "looks like json"}', content_type)
        assert_problem(response, 415)
    assert await task_count(client, alice) == 0


async def test_create_accepts_json_with_a_charset_parameter(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    raw = '{"title": "ünïcode"}'.encode()
    response = await post_raw(client, alice, raw, "application/json; charset=utf-8")
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "ünïcode"


async def test_create_without_token_is_401(client: httpx.AsyncClient, alice: ApiUser) -> None:
    response = await client.post(TASKS, json={"title": "anonymous"})
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert await task_count(client, alice) == 0


async def test_create_with_a_bad_token_is_401_invalid_token(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    response = await client.post(
        TASKS, json={"title": "t"}, headers={"Authorization": "Bearer not-a-token"}
    )
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert await task_count(client, alice) == 0


async def test_create_twice_makes_two_distinct_tasks(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    first = await create_task(client, alice, title="same")
    second = await create_task(client, alice, title="same")
    assert first["id"] != second["id"]
    listing = await client.get(TASKS, headers=alice.headers)
    assert {item["id"] for item in listing.json()["items"]} == {first["id"], second["id"]}
