"""GET, PATCH and DELETE /tasks/{id}: partial updates, completion tracking, ids of every shape."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.helpers import ApiUser, assert_problem, create_task
from tests.tasks.helpers import TASK_FIELDS, TASKS, task_url, ts

NOT_UUIDS = [
    "not-a-uuid",
    "123",
    "1 OR 1=1",
    "8d7a4f1e-3c1b-4b8e-9a55-0f3c7f0c2b1",  # one digit short
    "8d7a4f1e-3c1b-4b8e-9a55-0f3c7f0c2b11x",
    "g" * 32,
    "x" * 2000,
    "%00",
    "%C3%A9",
    "%FF",
    "null",
]


async def patch(
    client: httpx.AsyncClient, user: ApiUser, task_id: str, payload: Any
) -> httpx.Response:
    return await client.patch(task_url(task_id), json=payload, headers=user.headers)


async def patch_ok(
    client: httpx.AsyncClient, user: ApiUser, task_id: str, payload: Any
) -> dict[str, Any]:
    response = await patch(client, user, task_id, payload)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == TASK_FIELDS
    return body


async def get_ok(client: httpx.AsyncClient, user: ApiUser, task_id: str) -> dict[str, Any]:
    response = await client.get(task_url(task_id), headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- GET ---------------------------------------------------------------------------------------


async def test_get_returns_the_task_as_created(client: httpx.AsyncClient, alice: ApiUser) -> None:
    task = await create_task(
        client, alice, title="read me", description="body", due_at="2026-12-24T18:00:00+01:00"
    )
    fetched = await get_ok(client, alice, task["id"])
    assert fetched == task
    assert set(fetched) == TASK_FIELDS


async def test_get_missing_task_is_404_problem(client: httpx.AsyncClient, alice: ApiUser) -> None:
    response = await client.get(task_url(str(uuid.uuid4())), headers=alice.headers)
    body = assert_problem(response, 404)
    assert body["detail"] == "Task not found"


async def test_upper_case_uuid_matches_the_task(client: httpx.AsyncClient, alice: ApiUser) -> None:
    task = await create_task(client, alice, title="case")
    url = task_url(task["id"].upper())
    fetched = await client.get(url, headers=alice.headers)
    assert fetched.status_code == 200
    assert fetched.json() == task  # the id comes back in canonical lower case
    patched = await client.patch(url, json={"title": "CASE"}, headers=alice.headers)
    assert patched.status_code == 200
    assert patched.json()["id"] == task["id"]
    assert patched.json()["title"] == "CASE"
    deleted = await client.delete(url, headers=alice.headers)
    assert deleted.status_code == 204
    assert_problem(await client.get(task_url(task["id"]), headers=alice.headers), 404)


async def test_id_that_is_not_a_uuid_is_422_never_500(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice)
    for bad_id in NOT_UUIDS:
        url = f"{TASKS}/{bad_id}"
        for method in ("GET", "PATCH", "DELETE"):
            if method == "PATCH":
                response = await client.patch(url, json={"title": "x"}, headers=alice.headers)
            else:
                response = await client.request(method, url, headers=alice.headers)
            body = assert_problem(response, 422)
            assert body["errors"][0]["loc"] == ["path", "task_id"], (method, bad_id)
    assert await get_ok(client, alice, task["id"]) == task


# --- PATCH -------------------------------------------------------------------------------------


async def test_patch_with_empty_body_changes_nothing_and_keeps_updated_at(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(
        client, alice, title="keep", description="d", due_at="2026-12-01T10:00:00Z"
    )
    patched = await patch_ok(client, alice, task["id"], {})
    assert patched == task
    assert await get_ok(client, alice, task["id"]) == task


PARTIAL_CHANGES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"title": "  renamed  "}, {"title": "renamed"}),
    ({"description": "new words"}, {"description": "new words"}),
    ({"priority": "low"}, {"priority": "low"}),
    ({"status": "in_progress"}, {"status": "in_progress"}),
    ({"due_at": "2027-01-01T09:00:00+09:00"}, {"due_at": "2027-01-01T00:00:00Z"}),
    ({"title": "both", "priority": "high"}, {"title": "both", "priority": "high"}),
]


async def test_patch_changes_only_the_fields_sent(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for changes, expected in PARTIAL_CHANGES:
        task = await create_task(
            client, alice, title="orig", description="desc", due_at="2026-12-01T10:00:00Z"
        )
        patched = await patch_ok(client, alice, task["id"], changes)
        untouched = {
            key: value
            for key, value in task.items()
            if key not in expected and key not in {"updated_at", "completed_at"}
        }
        assert {key: patched[key] for key in untouched} == untouched, changes
        assert {key: patched[key] for key in expected} == expected
        assert ts(patched["updated_at"]) > ts(task["updated_at"])
        assert patched["created_at"] == task["created_at"]
        assert await get_ok(client, alice, task["id"]) == patched


async def test_patch_null_clears_description_and_due_at(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for field, other in (("description", "due_at"), ("due_at", "description")):
        task = await create_task(client, alice, description="words", due_at="2026-12-01T10:00:00Z")
        patched = await patch_ok(client, alice, task["id"], {field: None})
        assert patched[field] is None
        assert patched[other] == task[other]
        assert ts(patched["updated_at"]) > ts(task["updated_at"])
        assert (await get_ok(client, alice, task["id"]))[field] is None
    both = await create_task(client, alice, description="words", due_at="2026-12-01T10:00:00Z")
    cleared = await patch_ok(client, alice, both["id"], {"description": None, "due_at": None})
    assert (cleared["description"], cleared["due_at"]) == (None, None)


async def test_patch_null_for_required_fields_is_422(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice, title="stays")
    for field in ("title", "status", "priority"):
        body = assert_problem(await patch(client, alice, task["id"], {field: None}), 422)
        assert ["body", field] in [error["loc"] for error in body["errors"]]
    assert await get_ok(client, alice, task["id"]) == task


INVALID_CHANGES: list[dict[str, Any]] = [
    {"title": "   "},
    {"title": "x" * 201},
    {"title": "nul\x00"},
    {"description": "nul\x00"},
    {"description": "d" * 10_001},
    {"status": "finished"},
    {"priority": "urgent"},
    {"due_at": "2026-12-01T10:00:00"},
    {"id": str(uuid.uuid4())},
    {"created_at": "2026-01-01T00:00:00Z"},
    {"updated_at": "2026-01-01T00:00:00Z"},
    {"completed_at": "2026-01-01T00:00:00Z"},
    {"owner_id": str(uuid.uuid4())},
    {"unknown": 1},
    {"title": "valid", "unknown": 1},
    {"due_at": 1764583200},
    {"due_at": "9999-12-31T23:59:59-01:00"},
]


async def test_patch_with_an_invalid_field_is_422_and_changes_nothing(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice, title="stays", description="kept")
    for changes in INVALID_CHANGES:
        body = assert_problem(await patch(client, alice, task["id"], changes), 422)
        assert body["errors"], changes
    for payload in ([], "title", None):
        assert_problem(await patch(client, alice, task["id"], payload), 422)
    assert await get_ok(client, alice, task["id"]) == task


async def test_patch_with_malformed_json_is_400(client: httpx.AsyncClient, alice: ApiUser) -> None:
    task = await create_task(client, alice)
    response = await client.patch(
        task_url(task["id"]),
        content=b'{"title": ',
        headers={**alice.headers, "Content-Type": "application/json"},
    )
    assert_problem(response, 400)


async def test_patch_with_text_plain_is_415(client: httpx.AsyncClient, alice: ApiUser) -> None:
    task = await create_task(client, alice)
    response = await client.patch(
        task_url(task["id"]),
        content=b'{"title": "x"}',
        headers={**alice.headers, "Content-Type": "text/plain"},
    )
    assert_problem(response, 415)
    assert await get_ok(client, alice, task["id"]) == task


async def test_patch_without_token_is_401(client: httpx.AsyncClient, alice: ApiUser) -> None:
    task = await create_task(client, alice)
    response = await client.patch(task_url(task["id"]), json={"title": "anon"})
    assert_problem(response, 401)
    assert await get_ok(client, alice, task["id"]) == task


async def test_patch_missing_task_is_404(client: httpx.AsyncClient, alice: ApiUser) -> None:
    response = await patch(client, alice, str(uuid.uuid4()), {"title": "ghost"})
    assert_problem(response, 404)


async def test_patch_to_done_sets_completed_at(client: httpx.AsyncClient, alice: ApiUser) -> None:
    task = await create_task(client, alice, status="in_progress")
    done = await patch_ok(client, alice, task["id"], {"status": "done"})
    assert done["status"] == "done"
    assert done["completed_at"] is not None
    assert done["completed_at"].endswith("Z")
    assert ts(done["completed_at"]) == ts(done["updated_at"])
    assert ts(done["completed_at"]) > ts(task["created_at"])


async def test_patch_done_again_keeps_the_first_completed_at(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice, status="done")
    again = await patch_ok(client, alice, task["id"], {"status": "done", "title": "renamed"})
    assert again["completed_at"] == task["completed_at"]
    other_change = await patch_ok(client, alice, task["id"], {"priority": "high"})
    assert other_change["completed_at"] == task["completed_at"]


async def test_patch_leaving_done_clears_completed_at(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for new_status in ("todo", "in_progress"):
        task = await create_task(client, alice, status="done")
        assert task["completed_at"] is not None
        reopened = await patch_ok(client, alice, task["id"], {"status": new_status})
        assert reopened["status"] == new_status
        assert reopened["completed_at"] is None
        assert (await get_ok(client, alice, task["id"]))["completed_at"] is None


async def test_patch_done_after_reopening_sets_a_new_completed_at(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice, status="done")
    await patch_ok(client, alice, task["id"], {"status": "todo"})
    done_again = await patch_ok(client, alice, task["id"], {"status": "done"})
    assert ts(done_again["completed_at"]) > ts(task["completed_at"])


async def test_patch_moves_updated_at_forward_on_every_change(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice)
    first = await patch_ok(client, alice, task["id"], {"title": "one"})
    second = await patch_ok(client, alice, task["id"], {"description": "two"})
    assert ts(task["updated_at"]) < ts(first["updated_at"]) < ts(second["updated_at"])
    assert second["created_at"] == task["created_at"]
    assert second["updated_at"].endswith("Z")


# --- DELETE ------------------------------------------------------------------------------------


async def test_delete_returns_204_then_get_is_404(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice)
    keep = await create_task(client, alice, title="keep")
    response = await client.delete(task_url(task["id"]), headers=alice.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await client.get(task_url(task["id"]), headers=alice.headers), 404)
    assert_problem(await patch(client, alice, task["id"], {"title": "zombie"}), 404)
    assert await get_ok(client, alice, keep["id"]) == keep
    listing = await client.get(TASKS, headers=alice.headers)
    assert [item["id"] for item in listing.json()["items"]] == [keep["id"]]


async def test_delete_twice_is_404_the_second_time(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice)
    assert (await client.delete(task_url(task["id"]), headers=alice.headers)).status_code == 204
    second = await client.delete(task_url(task["id"]), headers=alice.headers)
    body = assert_problem(second, 404)
    assert body["detail"] == "Task not found"


async def test_delete_without_token_is_401(client: httpx.AsyncClient, alice: ApiUser) -> None:
    task = await create_task(client, alice)
    assert_problem(await client.delete(task_url(task["id"])), 401)
    assert await get_ok(client, alice, task["id"]) == task


async def test_put_is_not_allowed_on_a_task(client: httpx.AsyncClient, alice: ApiUser) -> None:
    task = await create_task(client, alice)
    response = await client.put(task_url(task["id"]), json={"title": "x"}, headers=alice.headers)
    assert_problem(response, 405)
    assert "GET" in response.headers["allow"]
    assert await get_ok(client, alice, task["id"]) == task
