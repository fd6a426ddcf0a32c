"""GET /tasks: filters, sort orders with their tie-breaks, and the query parameters' limits."""

from __future__ import annotations

from typing import Any

import httpx

from tests.helpers import ApiUser, assert_problem, create_task
from tests.tasks.helpers import (
    SORTS,
    expected_order,
    list_ids,
    list_ok,
    list_tasks,
    task_url,
)

# (title, status, priority, due_at): shared priorities and due dates exercise the id tie-break,
# None due dates must come last in both due_at directions.
MIXED = [
    ("alpha", "todo", "high", "2026-12-03T09:00:00Z"),
    ("bravo", "in_progress", "low", "2026-12-01T09:00:00Z"),
    ("charlie", "done", "medium", None),
    ("delta", "todo", "medium", "2026-12-02T09:00:00Z"),
    ("echo", "in_progress", "high", "2026-12-02T09:00:00Z"),
    ("foxtrot", "todo", "low", None),
    ("golf", "done", "high", "2026-12-02T09:00:00Z"),
    ("hotel", "todo", "medium", "2026-12-05T00:00:00+05:00"),
    ("india", "in_progress", "medium", None),
    ("juliet", "todo", "medium", "2026-12-04T23:59:59.999999Z"),
]


async def make_mixed(client: httpx.AsyncClient, user: ApiUser) -> list[dict[str, Any]]:
    tasks = []
    for title, status, priority, due_at in MIXED:
        tasks.append(
            await create_task(
                client, user, title=title, status=status, priority=priority, due_at=due_at
            )
        )
    return tasks


async def current(client: httpx.AsyncClient, user: ApiUser) -> list[dict[str, Any]]:
    body = await list_ok(client, user, {"limit": "100"})
    items: list[dict[str, Any]] = body["items"]
    return items


def ids_where(tasks: list[dict[str, Any]], **wanted: Any) -> set[str]:
    return {
        task["id"]
        for task in tasks
        if all(
            task[key] in value if isinstance(value, set) else task[key] == value
            for key, value in wanted.items()
        )
    }


# --- filters -----------------------------------------------------------------------------------


async def test_status_filter_is_an_exact_match(client: httpx.AsyncClient, alice: ApiUser) -> None:
    tasks = await make_mixed(client, alice)
    for status in ("todo", "in_progress", "done"):
        found = await list_ids(client, alice, {"status": status})
        assert set(found) == ids_where(tasks, status=status), status
        assert found


async def test_status_filter_repeats_as_any_of(client: httpx.AsyncClient, alice: ApiUser) -> None:
    tasks = await make_mixed(client, alice)
    found = await list_ids(client, alice, [("status", "todo"), ("status", "in_progress")])
    assert set(found) == ids_where(tasks, status={"todo", "in_progress"})
    assert found == expected_order(
        [task for task in tasks if task["id"] in set(found)], "-created_at"
    )


async def test_priority_filter_is_an_exact_match(client: httpx.AsyncClient, alice: ApiUser) -> None:
    tasks = await make_mixed(client, alice)
    for priority in ("low", "medium", "high"):
        found = await list_ids(client, alice, {"priority": priority})
        assert set(found) == ids_where(tasks, priority=priority), priority
        assert found


async def test_priority_filter_repeats_as_any_of(client: httpx.AsyncClient, alice: ApiUser) -> None:
    tasks = await make_mixed(client, alice)
    found = await list_ids(client, alice, [("priority", "low"), ("priority", "high")])
    assert set(found) == ids_where(tasks, priority={"low", "high"})


