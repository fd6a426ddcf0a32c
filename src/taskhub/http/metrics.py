"""Prometheus metrics and the one access log line per request.

Every label value comes from a fixed set (route templates, methods, statuses, failure reasons),
so no user data, id or token can ever become a label. Each app has its own registry, so any
number of apps (tests) can live in one process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.routing import iter_route_contexts
from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from starlette.types import Scope

from taskhub.config import Settings
from taskhub.context import RequestContext
from taskhub.db.runner import Database

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("taskhub.access")

METRICS_PATH = "/metrics"
# The label of a request no route took: an unknown path, or one refused before routing (413, 415).
UNMATCHED_ROUTE = "unmatched"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Probes and scrapes arrive every few seconds: their access lines are DEBUG unless they fail.
QUIET_ROUTES = frozenset({"/health", "/ready", METRICS_PATH})


class DatabasePoolCollector(Collector):
    """Connection-pool use, read from the database's pool at scrape time."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def collect(self) -> Iterable[Metric]:
        stats = self.database.pool_stats()
        if stats is None:  # an unpooled engine keeps nothing to count
            return
        yield GaugeMetricFamily(
            "taskhub_db_pool_checked_out_connections",
            "Database connections currently in use by requests or jobs",
            value=stats.in_use,
        )
        yield GaugeMetricFamily(
            "taskhub_db_pool_idle_connections",
            "Database connections open and waiting in the pool",
            value=stats.idle,
        )
        yield GaugeMetricFamily(
            "taskhub_db_pool_size",
            "Connections the pool may hold (DB_POOL_SIZE); requests wait when all are in use",
            value=stats.size,
        )


class Metrics:
    """The app's own registry and the metrics recorded into it."""

    def __init__(self, database: Database) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("method", "route", "status")
        self.requests = Counter(
            "taskhub_http_requests",
            "HTTP requests by method, route template and status",
            labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            "taskhub_http_request_duration_seconds",
            "Time from request to the last byte of the response, by route template and status",
            labels,
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "taskhub_auth_failures",
            "Refused authentication by reason: missing, malformed, unknown_key, bad_signature, "
            "expired, invalid_claims, wrong_type, session_inactive (access tokens), "
            "token_inactive, insufficient_scope (personal access tokens), "
            "invalid_refresh_token, bad_credentials, rate_limited",
            ("reason",),
            registry=self.registry,
        )
        # The children of one label set, found once: `.labels()` costs more than the update.
        self._by_labels: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.registry.register(DatabasePoolCollector(database))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def observe(self, *, method: str, route: str, status: int, seconds: float) -> None:
        children = self._by_labels.get((method, route, status))
        if children is None:
            labels = (method, route, str(status))
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._by_labels[method, route, status] = children
        requests, latency = children
        requests.inc()
        latency.observe(seconds)

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The registry in the format the scraper asked for (Prometheus text by default)."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


def install_metrics(app: FastAPI, settings: Settings, database: Database) -> AccessLog:
    """With METRICS_ENABLED, set up the metrics, served at /metrics on this app or, with
    METRICS_PORT, only on that port (see `serve_metrics`).

    Returns what records each request: the middleware that sees every final status (the 413,
    415 and last-resort 500 responses included) must hand it each outcome.
    """
    metrics = Metrics(database) if settings.METRICS_ENABLED else None
    app.state.metrics = metrics
    if metrics is not None and not settings.METRICS_PORT:
        app.add_api_route(METRICS_PATH, scrape_metrics, methods=["GET"], include_in_schema=False)
    return AccessLog(metrics)


async def scrape_metrics(request: Request) -> Response:
    """Prometheus exposition. No token: keep it off the public load balancer (see deploy docs)."""
    metrics: Metrics = request.app.state.metrics
    body, content_type = metrics.exposition(request.headers.get("accept", ""))
    return Response(body, headers={"Content-Type": content_type})


