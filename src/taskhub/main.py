"""The application factory: settings -> middleware -> error handlers -> routers."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from taskhub import health
from taskhub.admission import AdmissionGate
from taskhub.auth import router as auth_router
from taskhub.config import Settings, load_settings
from taskhub.db import create_database
from taskhub.docs import install_docs
from taskhub.errors import install_error_handlers
from taskhub.logs import configure_logging
from taskhub.metrics import install_metrics, serve_metrics
from taskhub.middleware import ProblemCORSMiddleware, RequestContextMiddleware
from taskhub.notifications import router as notification_router
from taskhub.openapi import install_openapi, operation_id
from taskhub.ratelimit import RateLimiter
from taskhub.security import common_passwords
from taskhub.security.client_ip import parse_trusted_proxies
from taskhub.tasks import router as task_router
from taskhub.users import router as user_router
from taskhub.worker.in_process import reminder_scheduling

API_PREFIX = "/api/v1"
API_ROUTERS = (
    auth_router.public_router,
    auth_router.router,
    user_router.router,
    task_router.router,
    notification_router.router,
)
logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    configure_logging(settings)
    database = create_database(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        common_passwords.preload()
        logger.info("taskhub started", extra={"environment": settings.ENVIRONMENT})
        async with (
            reminder_scheduling(settings, database),
            serve_metrics(settings, app.state.metrics),
        ):
            yield
        # Runs once in-flight requests are done (bounded by the server's graceful timeout).
        await app.state.rate_limiter.aclose()
        await database.dispose()
        logger.info("taskhub stopped")

    app = FastAPI(
        title="TaskHub API",
        version="1.0.0",
        description="Secure-by-default task management. Contract: taskhub-api-v1.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.DOCS_ENABLED else None,
        # Routes added by add_routes_of leave this option at its default, so they take the app's.
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.rate_limiter = RateLimiter(settings)
    app.state.trusted_proxies = parse_trusted_proxies(settings.TRUSTED_PROXIES)
    install_cors(app, settings)
    # Outside CORS, so CORS preflights and every error get the standard headers too.
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.MAX_BODY_BYTES,
        record_outcome=install_metrics(app, settings, database),
        admission=AdmissionGate(settings.admission_limit, settings.REQUEST_QUEUE_TIMEOUT),
    )
    install_error_handlers(app)
    install_openapi(app)

    for router in API_ROUTERS:
        add_routes_of(app, router, prefix=API_PREFIX)
    add_routes_of(app, health.router)
    if settings.DOCS_ENABLED:
        install_docs(app)
    return app


def add_routes_of(app: FastAPI, router: APIRouter, prefix: str = "") -> None:
    """Add each of the router's path operations to the app itself, under the prefix, as
    `include_router` would serve it (the router's own lifespan is not carried over).

    Since FastAPI 0.137 an included router is one opaque route that every request walks, route
    by route with bookkeeping for each, to match and then again to dispatch; a route of the app's
    own is tried once, by its regex.
    """
    for route in router.routes:
        if not isinstance(route, APIRoute):  # a nested router or a mount would be lost
            raise TypeError(f"{route!r} of {router!r}: only path operations can be added flat")
        app.router.add_api_route(prefix + route.path, route.endpoint, **_route_options(route))


# What `add_api_route` takes that the route does not hold under the same name.
_NOT_ROUTE_OPTIONS = frozenset({"self", "path", "endpoint", "route_class_override"})


def _route_options(route: APIRoute) -> dict[str, Any]:
    """Every option the route was declared with, read back by name: an option a FastAPI upgrade
    adds is carried over too, or fails at start-up if the route keeps it under another name."""
    accepted = inspect.signature(APIRouter.add_api_route).parameters
    options = {name: getattr(route, name) for name in accepted if name not in _NOT_ROUTE_OPTIONS}
    return {**options, "route_class_override": type(route)}


def install_cors(app: FastAPI, settings: Settings) -> None:
    """Allow the browser origins in CORS_ORIGINS; none by default. Tokens travel in the
    Authorization header, never in cookies, so credentials are never allowed.
    """
    origins = [origin.strip() for origin in settings.CORS_ORIGINS.split(",") if origin.strip()]
    if not origins:
        return
    app.add_middleware(
        ProblemCORSMiddleware,
        allow_origins=origins,
        allow_credentials=False,
        allow_methods=["GET", "POST", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
        expose_headers=["Location", "Retry-After", "X-Request-ID"],
        max_age=600,
    )
