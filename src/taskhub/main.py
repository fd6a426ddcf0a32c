"""The application factory: settings -> middleware -> error handlers -> routers."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from taskhub.auth import router as auth_router
from taskhub.auth.access_tokens import TokenUse
from taskhub.auth.dependencies import NEED_OF, authenticate_route, oauth2_scheme, token_need
from taskhub.auth.schemas import LoginForm, LoginJSON, PasswordChange, UserRegister
from taskhub.comments import router as comment_router
from taskhub.config import Settings, load_settings, parse_trusted_proxies
from taskhub.db.engine import create_database
from taskhub.errors import install_error_handlers
from taskhub.http import health
from taskhub.http.admission import AdmissionGate
from taskhub.http.bodies import AUTHENTICATE_ROUTE, JSONRoute
from taskhub.http.docs import DOCS_PATHS, install_docs
from taskhub.http.metrics import METRICS_PATH, install_metrics, serve_metrics
from taskhub.http.middleware import ProblemCORSMiddleware, RequestContextMiddleware
from taskhub.http.openapi import install_openapi, operation_id
from taskhub.http.routing import (
    add_routes_of,
    keep_static_paths_whole,
    require_authentication,
)
from taskhub.logs import configure_logging
from taskhub.notifications import router as notification_router
from taskhub.projects import router as project_router
from taskhub.ratelimit import RateLimiter
from taskhub.security import common_passwords, passwords
from taskhub.tasks import router as task_router
from taskhub.worker.in_process import reminder_scheduling

API_PREFIX = "/api/v1"
API_ROUTERS = (
    auth_router.public_router,
    auth_router.router,
    auth_router.users_router,
    auth_router.tokens_router,
    task_router.router,
    notification_router.router,
    project_router.router,
    comment_router.router,
)
LOGIN_PATH = f"{API_PREFIX}/auth/login"
# The routes that hash a password: the hash queue admits them, not the request gate.
HASHING_PATHS = frozenset(
    {LOGIN_PATH, f"{API_PREFIX}/auth/register", f"{API_PREFIX}/users/me/password"}
)
OPENAPI_PATH = "/openapi.json"
# The only routes reachable without a token; every other one must take the auth dependency, or
# the app refuses to start (taskhub.http.routing.require_authentication).
PUBLIC_PATHS = frozenset(
    {
        f"{API_PREFIX}/auth/register",
        LOGIN_PATH,
        f"{API_PREFIX}/auth/refresh",
        # Whoever finds a leaked token ends it: they hold no credentials of its owner's.
        f"{API_PREFIX}/tokens/revoke",
        "/health",
        "/ready",
        METRICS_PATH,
        OPENAPI_PATH,
        *DOCS_PATHS,
    }
)
logger = logging.getLogger(__name__)


def settle_startup_heap() -> None:
    """What start-up built lives as long as the process: collected once, then frozen out of the
    garbage collector's sight, whose full collections walking it were most of the served p99
    (docs/benchmarks.md)."""
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    configure_logging(settings)
    database = create_database(settings)
    # Before serving: sizing the hash queue's default may time one hash (ADR 0004).
    passwords.size_hash_queue(rounds=settings.bcrypt_rounds, wait=settings.HASH_QUEUE_WAIT)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        common_passwords.preload()
        settle_startup_heap()
        logger.info("taskhub started", extra={"environment": settings.ENVIRONMENT})
        async with (
            reminder_scheduling(settings, database, app.state.rate_limiter.redis),
            serve_metrics(settings, app.state.metrics),
            app.state.rate_limiter.settling(),
        ):
            yield
        # Runs once in-flight requests are done (bounded by the server's graceful timeout).
        await app.state.token_use.settled()
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
        openapi_url=OPENAPI_PATH if settings.DOCS_ENABLED else None,
        # Routes added by add_routes_of leave this option at its default, so they take the app's.
        generate_unique_id_function=operation_id,
    )
    # Routes added to the app directly (app.post, add_api_route) decode bodies the one way too.
    app.router.route_class = JSONRoute
    app.state.settings = settings
    app.state.database = database
    app.state.rate_limiter = RateLimiter(settings)
    app.state.token_use = TokenUse(database)
    setattr(app.state, AUTHENTICATE_ROUTE, authenticate_route)
    app.state.readiness = health.Readiness()
    app.state.trusted_proxies = parse_trusted_proxies(settings.TRUSTED_PROXIES)
    install_cors(app, settings)
    # Outside CORS, so CORS preflights and every error get the standard headers too.
    app.add_middleware(
        RequestContextMiddleware,
        api_prefix=API_PREFIX,
        form_paths=frozenset({LOGIN_PATH}),
        max_body_bytes=settings.MAX_BODY_BYTES,
        read_timeout=settings.REQUEST_READ_TIMEOUT,
        record_outcome=install_metrics(app, settings, database),
        admission=AdmissionGate(settings.admission_limit, settings.REQUEST_QUEUE_TIMEOUT),
        hashing_paths=HASHING_PATHS,
        hashing_has_room=lambda: not passwords.hashing_full(queue_limit=settings.HASH_QUEUE_LIMIT),
        refusals_while_hashing_full={LOGIN_PATH: auth_router.login_refusal_while_hashing_full},
    )
    install_error_handlers(app)
    install_openapi(
        app,
        scheme=oauth2_scheme,
        token_need=token_need,
        extra_schemas=(LoginJSON, LoginForm),
        new_password_fields=((UserRegister, "password"), (PasswordChange, "new_password")),
    )

    for router in API_ROUTERS:
        add_routes_of(app, router, prefix=API_PREFIX)
    add_routes_of(app, health.router)
    keep_static_paths_whole(app)
    if settings.DOCS_ENABLED:
        install_docs(app)
    require_authentication(app, public_paths=PUBLIC_PATHS, authenticators=NEED_OF)
    return app


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
