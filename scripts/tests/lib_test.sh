#!/usr/bin/env bash
# Tests of the stack scripts' helpers (scripts/lib.sh) with dummy processes: no service, no root
# needed; the test-run tests use the local Postgres (only databases they create themselves).
# Run: bash scripts/tests/lib_test.sh
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# The pids a test started, ended one by one when its subshell exits.
STARTED=()
end_started() {
  unset -f kill
  for pid in "${STARTED[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
}

fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}

# poll DESCRIPTION CMD...: wait (up to 10 s) until CMD succeeds.
poll() {
  local what=$1
  shift
  for _ in $(seq 1 100); do "$@" && return 0; sleep 0.1; done
  fail "timed out waiting until $what"
}

state_of() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*") "}
  echo "${stat%% *}"
}
is_zombie() { [ "$(state_of "$1")" = Z ]; }
is_gone() { ! kill -0 "$1" 2>/dev/null || is_zombie "$1"; }

# A program called `catalog` (a copy of sleep), so its argv[0] names the service.
mkdir -p "$TMP/bin"
cp "$(command -v sleep)" "$TMP/bin/catalog"
cp "$(command -v sleep)" "$TMP/bin/other"

# zombie_catalog: a `catalog` that has exited but that its parent never reaps (as after `kill -9`
# of a service whose parent does not reap). Prints the zombie's pid.
zombie_catalog() {
  bash -c '"$1" 0 & echo $! >"$2"; exec sleep 300' _ "$TMP/bin/catalog" "$TMP/zombie.pid" &
  STARTED+=($!)
  poll "the zombie's pid is written" test -s "$TMP/zombie.pid"
  local pid
  pid=$(cat "$TMP/zombie.pid")
  rm -f "$TMP/zombie.pid"
  poll "catalog $pid is a zombie" is_zombie "$pid"
  ZOMBIE=$pid
}

# A stand-in for a service's readiness endpoint: a static server with /health/ready.
ready_server() {
  mkdir -p "$TMP/www/health"
  echo '{"status":"ready"}' >"$TMP/www/health/ready"
  (cd "$TMP/www" && exec python3 -u -m http.server --bind 127.0.0.1 0 >"$TMP/www.log" 2>&1) &
  STARTED+=($!)
  poll "the readiness stand-in listens" grep -q 'port [0-9]' "$TMP/www.log"
  READY_PORT=$(sed -n 's/.* port \([0-9]*\).*/\1/p' "$TMP/www.log" | head -n1)
}

closed_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Each test runs in a subshell with lib.sh sourced and .dev pointed at a scratch folder.
run_test() {
  local name=$1
  if (
    # shellcheck source=../lib.sh
    source "$HERE/../lib.sh"
    set +e
    trap end_started EXIT
    DEV="$TMP/dev"
    mkdir -p "$DEV/run"
    "$name"
  ); then
    printf 'ok    %s\n' "$name"
  else
    printf 'FAILED %s\n' "$name"
    FAILED=$((FAILED + 1))
  fi
}

a_killed_but_unreaped_service_is_not_running() {
  zombie_catalog
  kill -0 "$ZOMBIE" 2>/dev/null || fail "the zombie should answer kill -0 (the trap this guards)"
  if process_running "$ZOMBIE" catalog; then fail "zombie $ZOMBIE counted as running"; fi
}

a_live_service_is_running_and_a_recycled_pid_of_another_program_is_not() {
  "$TMP/bin/catalog" 300 &
  local pid=$!
  STARTED+=("$pid")
  process_running "$pid" catalog || fail "live catalog $pid not counted as running"
  if process_running "$pid" cart; then fail "catalog's pid counted as a running cart"; fi
  if process_running 999999999 catalog; then fail "a pid that does not exist counted as running"; fi
  if process_running "" catalog; then fail "an empty pidfile counted as running"; fi
}

a_killed_service_is_not_up_even_while_something_answers_on_its_port() {
  ready_server
  PORT_OF[catalog]=$READY_PORT
  zombie_catalog
  echo "$ZOMBIE" >"$DEV/run/catalog.pid"
  service_ready catalog || fail "the readiness stand-in does not answer"
  if service_up catalog; then fail "a zombie catalog counted as up"; fi
}

a_live_service_that_answers_ready_is_up_and_one_that_does_not_is_not() {
  "$TMP/bin/catalog" 300 &
  local pid=$!
  STARTED+=("$pid")
  echo "$pid" >"$DEV/run/catalog.pid"
  ready_server
  PORT_OF[catalog]=$READY_PORT
  service_up catalog || fail "live and ready catalog not counted as up"
  PORT_OF[catalog]=$(closed_port)
  if service_up catalog; then fail "a catalog that is not ready counted as up"; fi
}

