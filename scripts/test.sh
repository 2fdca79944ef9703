#!/usr/bin/env bash
# `make test`: every test of the workspace against real Postgres, Redis and broker.
# Starts what the tests need; the broker of the test run is its own (in-memory, on its own port)
# and is stopped afterwards.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_tools
ensure_postgres
ensure_redis
ensure_tansu

# Test databases are dropped by each test; clear leftovers of killed runs and stale templates.
psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc \
  "SELECT datname FROM pg_database WHERE datname LIKE 'koupang_test_%' OR datname LIKE 'koupang_tpl_%'" |
  while read -r db; do
    [ -n "$db" ] && psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
  done

run="$(mktemp -d)"
TEST_KAFKA_PORT="${TEST_KAFKA_PORT:-19092}"
cleanup() { stop_pidfile "$run/broker.pid" tansu; rm -rf "$run"; }
trap cleanup EXIT
say "starting a broker for this test run on 127.0.0.1:$TEST_KAFKA_PORT"
start_broker "$run" "$TEST_KAFKA_PORT" "memory://tansu/" "$run/broker.log" "$run/broker.pid"

export TEST_DATABASE_URL="postgres://$PG_USER@$PG_HOST:$PG_PORT/postgres"
export TEST_REDIS_URL="redis://$REDIS_HOST:$REDIS_PORT"
export TEST_KAFKA_BROKERS="127.0.0.1:$TEST_KAFKA_PORT"
# Tests that stop and restart a broker start their own from this binary.
export TANSU_BIN="$TANSU"

say "running the tests"
cargo nextest run --workspace --no-fail-fast "$@"
