"""A client generated from the served /openapi.json with openapi-python-client, as a client
author would make one, drives the README walk-through against the real server.

What a client author gets: short method and model names (from the operationIds and the named
schemas), and for login, the one operation with two content types, a `body` that takes either a
`LoginForm` (sent as a form) or a `LoginJSON`. Login needs the README's workaround: for an
operation with several request content types, openapi-python-client 0.29 annotates `body` with
`| Unset` without importing `Unset` (its issue #1451), so the generated `api/auth/login.py`
fails to import until `Unset` is added to its `from ...types import` line. It also types that
`body` as optional, though the document requires it: pass one.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from http import HTTPStatus
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import served_client
from tests.helpers import DEFAULT_PASSWORD
from tests.integration.served import Server, start_server

PACKAGE = "taskhub_client"
GENERATE_SECONDS = 60
LOGIN_MODULE = "api/auth/login.py"
TYPES_IMPORT = re.compile(r"^from \.\.\.types import (?P<names>.*)$", re.MULTILINE)
USERNAME = "alice"


@dataclass
class Generated:
    server: Server
    package: Path
    login_needed_the_workaround: bool


@pytest.fixture(scope="module")
def generated(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    """The server, and the client package generated from its /openapi.json, importable as
    PACKAGE: made once for the module's tests."""
    tmp_path = tmp_path_factory.mktemp("generated-client")
    with start_server(database_url, tmp_path) as server:
        package = generate_client(server, tmp_path)
        needed = import_unset_in_login(package)
        sys.path.insert(0, str(package.parent))
        try:
            yield Generated(server, package, needed)
        finally:
            sys.path.remove(str(package.parent))
            for name in [name for name in sys.modules if name.partition(".")[0] == PACKAGE]:
                del sys.modules[name]