stopping_a_zombie_signals_nothing_and_forgets_the_pidfile() {
  zombie_catalog
  echo "$ZOMBIE" >"$DEV/run/catalog.pid"
  # A zombie ignores signals; the helper must not wait for it to go.
  kill() { echo "$*" >>"$TMP/kills"; }
  stop_pidfile "$DEV/run/catalog.pid" catalog
  unset -f kill
  [ ! -e "$DEV/run/catalog.pid" ] || fail "the pidfile is still there"
  [ ! -e "$TMP/kills" ] || fail "signals sent to a zombie: $(cat "$TMP/kills")"
}

stopping_never_kills_a_process_that_recycled_the_pid() {
  "$TMP/bin/other" 300 &
  local pid=$!
  STARTED+=("$pid")
  echo "$pid" >"$DEV/run/catalog.pid"
  stop_pidfile "$DEV/run/catalog.pid" catalog
  [ ! -e "$DEV/run/catalog.pid" ] || fail "the pidfile is still there"
  process_running "$pid" other || fail "the unrelated process $pid was stopped"
}

stopping_a_live_service_ends_it() {
  "$TMP/bin/catalog" 300 &
  local pid=$!
  STARTED+=("$pid")
  echo "$pid" >"$DEV/run/catalog.pid"
  stop_pidfile "$DEV/run/catalog.pid" catalog
  poll "catalog $pid has ended" is_gone "$pid"
  [ ! -e "$DEV/run/catalog.pid" ] || fail "the pidfile is still there"
}

# A fake apt-get that records its calls, on a PATH holding nothing else but env.
fake_apt_path() {
  mkdir -p "$TMP/fakebin"
  printf '#!/bin/sh\necho "$*" >>"%s/apt-calls"\n' "$TMP" >"$TMP/fakebin/apt-get"
  chmod +x "$TMP/fakebin/apt-get"
  ln -sf "$(command -v env)" "$TMP/fakebin/env"
  rm -f "$TMP/apt-calls" "$TMP/sudo-calls"
}

apt_as_a_non_root_user_without_sudo_stops_with_a_clear_message_and_runs_nothing() {
  fake_apt_path
  id() { echo 1000; }
  local out
  out=$(PATH="$TMP/fakebin" apt_install redis-server 2>&1) && fail "apt_install succeeded without root"
  [ ! -e "$TMP/apt-calls" ] || fail "apt-get ran without root: $(cat "$TMP/apt-calls")"
  [[ "$out" == *"needs root"* && "$out" == *redis-server* ]] || fail "unclear message: $out"
}

apt_as_a_non_root_user_goes_through_sudo_and_says_so() {
  fake_apt_path
  id() { echo 1000; }
  sudo() {
    echo "$*" >>"$TMP/sudo-calls"
    "$@"
  }
  local out
  out=$(PATH="$TMP/fakebin" apt_install redis-server 2>&1) || fail "apt_install failed: $out"
  grep -q 'apt-get install -y -qq redis-server' "$TMP/sudo-calls" ||
    fail "install did not go through sudo: $(cat "$TMP/sudo-calls" 2>/dev/null)"
  [ "$(wc -l <"$TMP/apt-calls")" = 2 ] || fail "expected update + install: $(cat "$TMP/apt-calls")"
  [[ "$out" == *sudo* ]] || fail "did not say it uses sudo: $out"
}

apt_as_root_runs_directly() {
  fake_apt_path
  id() { echo 0; }
  sudo() { echo "$*" >>"$TMP/sudo-calls"; }
  PATH="$TMP/fakebin" apt_install redis-server >/dev/null 2>&1 || fail "apt_install failed as root"
  [ ! -e "$TMP/sudo-calls" ] || fail "sudo used as root"
  grep -q 'install -y -qq redis-server' "$TMP/apt-calls" || fail "apt-get install did not run"
}

# --- Test runs (need Postgres at PGHOST/PGPORT, user postgres).

db_exists() {
  [ "$(psql_admin -tAc "SELECT count(*) FROM pg_database WHERE datname = '$1'")" = 1 ]
}
create_db() { psql_admin -qc "CREATE DATABASE \"$1\"" >/dev/null || fail "cannot create $1"; }
drop_dbs_like() {
  local db
  for db in $(psql_admin -tAc "SELECT datname FROM pg_database WHERE datname LIKE '$1%'"); do
    psql_admin -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
  done
}

# hold_run_lock ID: a process (like a run's test processes) holding run ID's lock.
hold_run_lock() {
  mkdir -p "$TEST_RUNS_DIR"
  # One process (bash becomes the program), so ending it by its pid releases the lock.
  bash -c 'exec 9>>"$1" && flock 9 && exec "$2" 300' _ "$TEST_RUNS_DIR/$1.lock" "$TMP/bin/other" \
    </dev/null >/dev/null 2>&1 &
  STARTED+=($!)
  poll "run $1's lock is held" test_run_alive "$1"
}

