#!/usr/bin/env bash
# `make test`: every test of the workspace against real Postgres, Redis and broker.
# Starts what the tests need. Each run is on its own: its databases carry its run id
# (`koupang_r<id>_…`, see begin_test_run in lib.sh) and its broker (in-memory) listens on a port
# no other run holds; both are removed afterwards. So two runs on one machine, or a run beside
# focused `cargo nextest` runs, never drop each other's databases or share a broker.
# Extra arguments go to `cargo nextest run`, e.g. `bash scripts/test.sh -p shared golden`.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_tools
ensure_postgres
ensure_redis
ensure_tansu

run="$(mktemp -d)"
begin_test_run
cleanup() {
  stop_pidfile "$run/broker.pid" tansu
  rm -rf "$run"
  end_test_run
}
trap cleanup EXIT

# Leftovers of runs that were killed (their run lock is free) and old untagged databases.
drop_stale_test_databases

if [ -n "${TEST_KAFKA_PORT:-}" ]; then
  port=$TEST_KAFKA_PORT
  exec {TEST_PORT_LOCK}</dev/null
else
  claim_test_port 19100 19999 || die "no free port in 19100-19999 for the test broker"
  port=$TEST_PORT
fi
say "test run $TEST_RUN_ID: databases ${TEST_DATABASE_PREFIX}_*, broker on 127.0.0.1:$port"
# The broker does not inherit the run's locks: if this script is killed, its broker must not
# keep the run looking alive.
start_broker "$run" "$port" "memory://tansu/" "$run/broker.log" "$run/broker.pid" \
  {TEST_RUN_LOCK}>&- {TEST_PORT_LOCK}>&-

export TEST_DATABASE_URL="postgres://$PG_USER@$PG_HOST:$PG_PORT/postgres"
export TEST_REDIS_URL="redis://$REDIS_HOST:$REDIS_PORT"
export TEST_KAFKA_BROKERS="127.0.0.1:$port"
# Tests that stop and restart a broker start their own from this binary.
export TANSU_BIN="$TANSU"

# The whole workspace unless the arguments name packages.
scope=(--workspace)
for arg in "$@"; do
  case $arg in -p* | --package | --package=* | --workspace | --all) scope=() ;; esac
done

say "running the tests"
status=0
cargo nextest run "${scope[@]}" --no-fail-fast "$@" || status=$?

# The whole suite (no arguments) ends with the Postman walkthrough and a short schemathesis pass
# on a stack of its own.
if [ $# -eq 0 ]; then
  # (Each is a test run of its own; our run's locks stay here, as for the broker.)
  FUZZ_SEED=1 bash "$ROOT/scripts/walkthrough.sh" --own-stack --fuzz 5 \
    {TEST_RUN_LOCK}>&- {TEST_PORT_LOCK}>&- || status=1
  # Again with the Kafka settings docker-compose.yml passes (no Docker engine on these machines).
  bash "$ROOT/scripts/walkthrough.sh" --own-stack --compose-kafka \
    {TEST_RUN_LOCK}>&- {TEST_PORT_LOCK}>&- || status=1
fi
exit $status
