"""The real server with METRICS_PORT: /metrics leaves the main port (which a public load balancer
forwards to) and is served on its own port for the app's lifetime; access lines are JSON."""

from __future__ import annotations

import signal
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import served_client
from tests.helpers import API
from tests.integration.served import (
    free_port,
    port_of,
    start_server,
    wait_for_exit,
    wait_until_refused,
)


@pytest.mark.usefixtures("app")  # the shared app's teardown empties the tables afterwards
def test_metrics_port_serves_metrics_only_there_and_closes_with_the_app(
    database_url: str, tmp_path: Path
) -> None:
    metrics_port = free_port()
    with start_server(
        database_url, tmp_path, METRICS_PORT=str(metrics_port), LOG_FORMAT="json"
    ) as server:
        with served_client(server.base_url) as http:
            refused = http.get(f"{API}/users/me")
            assert refused.status_code == 401
            on_main_port = http.get("/metrics")
            assert on_main_port.status_code == 404

        with served_client(f"http://127.0.0.1:{metrics_port}") as metrics:
            scraped = metrics.get("/metrics")
        assert scraped.status_code == 200
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(scraped.text)
            for sample in family.samples
        }
        me = (("method", "GET"), ("route", f"{API}/users/me"), ("status", "401"))
        assert samples[("taskhub_http_requests_total", me)] == 1
        unmatched = (("method", "GET"), ("route", "unmatched"), ("status", "404"))
        assert samples[("taskhub_http_requests_total", unmatched)] == 1  # /metrics, main port
        assert samples[("taskhub_auth_failures_total", (("reason", "missing"),))] == 1
        assert ("taskhub_db_pool_checked_out_connections", ()) in samples

        server.process.send_signal(signal.SIGTERM)
        assert wait_for_exit(server, signal.SIGTERM) == 0, server.output()

    assert wait_until_refused(metrics_port)
    assert wait_until_refused(port_of(server))
    lines = [orjson.loads(text) for text in server.output().splitlines() if text.startswith("{")]
    [access] = [
        line
        for line in lines
        if line["logger"] == "taskhub.access" and line.get("route") == f"{API}/users/me"
    ]
    assert access["method"] == "GET"
    assert access["status"] == 401
    assert access["request_id"] == refused.headers["x-request-id"]
    assert isinstance(access["duration_ms"], float)
    assert {"message": "metrics served", "port": metrics_port}.items() <= next(
        line for line in lines if line["message"] == "metrics served"
    ).items()
