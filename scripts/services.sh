#!/usr/bin/env bash
# Make sure the services the tests need are reachable (`make services`, run by `make test`):
#
#   Redis       127.0.0.1:6379
#   PostgreSQL  postgresql://postgres@127.0.0.1:5432/test  (trust auth; the tests create
#               and drop their own databases through it)
#   chromium    for the chat page's browser test (installed with apt-get when missing, as root)
#   sqlite3     the command-line shell examples/README.md runs (tests/e2e/test_examples_readme.py)
#   ip, nft     network namespaces and the partitions between them (tests/e2e/test_partition.py):
#               iproute2 and nftables, installed with apt-get when missing, as root
#
# Reachable: say so, exit 0. Installed but stopped: start it. Not installed, and we are
# root with apt-get: install it (Debian/Ubuntu), set it up, start it. Otherwise print
# what is missing and how to provide it, and exit 1.
#
# SOLO_TEST_REDIS_URL / SOLO_TEST_POSTGRES_URL (read by tests/conftest.py) point the
# tests at other servers; when set, this script only checks that those are reachable.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

REDIS_DEFAULT_URL="redis://127.0.0.1:6379/0"
POSTGRES_DEFAULT_URL="postgresql://postgres@127.0.0.1:5432/test"
WAIT_S=30

if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
export PGCONNECT_TIMEOUT=3

missing=()
apt_updated=""

say() { echo "services: $*"; }
have() { command -v "$1" >/dev/null 2>&1; }
am_root_with_apt() { [[ "$(id -u)" == 0 ]] && have apt-get; }

# python_check redis|postgres URL: connect with the client library when it is importable
# (the venv has both), else just open a TCP connection (and PING for Redis).
python_check() {
    "$PY" - "$1" "$2" <<'EOF'
import socket
import sys
from urllib.parse import urlsplit

kind, url = sys.argv[1], sys.argv[2]
parts = urlsplit(url)
host, port = parts.hostname or "127.0.0.1", parts.port or (6379 if kind == "redis" else 5432)
try:
    if kind == "redis":
        try:
            import redis
        except ImportError:
            with socket.create_connection((host, port), timeout=2) as s:
                s.sendall(b"PING\r\n")
                sys.exit(0 if s.recv(64).startswith(b"+PONG") else 1)
        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
    else:
        try:
            import psycopg
        except ImportError:
            socket.create_connection((host, port), timeout=2).close()
            sys.exit(0)
        psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3).close()
except Exception:
    sys.exit(1)
EOF
}

wait_until() {  # wait_until SECONDS COMMAND...: poll every 0.25 s
    local tries=$(($1 * 4)) i
    shift
    for ((i = 0; i < tries; i++)); do
        if "$@"; then return 0; fi
        sleep 0.25
    done
    return 1
}

