"""The real server, started the way a user starts it (`python -m taskhub serve`), over real HTTP."""

from __future__ import annotations

import signal

import pytest

from tests.conftest import served_client
from tests.helpers import API
from tests.integration.served import Server, wait_for_exit


@pytest.mark.usefixtures("app")  # the shared app's teardown empties the tables afterwards
def test_a_user_session_over_real_http_then_a_clean_shutdown(server: Server) -> None:
    username, password = "integration-user", "copper-window-sparrow-8"
    with served_client(server.base_url) as http:
        registered = http.post(
            f"{API}/auth/register", json={"username": username, "password": password}
        )
        assert registered.status_code == 201, registered.text
        assert "server" not in registered.headers
        assert registered.headers["x-content-type-options"] == "nosniff"

        logged_in = http.post(
            f"{API}/auth/login", data={"username": username, "password": password}
        )
        assert logged_in.status_code == 200, logged_in.text
        tokens = logged_in.json()
        assert tokens["token_type"] == "bearer"
        auth = {"Authorization": f"Bearer {tokens['access_token']}"}

        created = http.post(
            f"{API}/tasks", json={"title": "  ship it  ", "priority": "high"}, headers=auth
        )
        assert created.status_code == 201, created.text
        task = created.json()
        assert task["title"] == "ship it"
        assert created.headers["location"] == f"{API}/tasks/{task['id']}"

        listed = http.get(f"{API}/tasks", headers=auth)
        assert listed.status_code == 200
        assert [item["id"] for item in listed.json()["items"]] == [task["id"]]

        refreshed = http.post(
            f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text
        new_auth = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}

        logged_out = http.post(f"{API}/auth/logout", headers=new_auth)
        assert logged_out.status_code == 204

        rejected = http.get(f"{API}/tasks", headers=auth)
        assert rejected.status_code == 401
        assert rejected.headers["content-type"].startswith("application/problem+json")
        assert rejected.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert "server" not in rejected.headers
        assert rejected.headers["x-request-id"]

    server.process.send_signal(signal.SIGINT)
    returncode = wait_for_exit(server, signal.SIGINT)
    output = server.output()
    assert returncode == 0, output
    assert "Traceback" not in output
    assert password not in output
    assert tokens["access_token"] not in output
