"""The client's address: the socket peer, or X-Forwarded-For only when the peer is one of
TRUSTED_PROXIES, walked from the right so that what a client prepends is never believed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request

from taskhub.config import parse_trusted_proxies
from taskhub.main import create_app
from taskhub.security.client_ip import client_ip
from tests.conftest import client_of, make_settings
from tests.helpers import API, DEFAULT_PASSWORD

LOGIN = f"{API}/auth/login"
REGISTER = f"{API}/auth/register"
PROXY = "10.0.0.5"
CLIENT = "203.0.113.9"


def request_from(peer: str | None, *forwarded_for: str) -> Request:
    """A request as the ASGI server hands it over: socket peer and raw X-Forwarded-For lines."""
    headers = [(b"x-forwarded-for", value.encode("latin-1")) for value in forwarded_for]
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": headers,
        "client": (peer, 50_000) if peer is not None else None,
    }
    return Request(scope)


def resolve(peer: str | None, *forwarded_for: str, trusted: str = PROXY) -> str:
    return client_ip(request_from(peer, *forwarded_for), parse_trusted_proxies(trusted))


class TestTrustedProxiesSetting:
    def test_addresses_and_cidr_blocks_are_accepted_around_spaces(self) -> None:
        assert parse_trusted_proxies(" 10.0.0.5, 192.168.0.0/16 ,2001:db8::/32,") == (
            ipaddress.ip_network("10.0.0.5/32"),
            ipaddress.ip_network("192.168.0.0/16"),
            ipaddress.ip_network("2001:db8::/32"),
        )

    def test_a_block_written_with_host_bits_means_its_network(self) -> None:
        assert parse_trusted_proxies("10.1.2.3/8") == (ipaddress.ip_network("10.0.0.0/8"),)

    @pytest.mark.parametrize("value", ["", "   ", ",", " , "])
    def test_empty_trusts_nobody(self, value: str) -> None:
        assert parse_trusted_proxies(value) == ()

    def test_a_value_that_is_no_address_is_refused(self) -> None:
        with pytest.raises(ValueError, match="does not appear to be"):
            parse_trusted_proxies("10.0.0.5, proxy.internal")


class TestSocketPeer:
    def test_without_trusted_proxies_the_socket_peer_is_the_client(self) -> None:
        assert resolve(CLIENT, "198.51.100.1", trusted="") == CLIENT

    def test_forwarded_for_from_an_untrusted_peer_is_ignored(self) -> None:
        assert resolve("10.0.0.6", "198.51.100.1") == "10.0.0.6"

    def test_a_trusted_peer_without_forwarded_for_is_the_client(self) -> None:
        assert resolve(PROXY) == PROXY

    def test_a_request_without_a_socket_peer_gets_one_shared_name(self) -> None:
        assert resolve(None, "198.51.100.1") == "unknown"

    def test_a_peer_that_is_not_an_address_is_never_trusted(self) -> None:
        assert resolve("testclient", "198.51.100.1", trusted="0.0.0.0/0") == "testclient"


class TestForwardedChain:
    def test_a_trusted_proxy_names_the_client(self) -> None:
        assert resolve(PROXY, CLIENT) == CLIENT

    def test_the_chain_is_walked_from_the_right_past_every_trusted_proxy(self) -> None:
        chain = f"198.51.100.1, {CLIENT}, 10.0.1.7, 10.0.1.8"

        assert resolve(PROXY, chain, trusted=f"{PROXY}, 10.0.1.0/24") == CLIENT

    def test_addresses_a_client_prepends_are_not_believed(self) -> None:
        assert resolve(PROXY, f"1.1.1.1, 8.8.8.8, {CLIENT}") == CLIENT

    def test_a_client_naming_a_trusted_proxy_does_not_skip_its_own_hop(self) -> None:
        assert resolve(PROXY, f"198.51.100.1, {PROXY}, {CLIENT}") == CLIENT

    def test_several_header_lines_are_one_list_in_order(self) -> None:
        trusted = f"{PROXY}, 10.0.1.0/24"

        assert resolve(PROXY, "198.51.100.1", f"{CLIENT}, 10.0.1.7", trusted=trusted) == CLIENT

    def test_when_every_hop_is_a_trusted_proxy_the_first_hop_is_the_client(self) -> None:
        assert resolve(PROXY, "10.0.2.20, 10.0.1.7", trusted="10.0.0.0/8") == "10.0.2.20"

    def test_ipv6_hops_are_compared_and_returned_in_canonical_form(self) -> None:
        trusted = "2001:db8:ffff::/48"

        assert resolve("2001:db8:ffff::5", "2001:DB8:0:0::1", trusted=trusted) == "2001:db8::1"
        assert resolve("2001:db8:ffff::5", "2001:db8:ffff::9", trusted=trusted) == (
            "2001:db8:ffff::9"
        )


class TestGarbageInTheHeader:
    @pytest.mark.parametrize(
        "header",
        [
            "",
            " , ,, ",
            "not-an-ip",
            "unknown",
            f"{CLIENT}:443",
            f"[{CLIENT}]",
            "999.1.1.1",
            "203.0.113.9 198.51.100.1",
            "\xe9\xff",
            "x" * 10_000,
            f"{CLIENT}, garbage",
        ],
    )
    def test_a_nearest_hop_that_is_no_address_means_the_proxy_itself(self, header: str) -> None:
        assert resolve(PROXY, header) == PROXY

    def test_garbage_a_client_prepends_is_walked_past(self) -> None:
        assert resolve(PROXY, f"garbage, ;drop table, {CLIENT}") == CLIENT

    def test_empty_entries_between_hops_are_skipped(self) -> None:
        assert resolve(PROXY, f"198.51.100.1,,  ,{CLIENT}, ") == CLIENT


# --- the same rules, end to end: the per-address login limit follows the resolved address ---


class Apps:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.built: list[FastAPI] = []

    def build(self, **overrides: object) -> FastAPI:
        application = create_app(make_settings(self.database_url, **overrides))
        self.built.append(application)
        return application


@pytest.fixture
async def apps(app: FastAPI, database_url: str) -> AsyncIterator[Apps]:
    # `app` is requested so the conftest deletes the rows these tests create.
    made = Apps(database_url)
    yield made
    for application in made.built:
        await application.state.database.dispose()


@pytest.fixture
async def via_proxy(apps: Apps) -> AsyncIterator[httpx.AsyncClient]:
    """An app behind PROXY (trusted) with 2 failed logins per address and minute."""
    application = apps.build(TRUSTED_PROXIES=PROXY, RATE_LIMIT_LOGIN_IP="2/minute")
    async with client_of(application, peer=(PROXY, 50_000)) as http:
        yield http


async def failed_login(http: httpx.AsyncClient, username: str, forwarded_for: str) -> int:
    response = await http.post(
        LOGIN,
        data={"username": username, "password": "wrong-password-1"},
        headers={"X-Forwarded-For": forwarded_for},
    )
    assert response.status_code in {401, 429}, response.text
    return response.status_code


class TestAddressLimitFollowsTheResolvedAddress:
    async def test_clients_behind_a_trusted_proxy_each_have_their_own_address_limit(
        self, via_proxy: httpx.AsyncClient
    ) -> None:
        assert await failed_login(via_proxy, "user-a", "198.51.100.1") == 401
        assert await failed_login(via_proxy, "user-b", "198.51.100.1") == 401
        assert await failed_login(via_proxy, "user-c", "198.51.100.1") == 429

        assert await failed_login(via_proxy, "user-d", "198.51.100.2") == 401

    async def test_hops_prepended_through_a_trusted_proxy_do_not_change_the_address(
        self, via_proxy: httpx.AsyncClient
    ) -> None:
        statuses = [
            await failed_login(via_proxy, f"user-{n}", f"192.0.2.{n}, 198.51.100.1")
            for n in range(1, 4)
        ]

        assert statuses == [401, 401, 429]

    async def test_garbage_from_a_trusted_proxy_counts_against_the_proxy(
        self, via_proxy: httpx.AsyncClient
    ) -> None:
        statuses = [await failed_login(via_proxy, f"user-{n}", f"garbage-{n}") for n in range(1, 4)]

        assert statuses == [401, 401, 429]

    async def test_an_untrusted_peer_cannot_dodge_the_limit_with_forwarded_for(
        self, apps: Apps
    ) -> None:
        application = apps.build(TRUSTED_PROXIES=PROXY, RATE_LIMIT_LOGIN_IP="2/minute")
        async with client_of(application, peer=("10.0.0.6", 50_000)) as http:
            statuses = [
                await failed_login(http, f"user-{n}", f"198.51.100.{n}") for n in range(1, 4)
            ]

        assert statuses == [401, 401, 429]

    async def test_without_trusted_proxies_forwarded_for_is_ignored_even_from_a_proxy(
        self, apps: Apps
    ) -> None:
        application = apps.build(RATE_LIMIT_LOGIN_IP="2/minute")
        async with client_of(application, peer=(PROXY, 50_000)) as http:
            statuses = [
                await failed_login(http, f"user-{n}", f"198.51.100.{n}") for n in range(1, 4)
            ]

        assert statuses == [401, 401, 429]

    async def test_registrations_are_counted_per_forwarded_client(self, apps: Apps) -> None:
        application = apps.build(TRUSTED_PROXIES=PROXY, RATE_LIMIT_REGISTER="1/hour")
        async with client_of(application, peer=(PROXY, 50_000)) as http:

            async def register(username: str, forwarded_for: str) -> int:
                response = await http.post(
                    REGISTER,
                    json={"username": username, "password": DEFAULT_PASSWORD},
                    headers={"X-Forwarded-For": forwarded_for},
                )
                return response.status_code

            assert await register("first", "198.51.100.1") == 201
            assert await register("second", "203.0.113.50, 198.51.100.1") == 429
            assert await register("third", "198.51.100.2") == 201
