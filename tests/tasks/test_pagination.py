"""Keyset pagination: every matching task exactly once, in order, whatever happens meanwhile;
cursors are opaque, tamper-evident and bound to the listing and the user they came from."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from taskhub.config import Settings
from taskhub.http.pages import listing_scope
from taskhub.security.signing import derive_key, sign
from taskhub.tasks.repository import SortOrder, TaskFilters
from taskhub.tasks.router import listing_bound_to
from tests.helpers import ApiUser, assert_problem, create_task
from tests.tasks.helpers import (
    SORTS,
    expected_order,
    flip,
    list_ok,
    list_tasks,
    task_url,
    ts,
    walk,
)

STATUSES = ("todo", "in_progress", "done")
PRIORITIES = ("low", "medium", "high")
# Four distinct instants, spelled with different offsets; many tasks share each one.
DUE_DATES = (
    "2026-12-01T10:00:00Z",
    "2026-12-02T12:00:00+02:00",
    "2026-12-03T10:00:00.500000Z",
    "2026-12-03T05:30:00.500000-04:30",  # the same instant as the one before
)


def spec(n: int) -> dict[str, Any]:
    """Task number n of the fixture set: ties on priority and due_at, 7 tasks without due_at."""
    due_at = None if n % 4 == 1 or n == 24 else DUE_DATES[n % len(DUE_DATES)]
    return {
        "title": f"task {n:02d}" + (" Needle" if n % 5 == 0 else ""),
        "description": "haystack with a needle" if n % 7 == 0 else None,
        "status": STATUSES[(n // 3) % 3],
        "priority": PRIORITIES[n % 3],
        "due_at": due_at,
    }


async def make_tasks(
    client: httpx.AsyncClient, user: ApiUser, count: int = 25
) -> list[dict[str, Any]]:
    tasks = [await create_task(client, user, **spec(n)) for n in range(count)]
    # Change a few so that updated_at order is not created_at order.
    for n in (n for n in (3, 17, 0, 11) if n < count):
        response = await client.patch(
            task_url(tasks[n]["id"]), json={"status": "done"}, headers=user.headers
        )
        assert response.status_code == 200
        tasks[n] = response.json()
    return tasks


def matching(tasks: list[dict[str, Any]], params: dict[str, Any]) -> list[dict[str, Any]]:
    """The tasks a filter should return, computed independently of the server."""

    def keep(task: dict[str, Any]) -> bool:
        if "status" in params and task["status"] not in params["status"]:
            return False
        if "priority" in params and task["priority"] not in params["priority"]:
            return False
        if "due_after" in params or "due_before" in params:
            if task["due_at"] is None:
                return False
            due = ts(task["due_at"])
            if "due_after" in params and due < ts(params["due_after"]):
                return False
            if "due_before" in params and due >= ts(params["due_before"]):
                return False
        if "q" in params:
            text = f"{task['title']}\n{task['description'] or ''}".casefold()
            if params["q"].casefold() not in text:
                return False
        return True

    return [task for task in tasks if keep(task)]


def as_query(params: dict[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        values = value if isinstance(value, list) else [value]
        pairs.extend((key, v) for v in values)
    return pairs


def assert_exactly_once_in_order(
    walked: list[dict[str, Any]], expected: list[str], case: object = None
) -> None:
    ids = [item["id"] for item in walked]
    assert len(ids) == len(set(ids)), f"a task came twice: {case}"
    assert ids == expected, case


async def test_walking_all_pages_yields_every_task_once_in_order_for_every_sort(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    tasks = await make_tasks(client, alice)
    by_id = {task["id"]: task for task in tasks}
    for sort in SORTS:
        walked = await walk(client, alice, {"sort": sort}, limit=4)
        assert len(walked) == 25, sort
        assert_exactly_once_in_order(walked, expected_order(tasks, sort), sort)
        assert {item["id"]: item for item in walked} == by_id


FILTERS: list[dict[str, Any]] = [
    {"status": ["todo"]},
    {"status": ["todo", "done"]},
    {"priority": ["high"]},
    {"priority": ["low", "medium"], "status": ["in_progress", "done"]},
    {"due_after": "2026-12-02T10:00:00Z", "due_before": "2026-12-03T10:00:00.500001Z"},
    {"due_before": "2026-12-03T00:00:00+01:00"},
    {"q": "NEEDLE"},
    {"q": "needle", "priority": ["medium", "high"], "due_after": "2026-12-01T10:00:00Z"},
]


async def test_walking_filtered_pages_yields_every_match_once_in_order_for_every_sort(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    tasks = await make_tasks(client, alice)
    for index, params in enumerate(FILTERS):
        wanted = matching(tasks, params)
        assert 0 < len(wanted) < len(tasks), params
        # Half of the sorts per filter, so that every sort meets every kind of filter.
        for sort in SORTS[index % 2 :: 2]:
            walked = await walk(client, alice, [*as_query(params), ("sort", sort)], limit=3)
            assert_exactly_once_in_order(walked, expected_order(wanted, sort), (params, sort))


async def test_walk_is_the_same_whatever_the_page_size(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    tasks = await make_tasks(client, alice)
    cases = ((1, "due_at"), (2, "-priority"), (7, "-due_at"), (25, "priority"), (100, "due_at"))
    for limit, sort in cases:
        walked = await walk(client, alice, {"sort": sort}, limit=limit)
        assert_exactly_once_in_order(walked, expected_order(tasks, sort), (limit, sort))


async def test_tasks_created_while_walking_cause_no_duplicates_or_skips(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await make_tasks(client, alice, count=12)
    created: set[str] = set()
    for sort in ("-created_at", "created_at", "due_at", "-priority"):
        before = await list_ok(client, alice, {"limit": "100"})
        existing = expected_order(before["items"], sort)
        seen: list[str] = []
        cursor: str | None = None
        for page in range(100):
            params: list[tuple[str, str]] = [("sort", sort), ("limit", "4")]
            if cursor is not None:
                params.append(("cursor", cursor))
            body = await list_ok(client, alice, params)
            seen.extend(item["id"] for item in body["items"])
            cursor = body["next_cursor"]
            if cursor is None:
                break
            # New tasks land before, among and after the ones still to come.
            fields = {k: v for k, v in spec(page + 1).items() if k != "title"}
            extra = await create_task(client, alice, title=f"new {sort} {page}", **fields)
            created.add(extra["id"])
        assert len(seen) == len(set(seen)), f"a task came twice with sort={sort}"
        assert [id_ for id_ in seen if id_ in set(existing)] == existing, sort
        assert set(seen) - set(existing) <= created
    assert created  # the walks really were interleaved with creations


async def test_deleting_the_last_task_of_a_page_does_not_break_the_walk(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    tasks = await make_tasks(client, alice, count=10)
    for sort in ("due_at", "-created_at", "priority"):
        first = await list_ok(client, alice, {"sort": sort, "limit": "4"})
        last = first["items"][-1]["id"]
        response = await client.delete(task_url(last), headers=alice.headers)
        assert response.status_code == 204
        rest = await list_ok(
            client, alice, {"sort": sort, "limit": "100", "cursor": first["next_cursor"]}
        )
        remaining = [task for task in tasks if task["id"] != last]
        tasks = remaining
        assert [item["id"] for item in first["items"][:-1]] + [
            item["id"] for item in rest["items"]
        ] == expected_order(remaining, sort)


async def test_next_cursor_is_null_on_the_last_page(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for n in range(8):
        await create_task(client, alice, title=f"task {n}")
    first = await list_ok(client, alice, {"limit": "4"})
    assert len(first["items"]) == 4
    assert isinstance(first["next_cursor"], str)
    second = await list_ok(client, alice, {"limit": "4", "cursor": first["next_cursor"]})
    assert len(second["items"]) == 4
    assert second["next_cursor"] is None  # exactly full: no empty page after it


async def test_single_page_has_no_next_cursor(client: httpx.AsyncClient, alice: ApiUser) -> None:
    await create_task(client, alice)
    assert (await list_ok(client, alice, {"limit": "1"}))["next_cursor"] is None
    assert (await list_ok(client, alice))["next_cursor"] is None


async def test_page_size_may_change_between_pages(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    tasks = await make_tasks(client, alice, count=9)
    first = await list_ok(client, alice, {"sort": "due_at", "limit": "2"})
    rest = await list_ok(
        client, alice, {"sort": "due_at", "limit": "50", "cursor": first["next_cursor"]}
    )
    walked = first["items"] + rest["items"]
    assert_exactly_once_in_order(walked, expected_order(tasks, "due_at"))


async def test_cursor_survives_reordered_repeated_filters(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    tasks = await make_tasks(client, alice, count=12)
    first = await list_ok(client, alice, [("status", "todo"), ("status", "done"), ("limit", "2")])
    rest = await list_ok(
        client,
        alice,
        [
            ("status", "done"),
            ("status", "todo"),
            ("limit", "100"),
            ("cursor", first["next_cursor"]),
        ],
    )
    expected = expected_order(matching(tasks, {"status": ["todo", "done"]}), "-created_at")
    assert [item["id"] for item in first["items"] + rest["items"]] == expected


async def test_cursor_survives_the_same_due_bound_spelled_with_another_offset(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    tasks = await make_tasks(client, alice, count=12)
    first = await list_ok(client, alice, {"due_after": "2026-12-01T10:00:00Z", "limit": "2"})
    rest = await list_ok(
        client,
        alice,
        {"due_after": "2026-12-01T12:00:00+02:00", "limit": "100", "cursor": first["next_cursor"]},
    )
    expected = expected_order(matching(tasks, {"due_after": "2026-12-01T10:00:00Z"}), "-created_at")
    assert [item["id"] for item in first["items"] + rest["items"]] == expected


# --- refused cursors ---------------------------------------------------------------------------


async def first_cursor(
    client: httpx.AsyncClient, user: ApiUser, params: dict[str, str] | None = None
) -> str:
    body = await list_ok(client, user, {"limit": "2", **(params or {})})
    cursor = body["next_cursor"]
    assert isinstance(cursor, str)
    return cursor


def assert_bad_cursor(response: httpx.Response) -> None:
    body = assert_problem(response, 422)
    assert body["errors"][0]["loc"] == ["query", "cursor"]


async def test_cursor_with_a_flipped_character_in_its_body_is_422(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await make_tasks(client, alice, count=5)
    cursor = await first_cursor(client, alice)
    body, _, _mac = cursor.partition(".")
    for index in (0, len(body) // 2, len(body) - 1):
        tampered = flip(cursor, index)
        assert tampered != cursor
        assert_bad_cursor(await list_tasks(client, alice, {"limit": "2", "cursor": tampered}))


async def test_cursor_with_a_flipped_character_in_its_mac_is_422(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await make_tasks(client, alice, count=5)
    cursor = await first_cursor(client, alice)
    body, _, mac = cursor.partition(".")
    for index in (len(body) + 1, len(body) + 1 + len(mac) // 2, len(cursor) - 1):
        tampered = flip(cursor, index)
        assert_bad_cursor(await list_tasks(client, alice, {"limit": "2", "cursor": tampered}))


async def test_garbage_cursor_is_422(client: httpx.AsyncClient, alice: ApiUser) -> None:
    await make_tasks(client, alice, count=3)
    for garbage in (
        "garbage",
        "a.b",
        ".",
        "....",
        "eyJ2IjoxfQ",  # base64 JSON without a MAC
        "%%%.%%%",
        "é.é",
        "x" * 1025,
        "",
        "null",
    ):
        assert_bad_cursor(await list_tasks(client, alice, {"cursor": garbage}))


async def test_truncated_or_extended_cursor_is_422(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await make_tasks(client, alice, count=5)
    cursor = await first_cursor(client, alice)
    body, _, mac = cursor.partition(".")
    for variant in (cursor[:-1], cursor + "A", body, f"{body}.", f".{mac}", f"{cursor}.{mac}"):
        assert_bad_cursor(await list_tasks(client, alice, {"limit": "2", "cursor": variant}))


MISMATCHED_LISTINGS: list[tuple[dict[str, str], dict[str, str]]] = [
    ({"sort": "priority"}, {"sort": "-priority"}),
    ({"sort": "due_at"}, {"sort": "-due_at"}),
    ({"sort": "created_at"}, {"sort": "updated_at"}),
    ({}, {"sort": "created_at"}),
    ({"status": "todo"}, {"status": "done"}),
    ({"status": "todo"}, {}),
    ({}, {"priority": "low"}),
    ({"q": "task"}, {"q": "tas"}),
    ({"due_after": "2026-01-01T00:00:00Z"}, {"due_after": "2026-01-01T00:00:01Z"}),
    ({"due_after": "2026-01-01T00:00:00Z"}, {"due_before": "2026-01-01T00:00:00Z"}),
]


async def test_cursor_used_with_another_sort_or_filter_is_422(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await make_tasks(client, alice, count=12)
    for made_for, used_with in MISMATCHED_LISTINGS:
        cursor = await first_cursor(client, alice, made_for)
        response = await list_tasks(client, alice, {"limit": "2", **used_with, "cursor": cursor})
        assert_bad_cursor(response)
        # ...while it still works for the listing it was made for.
        ok = await list_tasks(client, alice, {"limit": "2", **made_for, "cursor": cursor})
        assert ok.status_code == 200, (made_for, used_with)


async def test_another_users_cursor_is_422(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    await make_tasks(client, alice, count=5)
    await make_tasks(client, bob, count=5)
    cursor = await first_cursor(client, alice)
    response = await list_tasks(client, bob, {"limit": "2", "cursor": cursor})
    assert_bad_cursor(response)
    assert alice.id not in response.text


def forged(settings: Settings, owner_id: str, sort: str, payload: dict[str, Any]) -> str:
    """A cursor with a valid MAC but contents the server never issues."""
    order = SortOrder(column=sort.lstrip("-"), descending=sort.startswith("-"))
    bound_to = listing_bound_to(caller_id=uuid.UUID(owner_id), order=order, filters=TaskFilters())
    scope = listing_scope(bound_to)
    key = derive_key(settings.JWT_SECRET.get_secret_value(), "task-cursor")
    return sign({"v": 1, "s": scope, **payload}, key)


ONE = str(uuid.UUID(int=1))
BAD_CURSOR_CONTENTS: list[tuple[str, dict[str, Any]]] = [
    ("-created_at", {"k": "2026-12-01T10:00:00", "i": ONE}),
    ("-created_at", {"k": "not a date", "i": ONE}),
    ("-created_at", {"k": 5, "i": ONE}),
    ("-created_at", {"k": None, "i": ONE}),
    ("-created_at", {"k": "2026-12-01T10:00:00+00:00", "i": "not-a-uuid"}),
    ("-created_at", {"k": "2026-12-01T10:00:00+00:00"}),
    ("-created_at", {"k": "2026-12-01T10:00:00+00:00", "i": 7}),
    ("due_at", {"k": "2026-12-01T10:00:00", "i": ONE}),
    ("priority", {"k": "high", "i": ONE}),
    ("priority", {"k": 99999, "i": ONE}),
    ("priority", {"k": True, "i": ONE}),
    ("priority", {"k": 2.5, "i": ONE}),
    ("priority", {"v": 2, "k": 2, "i": ONE}),
    ("priority", {"s": "another listing", "k": 2, "i": ONE}),
]


async def test_validly_signed_cursor_with_bad_contents_is_422_never_500(
    client: httpx.AsyncClient, alice: ApiUser, settings: Settings
) -> None:
    await make_tasks(client, alice, count=3)
    for sort, payload in BAD_CURSOR_CONTENTS:
        cursor = forged(settings, alice.id, sort, payload)
        response = await list_tasks(client, alice, {"sort": sort, "cursor": cursor})
        assert response.status_code == 422, (sort, payload, response.text)
        assert_bad_cursor(response)


async def test_forged_cursor_helper_matches_the_server_format(
    client: httpx.AsyncClient, alice: ApiUser, settings: Settings
) -> None:
    """Guards the test above: a well-formed forged cursor is accepted."""
    tasks = await make_tasks(client, alice, count=5)
    order = expected_order(tasks, "priority")
    pivot = next(task for task in tasks if task["id"] == order[1])
    cursor = forged(
        settings,
        alice.id,
        "priority",
        {"k": PRIORITIES.index(pivot["priority"]) + 1, "i": pivot["id"]},
    )
    body = await list_ok(client, alice, {"sort": "priority", "limit": "100", "cursor": cursor})
    assert [item["id"] for item in body["items"]] == order[2:]
