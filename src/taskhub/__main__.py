"""Command line: `python -m taskhub serve|migrate|init-env`."""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path

from taskhub.config import ConfigurationError, Settings, load_settings

logger = logging.getLogger("taskhub")
# Where the start-up probe asks when the server listens on every address.
WILDCARD_PROBES = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 - addresses, not binds
PROBE_TIMEOUT_SECONDS = 10.0
PROBE_INTERVAL_SECONDS = 0.1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="taskhub")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the API on HOST:PORT with WEB_CONCURRENCY workers")
    commands.add_parser("migrate", help="apply every database migration")
    commands.add_parser("init-env", help="write .env with a fresh JWT_SECRET if there is none")
    args = parser.parse_args(argv)

    if args.command == "init-env":
        return init_env(Path(".env"))
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        print(f"taskhub: {exc}", file=sys.stderr)
        return 2
    if args.command == "migrate":
        return migrate(settings)
    return serve(settings)


def init_env(path: Path) -> int:
    secret = secrets.token_urlsafe(48)
    try:
        # O_EXCL: never overwrite an existing .env, even one created a moment ago;
        # mode 0600 from the first byte, so the secret is never readable by others.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return 0
    with os.fdopen(fd, "w") as env_file:
        env_file.write(
            "# Local development settings, written by `make run`. Never commit this file.\n"
            f"JWT_SECRET={secret}\n"
        )
    path.chmod(0o600)  # whatever the umask
    print(f"taskhub: wrote {path} with a freshly generated JWT_SECRET")
    return 0


def migrate(settings: Settings) -> int:
    from taskhub.migrate import upgrade

    upgrade(settings.database_url)
    return 0


def serve(settings: Settings) -> int:
    """On SIGTERM (ECS, docker stop) or SIGINT uvicorn stops accepting connections, lets requests
    in flight finish (at most `timeout_graceful_shutdown` seconds), then runs the app's shutdown,
    which closes the database pool and the rate limiter's connections.

    Once it serves, one line says where: `TaskHub on http://127.0.0.1:8000 — docs /docs — SQLite
    var/taskhub.db`.
    """
    import uvicorn

    from taskhub.http.protocol import PROTOCOL_PATH
    from taskhub.logs import configure_logging

    # uvicorn re-raises the signal it drained for once it is done; the default action would turn
    # a clean stop into exit status -15 (143 in a container), which reads as a crash.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    configure_logging(settings)  # the app does it too, in each worker; this is the parent's
    threading.Thread(
        target=_announce_once_serving,
        args=(settings, describe_service(settings)),
        name="announce",
        daemon=True,
    ).start()
    uvicorn.run(
        "taskhub.main:create_app",
        factory=True,
        host=settings.HOST,
        port=settings.PORT,
        workers=settings.WEB_CONCURRENCY,
        server_header=False,
        date_header=True,
        # The app reads X-Forwarded-For itself, only from TRUSTED_PROXIES (security/client_ip.py);
        # uvicorn's own handling would trust 127.0.0.1 by default and rewrite the peer first.
        proxy_headers=False,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=20,
        # uvicorn's httptools protocol with a deadline on reading each request (REQUEST_READ_TIMEOUT)
        # and a bound on the size of its headers: ADR 0013.
        http=PROTOCOL_PATH,
    )
    return 0


def describe_service(settings: Settings) -> str:
    """The start-up line: address, docs and database; never a user name or password."""
    host = f"[{settings.HOST}]" if ":" in settings.HOST else settings.HOST
    docs = "/docs" if settings.DOCS_ENABLED else "off"
    database = describe_database(settings.database_url)
    return f"TaskHub on http://{host}:{settings.PORT} — docs {docs} — {database}"


def describe_database(url: str) -> str:
    """`SQLite var/taskhub.db` or `PostgreSQL db.internal:5432/taskhub`: no credentials."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite {parsed.database or 'in memory'}"
    if not parsed.host:
        return f"PostgreSQL {parsed.database} on the local socket"
    port = f":{parsed.port}" if parsed.port else ""
    return f"PostgreSQL {parsed.host}{port}/{parsed.database}"


def _announce_once_serving(settings: Settings, line: str) -> None:
    """Logs `line` once /health answers on HOST:PORT: the socket listens and the app (with several
    workers, the first of them) has started. A plain connection: no proxy from the environment."""
    host = WILDCARD_PROBES.get(settings.HOST, settings.HOST)
    while True:
        connection = http.client.HTTPConnection(host, settings.PORT, timeout=PROBE_TIMEOUT_SECONDS)
        try:
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                logger.info(line)
                return
        except (OSError, http.client.HTTPException):
            pass  # not listening yet, or no worker has taken the connection yet
        finally:
            connection.close()
        time.sleep(PROBE_INTERVAL_SECONDS)


def _exit_cleanly(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
