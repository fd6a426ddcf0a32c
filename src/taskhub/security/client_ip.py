"""The client's address: the socket peer, or `X-Forwarded-For` only when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING

from taskhub.config import Network

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection


def _is_trusted(address: str, trusted: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_ip(connection: HTTPConnection, trusted: tuple[Network, ...]) -> str:
    """Walk `X-Forwarded-For` from the right, past our own proxies, to the first hop we don't run.

    A client can prepend anything it likes to the header; only the entries appended by trusted
    proxies are believed, so a spoofed header changes nothing.
    """
    peer = connection.client.host if connection.client else "unknown"
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    forwarded = [
        hop.strip() for hop in ",".join(connection.headers.getlist("x-forwarded-for")).split(",")
    ]
    hops = [hop for hop in forwarded if hop]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return _valid_or(hop, peer)
    # Every hop is one of ours: the request started on one of our machines, the first hop.
    return _valid_or(hops[0], peer) if hops else peer


def _valid_or(candidate: str, fallback: str) -> str:
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return fallback
