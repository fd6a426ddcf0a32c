"""No task quota is ever exceeded by concurrent writes: 20 concurrent creates under a limit of 5
make exactly 5 (the rest 409 naming the limit), in a user's personal tasks and in a project,
keyed or not; moves into a full project are refused the same way; deleted tasks free their room
again, exactly. Each race is run for ROUNDS fresh scopes: on PostgreSQL the requests truly
overlap (SQLite queues its writers)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from taskhub.main import create_app
from tests.conftest import client_of, make_settings
from tests.helpers import API, ApiUser, make_user
from tests.projects.helpers import add_member, make_project
from tests.tasks.helpers import TASKS, task_url

LIMIT = 5
RACERS = 20
ROUNDS = 10
# Room enough in the movers' own personal tasks: only the target project is at stake.
MOVERS_LIMIT = RACERS


@asynccontextmanager
async def racing_client(database_url: str, *, per_user: int) -> AsyncIterator[httpx.AsyncClient]:
    """An app under small quotas that lets every racer in at once (no registration limit, a
    connection and an admission slot per racer)."""
    application: FastAPI = create_app(
        make_settings(
            database_url,
            MAX_TASKS_PER_USER=per_user,
            MAX_TASKS_PER_PROJECT=LIMIT,
            RATE_LIMIT_ENABLED=False,
            DB_POOL_SIZE=RACERS,
            MAX_CONCURRENT_REQUESTS=RACERS * 2,
        )
    )
    async with AsyncExitStack() as stack:
        stack.push_async_callback(application.state.database.dispose)
        yield await stack.enter_async_context(client_of(application))


# `app` is requested so that the conftest deletes the rows these tests create: a later test on
# the same database would otherwise find their users and sessions.
@pytest.fixture
async def quota_client(app: FastAPI, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with racing_client(database_url, per_user=LIMIT) as client:
        yield client


@pytest.fixture
async def movers_client(app: FastAPI, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with racing_client(database_url, per_user=MOVERS_LIMIT) as client:
        yield client


async def fresh_user(client: httpx.AsyncClient) -> ApiUser:
    return await make_user(client, f"q{uuid.uuid4().hex[:16]}")


async def post_task(
    client: httpx.AsyncClient, user: ApiUser, index: int, **fields: Any
) -> httpx.Response:
    """Every other create is keyed (Idempotency-Key): both paths hold the quota."""
    headers = dict(user.headers)
    if index % 2:
        headers["Idempotency-Key"] = f"race-{index}"
    return await client.post(TASKS, json={"title": f"race {index}", **fields}, headers=headers)


async def count_tasks(client: httpx.AsyncClient, user: ApiUser, **params: Any) -> int:
    response = await client.get(TASKS, params={"limit": 100, **params}, headers=user.headers)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return len(response.json()["items"])


def outcome(responses: list[httpx.Response], limit_name: str) -> Counter[int]:
    """The statuses of a race; every refusal is the quota's 409 naming its limit."""
    for response in responses:
        if response.status_code == 409:
            detail = response.json()["detail"]
            assert detail.startswith(f"{limit_name} reached"), detail
            assert f"the limit is {LIMIT}" in detail, detail
    return Counter(response.status_code for response in responses)


async def test_twenty_concurrent_personal_creates_under_a_limit_of_five_make_exactly_five(
    quota_client: httpx.AsyncClient,
) -> None:
    client = quota_client
    for _ in range(ROUNDS):
        user = await fresh_user(client)

        responses = await asyncio.gather(
            *(post_task(client, user, index) for index in range(RACERS))
        )

        assert outcome(responses, "MAX_TASKS_PER_USER") == {201: LIMIT, 409: RACERS - LIMIT}
        assert await count_tasks(client, user) == LIMIT