clean_up_drops_only_ended_runs_and_untagged_databases_past_their_age() {
  TEST_RUNS_DIR="$TMP/runs"
  base="kltest$$" # global: the EXIT trap runs after this function returns
  trap 'drop_dbs_like "${base}_"; end_started' EXIT
  hold_run_lock aaa111
  mkdir -p "$TEST_RUNS_DIR" && : >"$TEST_RUNS_DIR/ddd444.lock" # ended: lock file, nobody holds it
  create_db "${base}_raaa111_test_svc_1"
  create_db "${base}_raaa111_tpl_svc_1"
  create_db "${base}_rddd444_test_svc_2"
  create_db "${base}_rddd444_tpl_svc_2"
  create_db "${base}_reee555_test_svc_3" # ended: its lock file is gone too
  create_db "${base}_test_svc_4"        # untagged (a focused run), young
  create_db "${base}_tpl_svc_4"
  TEST_DB_MAX_AGE_HOURS=1000 drop_stale_test_databases "$base"
  db_exists "${base}_raaa111_test_svc_1" || fail "a live run's test database was dropped"
  db_exists "${base}_raaa111_tpl_svc_1" || fail "a live run's template was dropped"
  if db_exists "${base}_rddd444_test_svc_2"; then fail "an ended run's database was kept"; fi
  if db_exists "${base}_rddd444_tpl_svc_2"; then fail "an ended run's template was kept"; fi
  if db_exists "${base}_reee555_test_svc_3"; then fail "a forgotten run's database was kept"; fi
  db_exists "${base}_test_svc_4" || fail "a young untagged database was dropped"
  db_exists "${base}_tpl_svc_4" || fail "a young untagged template was dropped"
  TEST_DB_MAX_AGE_HOURS=0 drop_stale_test_databases "$base"
  if db_exists "${base}_test_svc_4"; then fail "an untagged database past its age was kept"; fi
  if db_exists "${base}_tpl_svc_4"; then fail "an untagged template past its age was kept"; fi
  db_exists "${base}_raaa111_test_svc_1" || fail "a live run's database was dropped for its age"
}

a_run_holds_its_id_while_it_lives_and_its_end_drops_its_databases() {
  TEST_RUNS_DIR="$TMP/runs"
  begin_test_run
  trap 'drop_dbs_like "${TEST_DATABASE_PREFIX}_"; end_started' EXIT
  [[ "$TEST_DATABASE_PREFIX" =~ ^koupang_r[0-9a-f]{6}$ ]] || fail "prefix: $TEST_DATABASE_PREFIX"
  # Seen from another process (the next run's clean-up), the run is live.
  (test_run_alive "$TEST_RUN_ID") || fail "a live run looks ended"
  create_db "${TEST_DATABASE_PREFIX}_tpl_svc_0123456789abcdef"
  create_db "${TEST_DATABASE_PREFIX}_test_svc_1"
  local id=$TEST_RUN_ID
  end_test_run
  if db_exists "${TEST_DATABASE_PREFIX}_tpl_svc_0123456789abcdef"; then fail "template kept"; fi
  if db_exists "${TEST_DATABASE_PREFIX}_test_svc_1"; then fail "test database kept"; fi
  if (test_run_alive "$id"); then fail "an ended run looks live"; fi
}

two_runs_never_claim_one_broker_port_nor_a_port_in_use() {
  TEST_RUNS_DIR="$TMP/runs"
  ready_server # something listening on READY_PORT
  local from=$READY_PORT to=$((READY_PORT + 20))
  claim_test_port "$from" "$to" || fail "no port claimed"
  local first=$TEST_PORT
  [ "$first" != "$READY_PORT" ] || fail "claimed $first, where something listens"
  local second
  second=$(claim_test_port "$from" "$to" && echo "$TEST_PORT") || fail "no second port"
  [ "$second" != "$first" ] || fail "a second run claimed port $first too"
  [ "$second" != "$READY_PORT" ] || fail "claimed $second, where something listens"
}

FAILED=0
for t in \
  a_killed_but_unreaped_service_is_not_running \
  a_live_service_is_running_and_a_recycled_pid_of_another_program_is_not \
  a_killed_service_is_not_up_even_while_something_answers_on_its_port \
  a_live_service_that_answers_ready_is_up_and_one_that_does_not_is_not \
  stopping_a_zombie_signals_nothing_and_forgets_the_pidfile \
  stopping_never_kills_a_process_that_recycled_the_pid \
  stopping_a_live_service_ends_it \
  apt_as_a_non_root_user_without_sudo_stops_with_a_clear_message_and_runs_nothing \
  apt_as_a_non_root_user_goes_through_sudo_and_says_so \
  apt_as_root_runs_directly; do
  run_test "$t"
done
if (source "$HERE/../lib.sh" && pg_up); then
  for t in \
    clean_up_drops_only_ended_runs_and_untagged_databases_past_their_age \
    a_run_holds_its_id_while_it_lives_and_its_end_drops_its_databases \
    two_runs_never_claim_one_broker_port_nor_a_port_in_use; do
    run_test "$t"
  done
else
  echo "skipped the test-run tests: Postgres does not answer"
  FAILED=$((FAILED + 1))
fi
[ "$FAILED" = 0 ] || { echo "$FAILED failed"; exit 1; }
echo "all passed"
