# TaskHub: one image for every role. The command picks the role:
#   api      python -m taskhub serve            (the default CMD)
#   migrate  python -m taskhub migrate          (one-off, before a rollout)
#   worker   python -m celery -A taskhub.worker.celery_app worker --loglevel=INFO --concurrency=2
#   beat     python -m celery -A taskhub.worker.celery_app beat --loglevel=INFO --schedule /tmp/celerybeat-schedule
# Configuration and secrets come from the environment at run time; none is in any layer.
# scripts/check_image_install.sh runs the `deps` install line below in a fresh venv and starts
# the app from it, in CI, because this machine cannot build images.

# The base of both stages: name:tag@sha256:<digest> once pinned, the tag kept for humans.
# deploy.yml builds nothing until it is pinned by digest; deploy/README.md ("The base image")
# says how to pin and bump it (no digest was recorded here yet).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- deps: the hashed, binary-only install of requirements.txt, nothing else ----------------
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
# --require-hashes: every file must match uv.lock's hash; --no-deps: nothing outside the file;
# --only-binary: no sdist is built, so no unpinned build backend is ever fetched.
RUN /opt/venv/bin/pip install --require-hashes --no-deps --only-binary=:all: -r /tmp/requirements.txt

# ---- runtime: the venv from `deps`, the source tree, a non-root user -------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app/src \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ENVIRONMENT=production \
    HOST=0.0.0.0 \
    PORT=8000
RUN groupadd --system --gid 10001 taskhub \
    && useradd --system --uid 10001 --gid taskhub --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin taskhub
WORKDIR /app
COPY --from=deps /opt/venv /opt/venv
# `python -m taskhub migrate` finds alembic.ini and migrations/ two levels above the package
# (taskhub/migrate.py PROJECT_ROOT), so the source layout is kept: /app/src/taskhub beside them.
# Owned by root and read-only to the app user; compiled here so nothing is written at run time.
COPY alembic.ini /app/alembic.ini
COPY migrations /app/migrations
COPY src /app/src
RUN python -m compileall -q /app/src /app/migrations
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health', timeout=4)"]
CMD ["python", "-m", "taskhub", "serve"]
