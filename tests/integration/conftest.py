"""Fixtures for the integration tests that run the real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.served import Server, start_server


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    """`python -m taskhub serve` with the test settings, healthy, killed after the test."""
    with start_server(database_url, tmp_path) as running:
        yield running