@asynccontextmanager
async def serve_metrics(settings: Settings, metrics: Metrics | None) -> AsyncIterator[None]:
    """With METRICS_PORT set, serve the registry on HOST:METRICS_PORT for the app's lifetime."""
    if metrics is None or not settings.METRICS_PORT:
        yield
        return
    server, thread = start_http_server(
        settings.METRICS_PORT, addr=settings.HOST, registry=metrics.registry
    )
    logger.info("metrics served", extra={"host": settings.HOST, "port": settings.METRICS_PORT})
    try:
        yield
    finally:
        await asyncio.to_thread(server.shutdown)  # waits for the serving loop to notice
        server.server_close()
        thread.join()


class AccessLog:
    """Records each HTTP request's outcome: metrics by route template and status, refused
    authentication by reason, and one access log line (never headers, bodies or query strings).
    """

    def __init__(self, metrics: Metrics | None) -> None:
        self.metrics = metrics
        self.templates = RouteTemplates()

    def __call__(
        self,
        scope: Scope,
        context: RequestContext,
        status: int,
        headers: list[tuple[bytes, bytes]],
        seconds: float,
    ) -> None:
        route = self.templates.of(scope)
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
        if self.metrics is not None:
            self.metrics.observe(method=method, route=route, status=status, seconds=seconds)
            if status in (401, 429) or (status == 403 and context.auth_failure is not None):
                challenge = _header(headers, b"www-authenticate") or ""
                reason = auth_failure_reason(status, context.auth_failure, challenge)
                self.metrics.auth_failures.labels(reason).inc()
        quiet = route in QUIET_ROUTES and status < 500
        level = logging.DEBUG if quiet else logging.INFO
        if not access_logger.isEnabledFor(level):  # probes, mostly: skip building the line
            return
        fields: dict[str, Any] = {
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "request_id": context.request_id,
        }
        if context.user_id is not None:
            fields["user_id"] = str(context.user_id)
        access_logger.log(level, "request", extra=fields)


class RouteTemplates:
    """The full path template (`/api/v1/tasks/{task_id}`) of the route that took a request; never
    the raw path, which holds ids.

    The router leaves the route in `scope["route"]`, but a route of an included router knows
    only its own part of the path (`/tasks/{task_id}`): the full one comes from the app's
    flattened routes, looked up once per route.
    """

    def __init__(self) -> None:
        self._paths: dict[int, list[tuple[Any, str]]] = {}

    def of(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            return UNMATCHED_ROUTE
        candidates = self._paths.get(id(route))
        if candidates is None and "app" in scope:
            self._paths = _full_paths(scope["app"])
            candidates = self._paths.setdefault(id(route), [])  # a miss is not looked up again
        if not candidates:
            path = getattr(route, "path", None)
            return path if isinstance(path, str) and path else UNMATCHED_ROUTE
        if len(candidates) > 1:  # one route included under several prefixes
            for regex, path in candidates:
                if regex is not None and regex.match(scope["path"]):
                    return path
        return candidates[0][1]


def _full_paths(app: Any) -> dict[int, list[tuple[Any, str]]]:
    paths: dict[int, list[tuple[Any, str]]] = {}
    for context in iter_route_contexts(getattr(app, "routes", [])):
        if context.path_format:
            entry = (getattr(context, "path_regex", None), context.path_format)
            paths.setdefault(id(context.original_route), []).append(entry)
    return paths


def auth_failure_reason(status: int, noted: str | None, challenge: str) -> str:
    """Why a 401 or 429 happened. The access-token dependency notes its reason; a 401 without
    one refused a refresh token (it names `invalid_token`) or a password (login, password change).
    """
    if noted is not None:
        return noted
    if status == 429:
        return "rate_limited"
    if 'error="invalid_token"' in challenge:
        return "invalid_refresh_token"
    return "bad_credentials"


def _header(headers: Iterable[tuple[bytes, bytes]], wanted: bytes) -> str | None:
    for name, value in headers:
        if name.lower() == wanted:
            return bytes(value).decode("latin-1")
    return None
