#!/usr/bin/env bash
# Proves the Dockerfile's layers would work, on a machine that cannot build images: runs the
# Dockerfile's own `pip install` line (read from the Dockerfile, not copied) into a fresh virtual
# environment, lays out /app the way its COPY lines do, then from that tree alone:
#   pip check (requirements.txt is complete: the install used --no-deps) and nothing else installed,
#   python -m taskhub migrate, python -m taskhub serve with ENVIRONMENT=production -> /health, /ready,
#   the Celery worker starts and reaches "ready", and nothing was written outside /tmp.
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres; a database is created and dropped) and Redis
# on 127.0.0.1:6379, as .ci/run starts them.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
step() { printf '[image-check %3ds] %s\n' "$((SECONDS - started))" "$*"; }
fail() { printf '[image-check] FAILED: %s\n' "$*" >&2; exit 1; }

work=$(mktemp -d /tmp/taskhub-image.XXXXXX)
db="taskhub_image_$$"
server_pid=""
worker_pid=""
cleanup() {
  for pid in $server_pid $worker_pid; do kill -KILL "$pid" 2>/dev/null || true; done
  redis-cli -h 127.0.0.1 -p 6379 --scan --pattern "image-check-$$:*" 2>/dev/null \
    | xargs -r redis-cli -h 127.0.0.1 -p 6379 del >/dev/null 2>&1 || true
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" postgres >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# Paths inside the image map to paths under $work.
in_work() {
  case $1 in
    /opt/venv* | /tmp/* | /app/*) printf '%s%s' "$work" "$1" ;;
    *) printf '%s' "$1" ;;
  esac
}
mkdir -p "$work/tmp" "$work/app"

# 1. The Dockerfile's own commands: its `COPY requirements.txt`, venv and hashed install lines.
mapfile -t installs < <(grep -E '^RUN /opt/venv/bin/pip install ' Dockerfile)
[[ ${#installs[@]} -eq 1 ]] || fail "expected exactly one 'RUN /opt/venv/bin/pip install' line in Dockerfile"
install_line=${installs[0]#RUN }
for flag in --require-hashes --no-deps; do
  [[ " $install_line " == *" $flag "* ]] || fail "the Dockerfile's install line lacks $flag"
done
grep -qE '^RUN python -m venv /opt/venv$' Dockerfile || fail "Dockerfile no longer makes /opt/venv"
req_dest=$(awk '$1 == "COPY" && $2 == "requirements.txt" {print $3}' Dockerfile)
[[ -n $req_dest ]] || fail "Dockerfile no longer copies requirements.txt"
cp requirements.txt "$(in_work "$req_dest")"

# The image's interpreter is 3.11 (python:3.11-slim-bookworm); use the same minor version here.
python=$(command -v python3.11 || command -v python3)
"$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || echo "[image-check] warning: $python is not Python 3.11, the image's version" >&2
step "$python -m venv; $install_line"
"$python" -m venv "$work/opt/venv"
read -ra words <<<"$install_line"
cmd=()
for word in "${words[@]}"; do cmd+=("$(in_work "$word")"); done
PIP_DISABLE_PIP_VERSION_CHECK=1 "${cmd[@]}" --quiet >"$work/tmp/pip.log" 2>&1 \
  || { cat "$work/tmp/pip.log"; fail "the Dockerfile's install line failed"; }
py="$work/opt/venv/bin/python"

step "pip check: the hashed --no-deps install is complete"
"$py" -m pip check
expected=$(grep -oE '^[A-Za-z0-9._-]+==' requirements.txt | sed 's/==$//' | tr 'A-Z_.' 'a-z--' | sort -u)
installed=$("$py" -m pip list --format=freeze | cut -d= -f1 | tr 'A-Z_.' 'a-z--' | grep -vxE 'pip|setuptools' | sort -u)
extra=$(comm -13 <(printf '%s\n' "$expected") <(printf '%s\n' "$installed"))
[[ -z $extra ]] || fail "installed but not in requirements.txt: $extra"

# 2. The runtime stage's COPY lines (not --from): the source layout under /app.
while read -r _ source dest; do
  target=$(in_work "$dest")
  mkdir -p "$(dirname "$target")"
  cp -R "$source" "$target"
done < <(grep -E '^COPY [^-]\S* /app/' Dockerfile)
find "$work/app" -name __pycache__ -prune -exec rm -rf {} +
[[ -f $work/app/src/taskhub/__main__.py && -f $work/app/alembic.ini && -d $work/app/migrations ]] \
  || fail "the COPY lines did not lay out /app/src/taskhub, /app/alembic.ini and /app/migrations"

psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -qc "CREATE DATABASE $db" postgres
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
secret=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')
# The container's environment, and nothing of this shell's: as ECS or compose would start it.
app_env=(
  env -i
  "PATH=$work/opt/venv/bin:/usr/bin:/bin" "HOME=$work/tmp" "TMPDIR=$work/tmp"
  "PYTHONPATH=$work/app/src" PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
  ENVIRONMENT=production HOST=127.0.0.1 "PORT=$port" BCRYPT_ROUNDS=12
  "DATABASE_URL=postgresql://postgres@127.0.0.1:5432/$db"
  "REDIS_URL=redis://127.0.0.1:6379/0" "CELERY_BROKER_KEY_PREFIX=image-check-$$:"
  "JWT_SECRET=$secret"
)
marker="$work/tmp/started"
touch "$marker"
cd "$work/app"

step "python -m taskhub migrate"
"${app_env[@]}" python -m taskhub migrate >"$work/tmp/migrate.log" 2>&1 || { cat "$work/tmp/migrate.log"; fail "migrate"; }
version=$(psql -h 127.0.0.1 -U postgres -tAc "SELECT version_num FROM alembic_version" "$db")
[[ -n $version ]] || fail "migrate left no alembic_version"

step "python -m taskhub serve (ENVIRONMENT=production) on 127.0.0.1:$port"
"${app_env[@]}" python -m taskhub serve >"$work/tmp/serve.log" 2>&1 &
server_pid=$!
probe() {  # probe PATH -> prints the HTTP status (000 when nothing answers)
  python3 - "http://127.0.0.1:$port$1" <<'EOF'
import sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=3) as response:
        print(response.status, response.read().decode())
except urllib.error.HTTPError as exc:
    print(exc.code, exc.read().decode())
except OSError:
    print("000")
EOF
}
for path in /health /ready; do
  for _ in $(seq 1 60); do
    answer=$(probe "$path")
    [[ $answer == 200* ]] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/tmp/serve.log"; fail "the server exited"; }
    sleep 0.5
  done
  [[ $answer == 200* ]] || { cat "$work/tmp/serve.log"; fail "$path answered: $answer"; }
  step "GET $path -> $answer"
done
[[ $answer == *'"database":"ok"'* && $answer == *'"redis":"ok"'* ]] || fail "/ready did not check both: $answer"

step "SIGTERM the server"
kill -TERM "$server_pid"
for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
kill -0 "$server_pid" 2>/dev/null && fail "the server did not stop within 10 s of SIGTERM"
wait "$server_pid" && server_rc=0 || server_rc=$?
server_pid=""
# uvicorn finishes its shutdown, then re-raises SIGTERM: 143 (128 + 15) is a clean stop too.
if [[ $server_rc -ne 0 && $server_rc -ne 143 ]] || ! grep -q 'Application shutdown complete' "$work/tmp/serve.log"; then
  cat "$work/tmp/serve.log"
  fail "the server exited $server_rc after SIGTERM without a clean shutdown"
fi

step "python -m celery -A taskhub.worker.celery_app worker"
"${app_env[@]}" python -m celery -A taskhub.worker.celery_app worker --loglevel=INFO --concurrency=1 \
  >"$work/tmp/worker.log" 2>&1 &
worker_pid=$!
for _ in $(seq 1 60); do
  grep -q 'ready\.' "$work/tmp/worker.log" && break
  kill -0 "$worker_pid" 2>/dev/null || { cat "$work/tmp/worker.log"; fail "the worker exited"; }
  sleep 0.5
done
grep -q 'ready\.' "$work/tmp/worker.log" || { cat "$work/tmp/worker.log"; fail "the worker never became ready"; }
# Its graceful stop waits out worker_soft_shutdown_timeout (30 s), which proves nothing about
# the layer: the worker connected to the broker and is ready, so it is killed.
step "worker ready; killing it"
kill -KILL "$worker_pid" 2>/dev/null || true
wait "$worker_pid" 2>/dev/null || true
worker_pid=""

# readonlyRootFilesystem in deploy/ecs: the app may write only /tmp.
written=$(find "$work/app" "$work/opt" -newer "$marker" -print)
[[ -z $written ]] || fail "the app wrote outside /tmp: $written"

step "OK: the image's install and start-up work (alembic head $version)"