apt_install() {
    say "installing $* with apt-get"
    if [[ -z "$apt_updated" ]]; then
        apt-get update || return 1
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# --- Redis --------------------------------------------------------------------------

redis_ready() {
    if [[ -n "${SOLO_TEST_REDIS_URL:-}" ]]; then
        python_check redis "$SOLO_TEST_REDIS_URL"
    elif have redis-cli; then
        [[ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" == "PONG" ]]
    else
        python_check redis "$REDIS_DEFAULT_URL"
    fi
}

redis_missing() {
    missing+=("Redis: $1
    Install and start Redis 7 on 127.0.0.1:6379, for example
      Debian/Ubuntu:  sudo apt-get install redis-server   (then run make services again)
      macOS:          brew install redis && brew services start redis
      Docker:         docker run -d --name solo-redis -p 127.0.0.1:6379:6379 redis:7
    or point the tests at a running one:  export SOLO_TEST_REDIS_URL=redis://HOST:PORT/0")
}

start_redis() {
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
}

ensure_redis() {
    if redis_ready; then
        say "Redis is reachable at ${SOLO_TEST_REDIS_URL:-$REDIS_DEFAULT_URL}"
        return 0
    fi
    if [[ -n "${SOLO_TEST_REDIS_URL:-}" ]]; then
        redis_missing "not reachable at SOLO_TEST_REDIS_URL=$SOLO_TEST_REDIS_URL"
        return 0
    fi
    if ! have redis-server; then
        if ! am_root_with_apt; then
            redis_missing "not reachable at 127.0.0.1:6379, and redis-server is not installed"
            return 0
        fi
        if ! apt_install redis-server; then
            redis_missing "apt-get install redis-server failed (see above)"
            return 0
        fi
        # The package may have started it already (not in containers without an init system).
        if wait_until 3 redis_ready; then
            say "Redis is reachable at $REDIS_DEFAULT_URL"
            return 0
        fi
    fi
    say "starting Redis on 127.0.0.1:6379"
    if ! start_redis; then
        redis_missing "redis-server is installed but could not be started (see above; as root: sudo make services)"
        return 0
    fi
    if wait_until "$WAIT_S" redis_ready; then
        say "Redis is reachable at $REDIS_DEFAULT_URL"
    else
        redis_missing "started redis-server, but it did not answer PING within ${WAIT_S}s (see /var/log/redis/ci.log)"
    fi
}

# --- PostgreSQL ---------------------------------------------------------------------

postgres_url() { echo "${SOLO_TEST_POSTGRES_URL:-$POSTGRES_DEFAULT_URL}"; }

postgres_accepting() {  # the server answers on 127.0.0.1:5432 (whatever the database)
    if have pg_isready; then
        pg_isready -q -h 127.0.0.1 -p 5432
    else
        "$PY" -c 'import socket; socket.create_connection(("127.0.0.1", 5432), timeout=2).close()' 2>/dev/null
    fi
}

postgres_ready() {  # we can connect to the test database
    if [[ -z "${SOLO_TEST_POSTGRES_URL:-}" ]] && have psql; then
        psql "$POSTGRES_DEFAULT_URL" -tAc "SELECT 1" >/dev/null 2>&1
    else
        python_check postgres "$(postgres_url)"
    fi
}

postgres_missing() {
    missing+=("PostgreSQL: $1
    The tests connect to postgresql://postgres@127.0.0.1:5432/test with trust auth and create
    and drop their own databases. Provide that, for example
      Debian/Ubuntu:  sudo apt-get install postgresql   (then run make services again as root)
      Docker:         docker run -d --name solo-postgres -p 127.0.0.1:5432:5432 \\
                        -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:16
    or point the tests at a running server, as a user allowed to CREATE DATABASE:
      export SOLO_TEST_POSTGRES_URL=postgresql://USER:PASSWORD@HOST:PORT/DATABASE")
}

# shellcheck disable=SC2012  # the entries are version numbers
pg_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1; }

postgres_installed() { have pg_ctlcluster && [[ -n "$(pg_version)" ]] && [[ -d "/etc/postgresql/$(pg_version)/main" ]]; }

as_postgres() {
    if have runuser; then runuser -u postgres -- "$@"; else su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; fi
}

# Local Debian cluster, as root: trust loopback TCP connections and create the database `test`.
setup_postgres() {
    local version hba
    version="$(pg_version)"
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    if [[ -f "$hba" ]] && ! grep -q "solo scripts/services.sh" "$hba"; then
        say "trusting loopback TCP connections in $hba"
        # pg_hba.conf is first match wins: these lines go first.
        {
            echo "# added by solo scripts/services.sh: the tests connect as postgres over loopback without a password"
            echo "host    all    all    127.0.0.1/32    trust"
            echo "host    all    all    ::1/128         trust"
            cat "$hba"
        } >"$hba.solo-new"
        chown --reference="$hba" "$hba.solo-new" 2>/dev/null || true
        chmod --reference="$hba" "$hba.solo-new" 2>/dev/null || true
        mv "$hba.solo-new" "$hba"
        pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    fi
    if [[ "$(as_postgres psql -p 5432 -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'")" != "1" ]]; then
        say "creating database test"
        as_postgres createdb -p 5432 test
    fi
}

ensure_postgres() {
    if postgres_ready; then
        say "PostgreSQL is reachable at $(postgres_url)"
        return 0
    fi
    if [[ -n "${SOLO_TEST_POSTGRES_URL:-}" ]]; then
        postgres_missing "cannot connect to SOLO_TEST_POSTGRES_URL=$SOLO_TEST_POSTGRES_URL"
        return 0
    fi
    if ! postgres_installed; then
        if postgres_accepting; then
            postgres_missing "a server answers on 127.0.0.1:5432, but not as $POSTGRES_DEFAULT_URL (no trust auth for postgres, or no database test)"
            return 0
        fi
        if ! am_root_with_apt; then
            postgres_missing "not reachable at 127.0.0.1:5432, and no PostgreSQL cluster is installed"
            return 0
        fi
        if ! apt_install postgresql; then
            postgres_missing "apt-get install postgresql failed (see above)"
            return 0
        fi
        if ! postgres_installed; then
            postgres_missing "installed the postgresql package, but found no cluster in /etc/postgresql/*/main"
            return 0
        fi
    fi
    if ! postgres_accepting; then
        say "starting PostgreSQL $(pg_version) (cluster main)"
        if ! pg_ctlcluster --skip-systemctl-redirect "$(pg_version)" main start; then
            postgres_missing "the cluster $(pg_version)/main is installed but could not be started (see above; as root: sudo make services)"
            return 0
        fi
        if ! wait_until "$WAIT_S" postgres_accepting; then
            postgres_missing "started the cluster, but it did not accept connections within ${WAIT_S}s"
            return 0
        fi
    fi
    if ! postgres_ready; then
        if [[ "$(id -u)" != 0 ]]; then
            postgres_missing "the server runs, but $POSTGRES_DEFAULT_URL is refused (trust auth for 127.0.0.1 and database test are needed; run make services as root to set them up)"
            return 0
        fi
        setup_postgres || true  # whatever failed, the check below says so
    fi
    if wait_until 10 postgres_ready; then
        say "PostgreSQL is reachable at $POSTGRES_DEFAULT_URL"
    else
        postgres_missing "the server runs, but $POSTGRES_DEFAULT_URL is still refused after setting up trust auth and database test"
    fi
}

# The chat page's browser test (tests/examples/test_chat_page.py) drives the system's chromium with
# Playwright, which then downloads no browser of its own.
ensure_chromium() {
    if have chromium || have chromium-browser; then
        say "chromium is installed"
        return 0
    fi
    if am_root_with_apt && apt_install chromium; then
        say "chromium is installed"
        return 0
    fi
    say "chromium is missing: the chat page's browser test will be skipped (or fail under CI)."
    say "  Debian/Ubuntu:  sudo apt-get install chromium"
}

# examples/README.md shows an exported object's file read with the sqlite3 shell; its test runs that.
ensure_sqlite3() {
    if have sqlite3; then
        say "sqlite3 is installed"
        return 0
    fi
    if am_root_with_apt && apt_install sqlite3; then
        say "sqlite3 is installed"
        return 0
    fi
    missing+=("sqlite3 (Debian/Ubuntu: sudo apt-get install sqlite3)")
}

# The partition test (tests/e2e/test_partition.py, bench/partition.py) makes network namespaces with
# `ip` and cuts them off with `nft`; it needs root, and is skipped without it.
ensure_netns_tools() {
    if have ip && have nft; then
        say "ip and nft are installed"
        return 0
    fi
    if am_root_with_apt && apt_install iproute2 nftables; then
        say "ip and nft are installed"
        return 0
    fi
    say "ip or nft is missing: the partition test will be skipped (it needs root, iproute2 and nftables)."
    say "  Debian/Ubuntu:  sudo apt-get install iproute2 nftables"
}

ensure_redis
ensure_postgres
ensure_chromium
ensure_sqlite3
ensure_netns_tools

if ((${#missing[@]})); then
    echo >&2
    echo "services: the tests need services that are not available:" >&2
    for item in "${missing[@]}"; do
        echo >&2
        echo "  $item" >&2
    done
    exit 1
fi
