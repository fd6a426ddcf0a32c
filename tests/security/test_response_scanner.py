"""The response scanner that tests/conftest.py hooks into every test client (`client_of`): no
response in the whole suite may carry a password hash or a stack trace. These tests show it can
fail.
"""

from __future__ import annotations

import bcrypt
import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from taskhub.main import create_app
from tests.conftest import client_of, find_leaks, make_settings, response_leaks
from tests.helpers import API, ApiUser

PLANTED_HASH = bcrypt.hashpw(b"plum-kettle-orbit-42", bcrypt.gensalt(rounds=4)).decode()
ARGON2_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"
PLANTED_TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/taskhub/src/taskhub/tasks/service.py", line 42, in get_task\n'
    "    raise RuntimeError('boom')\n"
    "RuntimeError: boom\n"
)


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        (f'{{"password_hash": "{PLANTED_HASH}"}}', "bcrypt hash"),
        (PLANTED_HASH.replace("$2b$", "$2a$"), "bcrypt hash"),
        (PLANTED_HASH.replace("$2b$", "$2y$"), "bcrypt hash"),
        (ARGON2_HASH, "argon2 hash"),
        (PLANTED_TRACEBACK, "stack trace"),
        ('  File "/usr/lib/python3.11/asyncio/runners.py", line 118', "stack frame"),
    ],
    # Fixed ids: the planted hash is made at import, and pytest-xdist workers must agree.
    ids=["bcrypt-in-json", "bcrypt-2a", "bcrypt-2y", "argon2", "traceback", "stack-frame"],
)
def test_scanner_finds_a_planted_leak(text: str, leak: str) -> None:
    assert leak in find_leaks(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"id": "6f1c1d2e-3b4a-4c5d-8e9f-0a1b2c3d4e5f", "username": "alice"}',
        "price is $2 per item",
        '{"detail": "File not found"}',
        "",
    ],
)
def test_scanner_passes_ordinary_text(text: str) -> None:
    assert find_leaks(text) == []


async def test_scanner_reads_bodies_and_headers_of_real_responses() -> None:
    """The same function the conftest hook calls, on responses from an app that leaks (through a
    bare client: the suite's own would refuse these responses)."""
    leaky = FastAPI()

    @leaky.get("/hash")
    async def hash_in_body() -> dict[str, str]:
        return {"password_hash": PLANTED_HASH}

    @leaky.get("/trace")
    async def trace_in_body() -> PlainTextResponse:
        return PlainTextResponse(PLANTED_TRACEBACK, status_code=500)

    @leaky.get("/header")
    async def hash_in_header() -> PlainTextResponse:
        return PlainTextResponse("ok", headers={"X-Debug": PLANTED_HASH})

    @leaky.get("/clean")
    async def clean() -> dict[str, str]:
        return {"status": "ok"}

    transport = httpx.ASGITransport(app=leaky)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        assert response_leaks(await http.get("/hash")) == ["bcrypt hash"]
        assert response_leaks(await http.get("/trace")) == ["stack trace", "stack frame"]
        assert response_leaks(await http.get("/header")) == ["bcrypt hash"]
        assert response_leaks(await http.get("/clean")) == []


async def test_the_client_fails_the_request_and_again_on_closing(database_url: str) -> None:
    """Every test client (`client_of`), on TaskHub itself with a planted route: the request
    raises, and the leak is recorded so that closing the client fails too, for a test that
    caught the first AssertionError."""
    application = create_app(make_settings(database_url))

    @application.get(f"{API}/planted-leak", include_in_schema=False)
    async def planted() -> PlainTextResponse:
        return PlainTextResponse(PLANTED_TRACEBACK)

    try:
        with pytest.raises(AssertionError, match="responses leaked") as on_closing:  # noqa: PT012 - closing is under test
            async with client_of(application) as http:
                assert (await http.get("/health")).status_code == 200
                with pytest.raises(AssertionError, match="stack trace"):
                    await http.get(f"{API}/planted-leak")
    finally:
        await application.state.database.dispose()
    assert f"['GET {API}/planted-leak: stack trace, stack frame']" in str(on_closing.value)


async def test_the_suite_client_carries_the_hook(client: httpx.AsyncClient, alice: ApiUser) -> None:
    """The fixture every test uses is hooked, and TaskHub's own responses pass it."""
    assert "scan_for_leaks" in [hook.__name__ for hook in client.event_hooks["response"]]
    response = await client.get(f"{API}/users/me", headers=alice.headers)
    assert response.status_code == 200
    assert response_leaks(response) == []
