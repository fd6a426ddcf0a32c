"""`Idempotency-Key` on POST /tasks: a retry replays the first 201 instead of creating twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from taskhub.tables import IdempotencyRecord
from tests.helpers import API, ApiUser, assert_problem


async def _post(
    client: httpx.AsyncClient, user: ApiUser, key: str | None, body: dict[str, object] | str
) -> httpx.Response:
    headers = dict(user.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    if isinstance(body, str):
        headers["Content-Type"] = "application/json"
        return await client.post(f"{API}/tasks", content=body, headers=headers)
    return await client.post(f"{API}/tasks", json=body, headers=headers)


async def _titles(client: httpx.AsyncClient, user: ApiUser) -> list[str]:
    response = await client.get(f"{API}/tasks", params={"limit": 100}, headers=user.headers)
    return [task["title"] for task in response.json()["items"]]


async def test_retry_after_a_dropped_response_creates_one_task(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    first = await _post(client, alice, "order-42", {"title": "Pay rent"})
    assert first.status_code == 201
    # The client never saw `first` (connection dropped) and sends the same request again.
    retry = await _post(client, alice, "order-42", {"title": "Pay rent"})
    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["location"] == first.headers["location"]
    assert await _titles(client, alice) == ["Pay rent"]


async def test_same_body_is_compared_as_parsed_json(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    first = await _post(client, alice, "k1", '{"title": "A", "priority": "high"}')
    again = await _post(client, alice, "k1", '{ "priority":"high","title":"A" }')
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]


async def test_same_key_with_another_body_is_422_and_creates_nothing(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await _post(client, alice, "k1", {"title": "A"})
    reused = await _post(client, alice, "k1", {"title": "B"})
    body = assert_problem(reused, 422)
    assert body["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert await _titles(client, alice) == ["A"]


async def test_replay_returns_the_first_response_after_the_task_changed_or_went(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    first = await _post(client, alice, "k1", {"title": "Original"})
    task_url = first.headers["location"]
    await client.patch(task_url, json={"title": "Changed"}, headers=alice.headers)
    assert (await _post(client, alice, "k1", {"title": "Original"})).json() == first.json()
    await client.delete(task_url, headers=alice.headers)
    replay = await _post(client, alice, "k1", {"title": "Original"})
    assert replay.status_code == 201
    assert replay.json() == first.json()
    assert await _titles(client, alice) == []


async def test_keys_belong_to_one_user(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    mine = await _post(client, alice, "shared-key", {"title": "A"})
    theirs = await _post(client, bob, "shared-key", {"title": "A"})
    assert theirs.status_code == 201
    assert theirs.json()["id"] != mine.json()["id"]


async def test_concurrent_requests_with_one_key_create_one_task(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    responses = await asyncio.gather(
        *(_post(client, alice, "burst", {"title": "Once"}) for _ in range(5))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert await _titles(client, alice) == ["Once"]


async def test_a_first_attempt_that_failed_validation_stores_nothing(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    assert_problem(await _post(client, alice, "k1", {"title": ""}), 422)
    fixed = await _post(client, alice, "k1", {"title": "Fixed"})
    assert fixed.status_code == 201
    assert await _titles(client, alice) == ["Fixed"]


async def test_invalid_keys_are_422(client: httpx.AsyncClient, alice: ApiUser) -> None:
    for key in ("", "x" * 256, "tab\there", "caf\u00e9"):
        headers = {**alice.headers, "Idempotency-Key": key}
        response = await client.post(
            f"{API}/tasks",
            json={"title": "A"},
            headers=[(k, v.encode()) for k, v in headers.items()],
        )
        assert_problem(response, 422)
    assert await _titles(client, alice) == []


async def test_a_key_of_255_printable_characters_is_accepted(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    key = ("~ !" * 85)[:255]
    assert (await _post(client, alice, key, {"title": "A"})).status_code == 201


async def test_after_24_hours_the_key_creates_a_new_task(
    client: httpx.AsyncClient, alice: ApiUser, app: FastAPI
) -> None:
    first = await _post(client, alice, "k1", {"title": "A"})
    await app.state.database.execute(
        sa.update(IdempotencyRecord).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)),
        {},
    )
    later = await _post(client, alice, "k1", {"title": "A"})
    assert later.status_code == 201
    assert later.json()["id"] != first.json()["id"]


async def test_without_a_key_every_post_creates_a_task(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await _post(client, alice, None, {"title": "A"})
    await _post(client, alice, None, {"title": "A"})
    assert await _titles(client, alice) == ["A", "A"]
