"""GET /tasks?q=: a case-insensitive substring of the title or description, in any script,
where LIKE's wildcards and escape character are plain characters."""

# ruff: noqa: RUF001 - Greek and Cyrillic letters are the point of these tests

from __future__ import annotations

import httpx

from tests.helpers import API, ApiUser, assert_problem, create_task
from tests.tasks.helpers import expected_order, list_ids, task_url, walk


async def titles_found(client: httpx.AsyncClient, user: ApiUser, q: str) -> set[str]:
    response = await client.get(
        "/api/v1/tasks", params={"q": q, "limit": "100"}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    return {item["title"] for item in response.json()["items"]}


# (title, q): q finds exactly that title among all of them.
CASE_PAIRS = [
    ("ÄPFEL kaufen", "äpfel"),
    ("älter werden", "ÄLTER"),
    ("ΣΟΦΙΑ", "σοφ"),
    ("σελήνη", "ΣΕΛΉΝΗ"),
    ("ΟΔΟΣ", "οδος"),  # final sigma folds like any sigma
    ("νόμος τέλος", "ΝΌΜΟΣ"),
    ("Straße", "STRASSE"),
    ("FUSSBALL", "fußball"),
    ("привет мир", "ПРИВЕТ"),
    ("ЗДРАВСТВУЙ", "здравствуй"),
    ("Ǆemal", "ǆemal"),
    ("ÉCOLE", "école"),
    ("MiXeD CaSe", "mixed case"),
]


async def test_q_is_case_insensitive_in_any_script(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    for title, _ in CASE_PAIRS:
        await create_task(client, alice, title=title)
    await create_task(client, alice, title="unrelated")
    for title, q in CASE_PAIRS:
        assert await titles_found(client, alice, q) == {title}, q
    assert await titles_found(client, alice, "ä") == {"ÄPFEL kaufen", "älter werden"}
    assert await titles_found(client, alice, "Ä") == {"ÄPFEL kaufen", "älter werden"}
    sigma = {"ΣΟΦΙΑ", "σελήνη", "ΟΔΟΣ", "νόμος τέλος"}
    assert await titles_found(client, alice, "σ") == sigma
    assert await titles_found(client, alice, "Σ") == sigma
    assert await titles_found(client, alice, "ς") == sigma


async def test_q_follows_python_casefold_for_sharp_s(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await create_task(client, alice, title="Maße")
    await create_task(client, alice, title="MASSE")
    await create_task(client, alice, title="Mase")
    assert await titles_found(client, alice, "ß") == {"Maße", "MASSE"}
    assert await titles_found(client, alice, "ss") == {"Maße", "MASSE"}
    assert await titles_found(client, alice, "SS") == {"Maße", "MASSE"}
    assert await titles_found(client, alice, "s") == {"Maße", "MASSE", "Mase"}


async def test_q_matches_the_title_or_the_description(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    in_title = await create_task(client, alice, title="Buy Milk")
    in_description = await create_task(
        client, alice, title="groceries", description="remember the MILK"
    )
    await create_task(client, alice, title="bread", description="wholemeal")
    found = await list_ids(client, alice, {"q": "milk"})
    assert set(found) == {in_title["id"], in_description["id"]}


async def test_q_is_a_substring_match(client: httpx.AsyncClient, alice: ApiUser) -> None:
    await create_task(client, alice, title="refactoring")
    assert await titles_found(client, alice, "factor") == {"refactoring"}
    assert await titles_found(client, alice, "ing") == {"refactoring"}
    assert await titles_found(client, alice, "refactorings") == set()


async def test_q_does_not_match_across_words_that_are_not_adjacent(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await create_task(client, alice, title="write report")
    assert await titles_found(client, alice, "write  report") == set()
    assert await titles_found(client, alice, "writereport") == set()
    assert await titles_found(client, alice, "write report") == {"write report"}


async def test_q_percent_is_a_literal_character(client: httpx.AsyncClient, alice: ApiUser) -> None:
    await create_task(client, alice, title="100% done")
    await create_task(client, alice, title="plain")
    await create_task(client, alice, title="other", description="no percent sign")
    assert await titles_found(client, alice, "%") == {"100% done"}
    assert await titles_found(client, alice, "0%") == {"100% done"}
    assert await titles_found(client, alice, "1%e") == set()


async def test_q_underscore_is_a_literal_character(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await create_task(client, alice, title="abc")
    await create_task(client, alice, title="a_c")
    assert await titles_found(client, alice, "a_c") == {"a_c"}
    assert await titles_found(client, alice, "_") == {"a_c"}
    assert await titles_found(client, alice, "___") == set()


async def test_q_backslash_is_a_literal_character(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await create_task(client, alice, title="C:\\temp\\file")
    await create_task(client, alice, title="C:tempfile")
    await create_task(client, alice, title="100%")
    await create_task(client, alice, title="a_b")
    assert await titles_found(client, alice, "\\") == {"C:\\temp\\file"}
    assert await titles_found(client, alice, "\\t") == {"C:\\temp\\file"}
    assert await titles_found(client, alice, ":\\temp\\") == {"C:\\temp\\file"}
    assert await titles_found(client, alice, "\\%") == set()
    assert await titles_found(client, alice, "\\_") == set()
    assert await titles_found(client, alice, "\\\\") == set()


async def test_q_with_quotes_and_sql_is_just_text(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await create_task(client, alice, title='it\'s "quoted"')
    await create_task(client, alice, title="other")
    assert await titles_found(client, alice, "'") == {'it\'s "quoted"'}
    assert await titles_found(client, alice, '"quoted"') == {'it\'s "quoted"'}
    assert await titles_found(client, alice, "' OR '1'='1") == set()


async def test_q_finds_emoji_and_combining_characters(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await create_task(client, alice, title="party \N{PARTY POPPER} time")
    await create_task(client, alice, title="cafe\N{COMBINING ACUTE ACCENT}")
    assert await titles_found(client, alice, "\N{PARTY POPPER}") == {"party \N{PARTY POPPER} time"}
    assert await titles_found(client, alice, "E\N{COMBINING ACUTE ACCENT}") == {
        "cafe\N{COMBINING ACUTE ACCENT}"
    }


async def test_q_follows_the_new_title_after_patch(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice, title="Old Name")
    response = await client.patch(
        task_url(task["id"]), json={"title": "Brand NEW"}, headers=alice.headers
    )
    assert response.status_code == 200
    assert await titles_found(client, alice, "old") == set()
    assert await titles_found(client, alice, "brand new") == {"Brand NEW"}


async def test_q_follows_the_description_after_patch_and_clear(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice, title="t", description="first words")
    url = task_url(task["id"])
    await client.patch(url, json={"description": "SECOND words"}, headers=alice.headers)
    assert await list_ids(client, alice, {"q": "first"}) == []
    assert await list_ids(client, alice, {"q": "second"}) == [task["id"]]
    await client.patch(url, json={"description": None}, headers=alice.headers)
    assert await list_ids(client, alice, {"q": "second"}) == []
    assert await list_ids(client, alice, {"q": "words"}) == []


async def test_q_still_matches_after_patching_another_field(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    task = await create_task(client, alice, title="Keep Me", description="details")
    await client.patch(task_url(task["id"]), json={"priority": "high"}, headers=alice.headers)
    assert await list_ids(client, alice, {"q": "keep"}) == [task["id"]]
    assert await list_ids(client, alice, {"q": "DETAILS"}) == [task["id"]]


async def test_q_searches_the_trimmed_title(client: httpx.AsyncClient, alice: ApiUser) -> None:
    await create_task(client, alice, title="   spaced   ")
    assert await titles_found(client, alice, "spaced") == {"spaced"}
    assert await titles_found(client, alice, "spaced ") == set()


async def test_q_only_searches_the_callers_tasks(
    client: httpx.AsyncClient, alice: ApiUser, bob: ApiUser
) -> None:
    await create_task(client, alice, title="secret plan")
    assert await titles_found(client, bob, "secret") == set()
    assert await titles_found(client, alice, "secret") == {"secret plan"}


async def test_q_results_paginate_with_the_same_q(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    wanted = [await create_task(client, alice, title=f"Match {n}") for n in range(7)]
    for n in range(3):
        await create_task(client, alice, title=f"other {n}")
    walked = await walk(client, alice, {"q": "MATCH"}, limit=2)
    assert [item["id"] for item in walked] == expected_order(wanted, "-created_at")


async def test_search_never_matches_across_the_title_description_boundary(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    await create_task(client, alice, title="foo", description="bar")
    for q in ("foo\nbar", "foobar", "\n"):
        response = await client.get(f"{API}/tasks", params={"q": q}, headers=alice.headers)
        assert response.status_code == 200
        assert response.json()["items"] == [], q


async def test_search_term_with_the_separator_character_is_422(
    client: httpx.AsyncClient, alice: ApiUser
) -> None:
    response = await client.get(f"{API}/tasks", params={"q": "a\x1fb"}, headers=alice.headers)
    assert_problem(response, 422)