async def test_status_and_priority_filters_combine(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    tasks = await make_mixed(client, alice)
    found = await list_ids(
        client, alice, [("status", "todo"), ("status", "done"), ("priority", "high")]
    )
    assert set(found) == ids_where(tasks, status={"todo", "done"}, priority="high")
    assert len(found) == 2


async def test_invalid_status_or_priority_filter_is_422(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for params in (
        {"status": "finished"},
        {"status": "TODO"},
        {"status": ""},
        {"priority": "urgent"},
        {"priority": "2"},
        [("status", "todo"), ("status", "nope")],
    ):
        body = assert_problem(await list_tasks(client, alice, params), 422)
        assert body["errors"][0]["loc"][:2] in (["query", "status"], ["query", "priority"])


async def test_due_after_is_inclusive_and_excludes_tasks_without_due_at(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    tasks = await make_mixed(client, alice)
    found = await list_ids(client, alice, {"due_after": "2026-12-02T09:00:00Z"})
    titles = {task["title"] for task in tasks if task["id"] in set(found)}
    assert titles == {"alpha", "delta", "echo", "golf", "hotel", "juliet"}


async def test_due_before_is_exclusive_and_excludes_tasks_without_due_at(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    tasks = await make_mixed(client, alice)
    found = await list_ids(client, alice, {"due_before": "2026-12-02T09:00:00Z"})
    assert {task["title"] for task in tasks if task["id"] in set(found)} == {"bravo"}
    far = await list_ids(client, alice, {"due_before": "9999-01-01T00:00:00Z"})
    assert set(far) == {task["id"] for task in tasks if task["due_at"] is not None}


async def test_due_window_combines_both_bounds(client: httpx.AsyncClient, alice: ApiUser) -> None:
    tasks = await make_mixed(client, alice)
    found = await list_ids(
        client,
        alice,
        # the same instants as 2026-12-02T09:00:00Z and 2026-12-04T19:00:00Z
        {"due_after": "2026-12-02T11:00:00+02:00", "due_before": "2026-12-04T14:00:00-05:00"},
    )
    titles = {task["title"] for task in tasks if task["id"] in set(found)}
    # hotel is due 2026-12-04T19:00:00Z exactly: the upper bound excludes it
    assert titles == {"alpha", "delta", "echo", "golf"}
    empty = await list_ids(
        client, alice, {"due_after": "2026-12-03T00:00:00Z", "due_before": "2026-12-02T00:00:00Z"}
    )
    assert empty == []


async def test_due_bounds_are_exact_to_the_microsecond(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    tasks = await make_mixed(client, alice)
    juliet = next(task["id"] for task in tasks if task["title"] == "juliet")
    assert juliet not in await list_ids(
        client, alice, {"due_before": "2026-12-04T23:59:59.999999Z"}
    )
    assert juliet in await list_ids(client, alice, {"due_before": "2026-12-05T00:00:00Z"})
    assert juliet in await list_ids(client, alice, {"due_after": "2026-12-04T23:59:59.999999Z"})
    assert juliet not in await list_ids(client, alice, {"due_after": "2026-12-05T00:00:00Z"})


async def test_due_filters_combine_with_status(client: httpx.AsyncClient, alice: ApiUser) -> None:
    tasks = await make_mixed(client, alice)
    found = await list_ids(
        client, alice, {"due_after": "2026-12-02T00:00:00Z", "status": "todo", "sort": "due_at"}
    )
    titles = [next(task["title"] for task in tasks if task["id"] == id_) for id_ in found]
    assert titles == ["delta", "alpha", "hotel", "juliet"]


async def test_naive_or_malformed_due_bound_is_422(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for bound in ("due_before", "due_after"):
        for value in (
            "2026-12-01T10:00:00",
            "2026-12-01",
            "yesterday",
            "",
            "1764583200",
            "9999-12-31T23:59:59-01:00",
            "0001-01-01T00:30:00+01:00",
        ):
            body = assert_problem(await list_tasks(client, alice, {bound: value}), 422)
            assert body["errors"][0]["loc"] == ["query", bound], (bound, value)


async def test_q_outside_1_to_100_characters_is_422(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for q in ("", "x" * 101, "ж" * 101):
        body = assert_problem(await list_tasks(client, alice, {"q": q}), 422)
        assert body["errors"][0]["loc"] == ["query", "q"]


async def test_q_of_1_to_100_characters_is_accepted(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await create_task(client, alice, title="nothing")
    for q in ("y", "x" * 100, "ж" * 100):
        match = await create_task(client, alice, title=q)
        assert await list_ids(client, alice, {"q": q}) == [match["id"]]


async def test_q_with_nul_is_422(client: httpx.AsyncClient, alice: ApiUser) -> None:
    assert_problem(await list_tasks(client, alice, {"q": "a\x00b"}), 422)


async def test_q_combines_with_other_filters(client: httpx.AsyncClient, alice: ApiUser) -> None:
    tasks = await make_mixed(client, alice)
    found = await list_ids(client, alice, [("q", "A"), ("status", "todo"), ("priority", "medium")])
    titles = {task["title"] for task in tasks if task["id"] in set(found)}
    assert titles == {"delta"}


# --- sort --------------------------------------------------------------------------------------


async def test_sort_orders_by_key_then_id_in_the_same_direction(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    tasks = await make_mixed(client, alice)
    # Touch some tasks so that updated_at order differs from created_at order.
    for index in (3, 0, 7):
        response = await client.patch(
            task_url(tasks[index]["id"]), json={"description": "touched"}, headers=alice.headers
        )
        assert response.status_code == 200
    snapshot = await current(client, alice)
    assert len(snapshot) == len(MIXED)
    for sort in SORTS:
        found = await list_ids(client, alice, {"sort": sort})
        assert found == expected_order(snapshot, sort), sort


async def test_tasks_without_due_at_come_last_in_both_directions(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    tasks = await make_mixed(client, alice)
    without = {task["id"] for task in tasks if task["due_at"] is None}
    for sort in ("due_at", "-due_at"):
        found = await list_ids(client, alice, {"sort": sort})
        assert set(found[-len(without) :]) == without, sort
        assert not without & set(found[: -len(without)])


async def test_sort_by_priority_ranks_low_medium_high_not_alphabetically(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for priority in ("medium", "high", "low"):
        await create_task(client, alice, title=priority, priority=priority)
    ascending = await list_ok(client, alice, {"sort": "priority"})
    assert [item["priority"] for item in ascending["items"]] == ["low", "medium", "high"]
    descending = await list_ok(client, alice, {"sort": "-priority"})
    assert [item["priority"] for item in descending["items"]] == ["high", "medium", "low"]


async def test_sort_by_due_at_compares_instants_not_offsets(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    later = await create_task(client, alice, title="later", due_at="2026-12-01T10:00:00-03:00")
    earlier = await create_task(client, alice, title="earlier", due_at="2026-12-01T12:00:00+02:00")
    assert await list_ids(client, alice, {"sort": "due_at"}) == [earlier["id"], later["id"]]


async def test_default_sort_is_newest_first(client: httpx.AsyncClient, alice: ApiUser) -> None:
    first = await create_task(client, alice, title="first")
    second = await create_task(client, alice, title="second")
    third = await create_task(client, alice, title="third")
    default = await list_ids(client, alice)
    assert default == [third["id"], second["id"], first["id"]]
    assert default == await list_ids(client, alice, {"sort": "-created_at"})


async def test_updated_at_sort_follows_the_latest_change(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    first = await create_task(client, alice, title="first")
    second = await create_task(client, alice, title="second")
    response = await client.patch(
        task_url(first["id"]), json={"priority": "high"}, headers=alice.headers
    )
    assert response.status_code == 200
    assert await list_ids(client, alice, {"sort": "-updated_at"}) == [first["id"], second["id"]]
    assert await list_ids(client, alice, {"sort": "updated_at"}) == [second["id"], first["id"]]


async def test_unknown_sort_is_422(client: httpx.AsyncClient, alice: ApiUser) -> None:
    for sort in (
        "title",
        "+created_at",
        "created",
        "-id",
        "id",
        "",
        "-",
        "created_at,-due_at",
        "DUE_AT",
        "--due_at",
    ):
        body = assert_problem(await list_tasks(client, alice, {"sort": sort}), 422)
        assert body["errors"][0]["loc"] == ["query", "sort"], sort


# --- limit -------------------------------------------------------------------------------------


async def test_limit_defaults_to_20(client: httpx.AsyncClient, alice: ApiUser) -> None:
    for n in range(21):
        await create_task(client, alice, title=f"task {n}")
    body = await list_ok(client, alice)
    assert len(body["items"]) == 20
    assert body["next_cursor"] is not None
    rest = await list_ok(client, alice, {"cursor": body["next_cursor"]})
    assert len(rest["items"]) == 1
    assert rest["next_cursor"] is None


async def test_limit_within_1_to_100_caps_the_page(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for n in range(3):
        await create_task(client, alice, title=f"task {n}")
    for limit in (1, 2, 3, 100):
        body = await list_ok(client, alice, {"limit": str(limit)})
        assert len(body["items"]) == min(limit, 3)
        assert (body["next_cursor"] is None) == (limit >= 3), limit


async def test_limit_outside_1_to_100_is_422(client: httpx.AsyncClient, alice: ApiUser) -> None:
    for limit in ("0", "101", "-1", "abc", "1.5", ""):
        body = assert_problem(await list_tasks(client, alice, {"limit": limit}), 422)
        assert body["errors"][0]["loc"] == ["query", "limit"], limit


async def test_unknown_query_parameters_are_ignored(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice)
    assert await list_ids(client, alice, {"colour": "blue"}) == [task["id"]]