async def test_twenty_concurrent_creates_by_several_members_fill_a_project_to_exactly_five(
    quota_client: httpx.AsyncClient,
) -> None:
    client = quota_client
    for _ in range(ROUNDS):
        owner = await fresh_user(client)
        project = await make_project(client, owner)
        members = [owner]
        for _ in range(3):
            member = await fresh_user(client)
            await add_member(client, owner, project["id"], member.username, "editor")
            members.append(member)

        responses = await asyncio.gather(
            *(
                post_task(client, members[index % len(members)], index, project_id=project["id"])
                for index in range(RACERS)
            )
        )

        assert outcome(responses, "MAX_TASKS_PER_PROJECT") == {201: LIMIT, 409: RACERS - LIMIT}
        assert await count_tasks(client, owner, project_id=project["id"]) == LIMIT


async def test_concurrent_moves_and_creates_into_a_project_fill_it_to_exactly_five(
    movers_client: httpx.AsyncClient,
) -> None:
    client = movers_client
    movers = RACERS // 2
    for _ in range(ROUNDS):
        owner = await fresh_user(client)
        project = await make_project(client, owner)
        personal = [await post_task(client, owner, 0) for _ in range(movers)]
        assert {response.status_code for response in personal} == {201}

        moves = [
            client.patch(
                task_url(response.json()["id"]),
                json={"project_id": project["id"]},
                headers=owner.headers,
            )
            for response in personal
        ]
        creates = [
            post_task(client, owner, index, project_id=project["id"])
            for index in range(RACERS - movers)
        ]
        responses = await asyncio.gather(*moves, *creates)

        statuses = outcome(responses, "MAX_TASKS_PER_PROJECT")
        assert statuses[200] + statuses[201] == LIMIT, statuses
        assert statuses[409] == RACERS - LIMIT, statuses
        assert await count_tasks(client, owner, project_id=project["id"]) == LIMIT


async def test_after_deletes_and_moves_out_creates_fill_the_freed_room_exactly(
    quota_client: httpx.AsyncClient,
) -> None:
    client = quota_client
    for _ in range(ROUNDS):
        user = await fresh_user(client)
        made = [(await post_task(client, user, 0)).json()["id"] for _ in range(LIMIT)]
        refused = await post_task(client, user, 0)
        assert outcome([refused], "MAX_TASKS_PER_USER") == {409: 1}
        # Two rooms freed: a delete, and a move out into the user's own project.
        deleted = await client.delete(task_url(made[0]), headers=user.headers)
        assert deleted.status_code == 204
        project = await make_project(client, user)
        moved = await client.patch(
            task_url(made[1]), json={"project_id": project["id"]}, headers=user.headers
        )
        assert moved.status_code == 200, moved.text

        responses = await asyncio.gather(
            *(post_task(client, user, index) for index in range(RACERS))
        )

        assert outcome(responses, "MAX_TASKS_PER_USER") == {201: 2, 409: RACERS - 2}
        assert await count_tasks(client, user) == LIMIT + 1  # the moved one included


async def test_deleting_an_account_or_a_project_while_creates_take_its_room_never_fails(
    quota_client: httpx.AsyncClient,
) -> None:
    """A deletion cascades to the scope's room while creates hold it: neither waits for the
    other in a cycle (PostgreSQL would end one of them as a deadlock, a 503). Personal creates
    race their owner's account deletion; a member's creates race the project's deletion."""
    client = quota_client
    for _ in range(ROUNDS):
        leaver, owner, member = [await fresh_user(client) for _ in range(3)]
        project = await make_project(client, owner)
        await add_member(client, owner, project["id"], member.username, "editor")
        half = RACERS // 2
        # Keyed ones too: a key claimed after the account is gone is refused by its foreign key
        # (409, nothing stored), never a 500.
        personal = [post_task(client, leaver, index) for index in range(half)]
        in_project = [
            post_task(client, member, index, project_id=project["id"]) for index in range(half)
        ]
        deletions = [
            client.delete(f"{API}/users/me", headers=leaver.headers),
            client.delete(f"{API}/projects/{project['id']}", headers=owner.headers),
        ]
        quarter = half // 2
        responses = await asyncio.gather(
            *personal[:quarter],
            *in_project[:quarter],
            *deletions,
            *personal[quarter:],
            *in_project[quarter:],
        )

        statuses = [response.status_code for response in responses]
        assert [status for status in statuses if status >= 500] == [], statuses
        assert statuses[2 * quarter : 2 * quarter + 2] == [204, 204]
