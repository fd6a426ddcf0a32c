"""The per-address login limit on the real server, started by the run command over real HTTP:
uvicorn must not believe X-Forwarded-For itself (proxy headers off), and neither do we when
TRUSTED_PROXIES is empty, so a client on loopback cannot pick its own address.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import served_client
from tests.helpers import API
from tests.integration.served import start_server

PASSWORD = "copper-window-sparrow-8"


@pytest.fixture
def base_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """`python -m taskhub serve` with 3 failed logins per address and minute, no trusted proxy."""
    with start_server(
        database_url, tmp_path, RATE_LIMIT_LOGIN_IP="3/minute", TRUSTED_PROXIES=""
    ) as server:
        yield server.base_url


@pytest.mark.usefixtures("app")  # the shared app's teardown empties the tables afterwards
def test_a_spoofed_forwarded_for_from_loopback_does_not_change_the_address(
    base_url: str,
) -> None:
    with served_client(base_url) as http:
        registered = http.post(
            f"{API}/auth/register", json={"username": "served-user", "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text

        statuses = []
        for n in range(1, 5):
            response = http.post(
                f"{API}/auth/login",
                data={"username": f"nobody-{n}", "password": "wrong-password-1"},
                headers={"X-Forwarded-For": f"198.51.100.{n}"},
            )
            statuses.append(response.status_code)

        assert statuses == [401, 401, 401, 429]
        assert response.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(response.headers["retry-after"]) <= 60

        # The address, not the username, is limited: even the right password is refused now.
        right = http.post(
            f"{API}/auth/login",
            data={"username": "served-user", "password": PASSWORD},
            headers={"X-Forwarded-For": "192.0.2.77"},
        )
        assert right.status_code == 429, right.text