def generate_client(server: Server, tmp_path: Path) -> Path:
    """README's "Generating a client": the document fetched from the server, the client
    generated from that file (the generator needs no network)."""
    with served_client(server.base_url) as http:
        document = http.get("/openapi.json")
    assert document.status_code == 200, document.text
    (tmp_path / "openapi.json").write_bytes(document.content)
    # No post hooks: the default ones only reformat the generated code with ruff.
    (tmp_path / "config.json").write_text(json.dumps({"post_hooks": []}))
    package = tmp_path / "client" / PACKAGE
    command = [
        *(sys.executable, "-m", "openapi_python_client", "generate"),
        *("--path", str(tmp_path / "openapi.json")),
        *("--meta", "none", "--output-path", str(package)),
        *("--config", str(tmp_path / "config.json"), "--fail-on-warning"),
    ]
    result = subprocess.run(  # noqa: S603 - our own interpreter, our own arguments
        command, capture_output=True, text=True, timeout=GENERATE_SECONDS, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return package


def import_unset_in_login(package: Path) -> bool:
    """README's workaround for the generator's issue #1451; True if it was needed."""
    login = package / LOGIN_MODULE
    source = login.read_text()
    found = TYPES_IMPORT.search(source)
    assert found is not None, source
    if "Unset" in found["names"].replace(" ", "").split(","):
        return False
    login.write_text(TYPES_IMPORT.sub(r"from ...types import Unset, \g<names>", source, count=1))
    return True


def module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def model(name: str) -> Any:
    return getattr(module("models"), name)


def test_names_come_from_the_operation_ids_and_schema_names(generated: Generated) -> None:
    package = generated.package
    modules = {path.relative_to(package).as_posix() for path in package.rglob("*.py")}

    assert {
        "api/auth/register_user.py",
        "api/auth/login.py",
        "api/auth/refresh_tokens.py",
        "api/auth/logout.py",
        "api/users/read_current_user.py",
        "api/tasks/create_task.py",
        "api/tasks/list_tasks.py",
        "api/notifications/mark_notification_read.py",
        "models/login_form.py",
        "models/login_json.py",
    } <= modules
    assert [name for name in modules if "api_v1" in name or "_post" in name] == []
    assert {"LoginForm", "LoginJSON", "UserRegister", "TaskCreate", "TokenPair"} <= set(
        module("models").__all__
    )


def test_login_still_needs_the_documented_workaround(generated: Generated) -> None:
    assert generated.login_needed_the_workaround, (
        "openapi-python-client now imports Unset in api/auth/login.py: "
        "drop the workaround from README.md and from this test"
    )


@pytest.mark.usefixtures("app")  # the shared app's teardown empties the tables afterwards
def test_the_readme_walk_through_through_the_generated_client(generated: Generated) -> None:
    base_url = generated.server.base_url
    client = module("client")
    with client.Client(base_url=base_url, raise_on_unexpected_status=True) as anonymous:
        # 1. Register (no token is issued here)
        registered = module("api.auth.register_user").sync_detailed(
            client=anonymous,
            body=model("UserRegister")(username=USERNAME, password=DEFAULT_PASSWORD),
        )
        assert registered.status_code == HTTPStatus.CREATED, registered.content
        assert registered.parsed.username == USERNAME

        # 2. Log in with the OAuth2 form, or the same fields as JSON
        login = module("api.auth.login")
        by_json = login.sync(
            client=anonymous, body=model("LoginJSON")(username=USERNAME, password=DEFAULT_PASSWORD)
        )
        assert isinstance(by_json, model("TokenPair")), by_json
        tokens = login.sync(
            client=anonymous, body=model("LoginForm")(username=USERNAME, password=DEFAULT_PASSWORD)
        )
        assert isinstance(tokens, model("TokenPair")), tokens
        assert tokens.token_type == "bearer"

        with client.AuthenticatedClient(
            base_url=base_url, token=tokens.access_token, raise_on_unexpected_status=True
        ) as user:
            # 3. Create a task
            due_at = datetime(2030, 1, 15, 9, 0, tzinfo=timezone(timedelta(hours=1)))
            created = module("api.tasks.create_task").sync_detailed(
                client=user,
                body=model("TaskCreate")(
                    title="Write the report",
                    priority=model("TaskCreatePriority")("high"),
                    due_at=due_at,
                ),
            )
            assert created.status_code == HTTPStatus.CREATED, created.content
            task = created.parsed
            assert created.headers["location"] == f"/api/v1/tasks/{task.id}"
            assert task.due_at == datetime(2030, 1, 15, 8, 0, tzinfo=UTC)

            # 4. List tasks (filters, sort and cursor are optional)
            list_tasks = module("api.tasks.list_tasks")
            page = list_tasks.sync(
                client=user,
                status=[model("TaskStatus")("todo")],
                sort=model("ListTasksSort")("-priority"),
                limit=10,
            )
            assert isinstance(page, model("TaskPage")), page
            assert [item.id for item in page.items] == [task.id]
            assert page.next_cursor is None
            assert list_tasks.sync(client=user, status=[model("TaskStatus")("done")]).items == []

        # 5. Refresh: a new pair; the old refresh token is spent
        refreshed = module("api.auth.refresh_tokens").sync(
            client=anonymous, body=model("RefreshRequest")(refresh_token=tokens.refresh_token)
        )
        assert isinstance(refreshed, model("TokenPair")), refreshed

    # 6. Log out: the session's tokens stop working at once
    with client.AuthenticatedClient(
        base_url=base_url, token=refreshed.access_token, raise_on_unexpected_status=True
    ) as user:
        logged_out = module("api.auth.logout").sync_detailed(client=user)
        assert logged_out.status_code == HTTPStatus.NO_CONTENT
        me = module("api.users.read_current_user").sync_detailed(client=user)
        assert me.status_code == HTTPStatus.UNAUTHORIZED
        assert isinstance(me.parsed, model("Problem"))
        assert me.parsed.status == HTTPStatus.UNAUTHORIZED
