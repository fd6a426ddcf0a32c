"""Property-based conformance: Schemathesis drives every operation of the app's own /openapi.json,
authenticated, and every response must be no 5xx, a documented status, a documented content type
and match its documented schema; and a request valid by the schema must not be refused as
malformed, unless for a reason no schema could say (UNSAYABLE_REFUSALS). Failures are fixed in the
app or the schema, never by loosening these checks.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from taskhub.main import create_app
from tests.conftest import find_leaks, make_settings
from tests.helpers import API, DEFAULT_PASSWORD

# Operations after which the caller's token no longer works: each example gets a fresh account.
SESSION_ENDING = {("POST", f"{API}/auth/logout"), ("DELETE", f"{API}/users/me")}


def no_leak(_ctx: Any, response: schemathesis.Response, case: schemathesis.Case[Any]) -> None:
    """The suite's response scanner, applied to every generated request too."""
    leaks = find_leaks("\n".join(f"{k}: {v}" for k, v in response.headers.items()))
    leaks += find_leaks(response.content.decode("utf-8", errors="replace"))
    assert not leaks, f"{case.method} {case.formatted_path}: response leaks {leaks}"


# Refusals of requests valid by the schema that no schema could foresee, as (the start of the
# error's location, words of its message). Anything else refused is a schema that says too little.
UNSAYABLE_REFUSALS = (
    # The shared base schema refuses NUL in every string; JSON Schema would need a pattern on
    # each string field to say so.
    ((), "must not contain the NUL character"),
    # Signed by the server: a client only sends back a next_cursor it was given.
    (("query", "cursor"), "is not a cursor of this listing"),
    # State, not shape: the key was first used with another body.
    (("header", "Idempotency-Key"), "was already used with a different request body"),
    # Password rules past the length: bytes, not characters; a list; the username.
    (("body",), "bytes when UTF-8 encoded"),
    (("body",), "is one of the most common passwords"),
    (("body",), "must not be the same as the username"),
    # A valid RFC 3339 time with no UTC equivalent (9999-12-31T23:00:00-05:00).
    ((), "is out of range once converted to UTC"),
    # A title or label of blanks: it is trimmed before its minLength applies.
    (("body", "title"), "at least 1 character"),
    (("body", "labels"), "at least 1 character"),
    # Labels are counted once per spelling ignoring case: up to 20 distinct in a longer list.
    (("body", "labels"), "distinct labels"),
    # State, not shape: an assignee must be a member of the task's project (or its creator).
    (("body", "assignee_id"), "is not a member of the task's project"),
    (("body", "assignee_id"), "a personal task can be assigned only to its creator"),
    # A token may be restricted only to projects its user is a member of.
    (("body", "project_ids"), "each must be a project you are a member of"),
)


def positive_data_accepted(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """Schemathesis's positive_data_acceptance: a request valid by the schema is not refused as
    malformed, except for the UNSAYABLE_REFUSALS."""
    if response.status_code == 422 and _only_unsayable(response.json().get("errors") or []):
        return None
    return positive_data_acceptance(ctx, response, case)


def _only_unsayable(errors: list[dict[str, Any]]) -> bool:
    return bool(errors) and all(
        any(
            tuple(error["loc"][: len(loc)]) == loc and words in error["msg"]
            for loc, words in UNSAYABLE_REFUSALS
        )
        for error in errors
    )


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    positive_data_accepted,
    no_leak,
]


class AppUnderTest:
    """The ASGI app the schema is bound to. The schema must exist when pytest collects this
    module, the test database only once fixtures run: this forwards every request (and the
    lifespan) to the app the `fuzzed_app` fixture builds."""

    def __init__(self) -> None:
        self.target: FastAPI | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.target is not None, "use the fuzzed_app fixture"
        await self.target(scope, receive, send)


def served_openapi_document() -> dict[str, Any]:
    """/openapi.json as TaskHub serves it. It does not depend on the database, which is never
    opened here (no lifespan runs)."""
    document_app = create_app(make_settings("sqlite:///:memory:"))
    # Not entered as a context manager: no lifespan runs, nothing connects.
    client = asgi.get_client(document_app)  # type: ignore[arg-type]  # FastAPI is an ASGI app
    with contextlib.closing(client):
        response = client.get("/openapi.json")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


APP_UNDER_TEST = AppUnderTest()
schema = schemathesis.openapi.from_dict(served_openapi_document())
schema.app = APP_UNDER_TEST


class Accounts:
    """Registers and logs in users through the same ASGI client Schemathesis uses, so every
    request runs on its event loop (where the app's database connections live)."""

    def __init__(self) -> None:
        self.shared: dict[str, str] | None = None

    def fresh(self) -> dict[str, str]:
        username = f"fuzz_{secrets.token_hex(6)}"
        with asgi.get_client(APP_UNDER_TEST) as client:
            registered = client.post(
                f"{API}/auth/register", json={"username": username, "password": DEFAULT_PASSWORD}
            )
            assert registered.status_code == 201, registered.text
            tokens = client.post(
                f"{API}/auth/login", data={"username": username, "password": DEFAULT_PASSWORD}
            )
            assert tokens.status_code == 200, tokens.text
        return {"Authorization": f"Bearer {tokens.json()['access_token']}"}

    def headers_for(self, case: schemathesis.Case[Any]) -> dict[str, str]:
        if (case.method.upper(), case.path) in SESSION_ENDING:
            return self.fresh()
        if self.shared is None:
            self.shared = self.fresh()
        return self.shared


@pytest.fixture(scope="module")
def fuzzed_app(database_url: str, app: FastAPI) -> Iterator[FastAPI]:
    """TaskHub over the test database without rate limits (Schemathesis sends bursts of logins).

    Depends on the suite's `app` so that the harness empties the tables after every test.
    """
    application = create_app(make_settings(database_url, RATE_LIMIT_ENABLED=False))
    APP_UNDER_TEST.target = application
    try:
        yield application
    finally:
        # The app's lifespan shutdown, on Schemathesis's event loop: the reminder loop stops and
        # the engine is disposed there, where its connections were opened.
        asgi.shutdown_lifespans()
        APP_UNDER_TEST.target = None


@pytest.fixture
def accounts(fuzzed_app: FastAPI) -> Accounts:
    """Per test: the harness deletes every account after each one."""
    return Accounts()


def test_every_operation_conforms_to_its_openapi_document(accounts: Accounts) -> None:
    """One test walks every operation (valid and invalid inputs), so that pytest-xdist, which
    schedules tests by node id, cannot fold Schemathesis's per-operation items into one."""
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 18, "the OpenAPI document lost operations"
    calls = [_fuzz(operation, accounts) for operation in operations]
    # Operations without inputs have a single possible case; the others get up to 15 each.
    assert all(calls), dict(zip(map(str, operations), calls, strict=True))
    assert sum(calls) >= 100


def _fuzz(operation: Any, accounts: Accounts) -> int:
    """Run the examples for one operation; returns how many cases were sent."""
    sent: list[None] = []
    cases = hypothesis.strategies.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @hypothesis.settings(
        max_examples=15,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=cases)
    def run(case: schemathesis.Case[Any]) -> None:
        # Hypothesis also draws strings from this suite's own source, the leak patterns among
        # them; stored and echoed back (a task title), they would read as a leak.
        hypothesis.assume(not find_leaks(repr((case.body, case.query, case.path_parameters))))
        sent.append(None)
        case.call_and_validate(headers=accounts.headers_for(case), checks=CHECKS)

    run()
    return len(sent)
