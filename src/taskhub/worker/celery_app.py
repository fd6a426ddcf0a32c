"""The Celery application, configured from the same Settings as the API.

Reliability choices (ADR 0007): a job is acknowledged only after it ran (`acks_late`), a job
whose worker died is re-queued (`task_reject_on_worker_lost`), a worker holds one job at a time
(prefetch 1), Redis re-delivers an unacknowledged job after `visibility_timeout` (far longer
than any scan), and a stopping worker gets a soft-shutdown window to finish or re-queue. Only
JSON is accepted: pickle would let whoever can write to Redis run code in the worker.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import setup_logging

from taskhub.config import ConfigurationError, Settings, load_settings
from taskhub.logs import configure_logging
from taskhub.worker.housekeeping import HOUSEKEEPING_INTERVAL_SECONDS

VISIBILITY_TIMEOUT_SECONDS = 3600
SOFT_SHUTDOWN_SECONDS = 30


class MissingBroker(Exception):
    pass


def create_celery(settings: Settings) -> Celery:
    if settings.REDIS_URL is None:
        raise MissingBroker("REDIS_URL is required to run the worker or beat")
    app = Celery(
        "taskhub", broker=settings.REDIS_URL.get_secret_value(), include=["taskhub.worker.jobs"]
    )
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_soft_shutdown_timeout=SOFT_SHUTDOWN_SECONDS,
        worker_enable_soft_shutdown_on_idle=False,
        broker_transport_options=_transport_options(settings.CELERY_BROKER_KEY_PREFIX),
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        worker_hijack_root_logger=False,
        timezone="UTC",
        enable_utc=True,
        beat_schedule={
            "scan-due-reminders": {
                "task": "taskhub.scan_due_reminders",
                "schedule": float(settings.REMINDER_SCAN_INTERVAL),
                # A scan that waited longer than one interval is stale: the next one covers it.
                "options": {"expires": float(settings.REMINDER_SCAN_INTERVAL)},
            },
            "housekeeping": {
                "task": "taskhub.housekeeping",
                "schedule": float(HOUSEKEEPING_INTERVAL_SECONDS),
                "options": {"expires": float(HOUSEKEEPING_INTERVAL_SECONDS)},
            },
        },
    )
    app.conf.taskhub_settings = settings
    return app


def _transport_options(prefix: str) -> dict[str, Any]:
    """CELERY_BROKER_KEY_PREFIX lets deployments (or test runs) share one Redis database without
    taking each other's jobs; senders and workers must agree on it."""
    options: dict[str, Any] = {"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS}
    if prefix:
        options["global_keyprefix"] = prefix
    return options


def _default_app() -> Celery:
    try:
        settings = load_settings()
        app = create_celery(settings)
    except (ConfigurationError, MissingBroker) as exc:
        raise SystemExit(f"taskhub worker: {exc}") from None

    @setup_logging.connect(weak=False)
    def _same_logs_as_the_api(**_: Any) -> None:  # JSON lines in production, like the API
        configure_logging(settings)

    return app


_app: Celery | None = None


def __getattr__(name: str) -> Celery:
    """`celery -A taskhub.worker.celery_app worker` imports this module and finds `app`.

    Built on first access, not at import: importing `create_celery` (to send a job) must not
    need REDIS_URL in the importing process's own environment.
    """
    global _app
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _app is None:
        _app = _default_app()
    return _app
