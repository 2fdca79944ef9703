#!/usr/bin/env bash
# Shared helpers for the stack scripts. Sourced, not run.
# Everything a fresh machine of this kind lacks is installed here, by package name from the
# registries the machine reaches (Debian apt, crates.io): nothing is assumed to be installed by hand.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Where the local stack keeps keys, logs, pids, mail and broker data (`make up`); the walkthrough
# in `make test` runs a stack of its own in a temporary one.
DEV="${KOUPANG_DEV_DIR:-$ROOT/.dev}"
CACHE="${KOUPANG_CACHE:-$HOME/.cache/koupang}"
TANSU_VERSION=0.6.0
TANSU="$CACHE/bin/tansu"

PG_HOST="${PGHOST:-127.0.0.1}"
PG_PORT="${PGPORT:-5432}"
PG_USER="${PGUSER:-postgres}"
REDIS_HOST="${REDIS_HOST:-127.0.0.1}"
REDIS_PORT="${REDIS_PORT:-6379}"

# The one list of services every script reads: name, port, Postgres database (empty: none).
# Start order (identity first: the others verify its tokens; catalog before cart, which prices
# from it; order after both, which it reads at placement). Adding a service is one line here
# (docs/adding-a-service.md).
SERVICE_TABLE=(
  "identity ${IDENTITY_PORT:-8081} identity"
  "catalog ${CATALOG_PORT:-8082} catalog"
  "cart ${CART_PORT:-8083} -"
  "order ${ORDER_PORT:-8084} orders"
  "payment ${PAYMENT_PORT:-8085} payment"
)
SERVICES=()
DATABASES=()
declare -A PORT_OF=()
declare -A DB_OF=()
for _row in "${SERVICE_TABLE[@]}"; do
  read -r _name _port _db <<<"$_row"
  SERVICES+=("$_name")
  PORT_OF[$_name]=$_port
  if [ "$_db" != - ]; then
    # KOUPANG_DB_PREFIX: a stack of its own beside `make up`'s (the walkthrough in `make test`).
    DB_OF[$_name]=${KOUPANG_DB_PREFIX:-}$_db
    DATABASES+=("${DB_OF[$_name]}")
  fi
done
unset _row _name _port _db

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
warn() { printf '\033[1;33mwarning:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# as_root CMD...: run CMD as root — directly when we are root, through sudo when it exists, else
# stop and say what needed root (never half-install as an unprivileged user).
as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    die "this step needs root and sudo is not installed: $* (run it as root, or install it by hand)"
  fi
}

apt_updated=0
apt_install() {
  command -v apt-get >/dev/null || die "apt-get not found: install $* by hand"
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "installing $* needs root: run as root, or install them by hand"
    say "installing $* with apt-get needs root: using sudo (it may ask for your password)"
  fi
  if [ "$apt_updated" = 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_tools() {
  command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
  local missing=()
  command -v pg_isready >/dev/null || missing+=(postgresql-client)
  command -v redis-cli >/dev/null || missing+=(redis-tools)
  command -v curl >/dev/null || missing+=(curl)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt_install "${missing[@]}"
  fi
  if ! cargo nextest --version >/dev/null 2>&1; then
    say "installing cargo-nextest (crates.io)"
    cargo install cargo-nextest --locked
  fi
}

pg_up() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; }

# The pg_hba.conf lines for TCP from 127.0.0.1 and ::1, switched to `trust` (no password).
PG_HBA_TRUST_SED='s/^\(host.*127.0.0.1\/32\s*\)\S*$/\1trust/; s/^\(host.*::1\/128\s*\)\S*$/\1trust/'

ensure_postgres() {
  pg_up && return 0
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    say "installing PostgreSQL (apt package postgresql)"
    apt_install postgresql
    local conf
    conf=$(ls -d /etc/postgresql/*/main | head -n1)
    # Local development and tests connect over TCP as 'postgres' without a password. Only the
    # cluster this script just installed is changed, and only if it does not trust them already.
    if as_root grep -E '^host.*(127\.0\.0\.1/32|::1/128)' "$conf/pg_hba.conf" | grep -vE '\strust\s*$' >/dev/null; then
      say "letting local TCP connections (127.0.0.1, ::1) in without a password: setting them to 'trust' in $conf/pg_hba.conf (a development database only)"
      as_root sed -i "$PG_HBA_TRUST_SED" "$conf/pg_hba.conf"
    fi
  fi
  say "starting PostgreSQL"
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_up && return 0; sleep 1; done
  die "PostgreSQL does not answer on $PG_HOST:$PG_PORT"
}

redis_up() { redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

ensure_redis() {
  redis_up && return 0
  if ! command -v redis-server >/dev/null; then
    say "installing Redis"
    apt_install redis-server
  fi
  say "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/koupang.log
  for _ in $(seq 1 20); do redis_up && return 0; sleep 0.5; done
  die "Redis does not answer on $REDIS_HOST:$REDIS_PORT"
}

ensure_databases() {
  for db in "${DATABASES[@]}"; do
    if ! psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
      say "creating database $db"
      psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -qc "CREATE DATABASE \"$db\""
    fi
  done
}

# The Kafka-compatible broker for machines without Docker (see docs/adr/003-local-broker.md).
ensure_tansu() {
  if [ -x "$TANSU" ] && "$TANSU" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
    return 0
  fi
  say "building tansu $TANSU_VERSION into $CACHE (once per machine; about 8 minutes)"
  mkdir -p "$CACHE"
  cargo install tansu --version "$TANSU_VERSION" --locked --features libsql,dynostore --root "$CACHE"
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# start_broker DATA_DIR PORT STORAGE LOG PIDFILE — storage is sqlite://<file> or memory://tansu/
start_broker() {
  local dir=$1 port=$2 storage=$3 log=$4 pidfile=$5
  mkdir -p "$dir"
  if [ -f "$pidfile" ] && process_running "$(cat "$pidfile")" tansu && port_open 127.0.0.1 "$port"; then
    return 0
  fi
  port_open 127.0.0.1 "$port" && die "port $port is taken by something else; set KAFKA_PORT"
  # tansu resolves a sqlite path relative to its working directory, so start it from the data dir.
  # `exec` makes the background subshell become the broker (so the pid is the broker's), and no
  # descriptor of the caller stays open in it (a caller piping our output would wait forever).
  (cd "$dir" && exec nohup "$TANSU" broker \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine "$storage" </dev/null >"$log" 2>&1) &
  echo $! >"$pidfile"
  for _ in $(seq 1 50); do port_open 127.0.0.1 "$port" && return 0; sleep 0.2; done
  die "the broker did not start; see $log"
}

# process_running PID NAME: PID is a live process running the program NAME (its argv[0] ends in
# /NAME). `kill -0` is not enough: a killed process stays in the process table as a zombie until
# its parent reaps it (and `kill -0` succeeds on it), and a pid left in a pidfile can be recycled
# by an unrelated program.
process_running() {
  local pid=$1 name=$2 stat argv0=
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  if [ ! -d /proc/self ]; then
    # No procfs (not Linux): the state from ps, no program check.
    stat=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
    stat=${stat// /}
    [[ -n "$stat" && "$stat" != Z* ]]
    return
  fi
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  # Field 3 is the state; field 2 (the command name, in parentheses) may hold spaces.
  stat=${stat##*") "}
  case ${stat%% *} in Z | X | x) return 1 ;; esac
  IFS= read -r -d '' argv0 <"/proc/$pid/cmdline" 2>/dev/null || return 1
  [ "${argv0##*/}" = "$name" ]
}

# stop_pidfile PIDFILE NAME: stop the process of PIDFILE if it still runs NAME, then forget it.
stop_pidfile() {
  local pidfile=$1 name=$2
  [ -f "$pidfile" ] || return 0
  local pid
  pid=$(cat "$pidfile")
  if process_running "$pid" "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do process_running "$pid" "$name" || break; sleep 0.2; done
    if process_running "$pid" "$name"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$pidfile"
}

# service_ready NAME: the service answers 200 on /health/ready on its port.
service_ready() {
  curl -fsS --max-time 5 "http://127.0.0.1:${PORT_OF[$1]}/health/ready" >/dev/null 2>&1
}

# service_up NAME: the process of NAME's pidfile is alive, runs NAME, and NAME is ready.
service_up() {
  local pidfile="$DEV/run/$1.pid"
  [ -f "$pidfile" ] && process_running "$(cat "$pidfile")" "$1" && service_ready "$1"
}

psql_admin() { psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres "$@"; }

# --- Test runs. Each `make test` names its databases after a run id of its own and runs its broker
# on a port of its own, so runs on one machine (and focused `cargo nextest` runs beside them, whose
# databases are untagged `koupang_test_…`) never drop or share each other's databases or broker.
TEST_RUNS_DIR="${TMPDIR:-/tmp}/koupang-test-runs"
# Untagged test databases (no run to ask) count as leftovers after this long.
TEST_DB_MAX_AGE_HOURS="${KOUPANG_TEST_DB_MAX_AGE_HOURS:-6}"

# begin_test_run: pick a run id nobody holds and lock it for as long as this shell or any of its
# children lives (a run killed mid-way stays "live" while its test processes do). Sets TEST_RUN_ID
# and TEST_RUN_LOCK (the lock's descriptor) and exports TEST_DATABASE_PREFIX (`koupang_r<id>`),
# which shared::test_utils puts before every database and template name.
begin_test_run() {
  mkdir -p "$TEST_RUNS_DIR"
  local id
  for _ in $(seq 1 20); do
    id=$(printf '%06x' $(((RANDOM << 15 | RANDOM) & 0xffffff)))
    # noclobber: the lock file is created here or the id is taken.
    if (set -o noclobber && : >"$TEST_RUNS_DIR/$id.lock") 2>/dev/null; then
      exec {TEST_RUN_LOCK}>>"$TEST_RUNS_DIR/$id.lock"
      flock -n "$TEST_RUN_LOCK" || die "cannot lock $TEST_RUNS_DIR/$id.lock"
      TEST_RUN_ID=$id
      export TEST_DATABASE_PREFIX="koupang_r$id"
      return 0
    fi
  done
  die "cannot find a free test run id in $TEST_RUNS_DIR"
}

# end_test_run: drop what this run left (its templates, and databases of tests that were killed)
# and forget its id.
end_test_run() {
  [ -n "${TEST_RUN_ID:-}" ] || return 0
  local db
  while read -r db; do
    [ -n "$db" ] && psql_admin -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
  done < <(psql_admin -tAc "SELECT datname FROM pg_database WHERE datname LIKE '${TEST_DATABASE_PREFIX}\_%'")
  rm -f "$TEST_RUNS_DIR/$TEST_RUN_ID.lock"
  exec {TEST_RUN_LOCK}>&-
  TEST_RUN_ID=
}

# test_run_alive ID: the run's lock is held (by the run or a child of it).
test_run_alive() {
  [ -e "$TEST_RUNS_DIR/$1.lock" ] && ! flock -n "$TEST_RUNS_DIR/$1.lock" true
}

# drop_stale_test_databases [BASE]: drop the test databases and templates named `BASE_…` (default
# koupang) that no live run can be using: those of runs that ended (their lock is free or gone),
# and untagged ones older than TEST_DB_MAX_AGE_HOURS. A live run's databases are never touched.
drop_stale_test_databases() {
  local base=${1:-koupang} rows db age
  local match="datname ~ '^${base}_(r[0-9a-z]+_)?(test|tpl)_'"
  # The age is the creation time of the database's PG_VERSION file (reading it needs superuser;
  # without, untagged databases are kept).
  rows=$(psql_admin -tAF ' ' -c "SELECT datname, COALESCE(EXTRACT(EPOCH FROM now() - (pg_stat_file('base/' || oid || '/PG_VERSION', true)).modification)::bigint, -1) FROM pg_database WHERE $match" 2>/dev/null) ||
    rows=$(psql_admin -tAF ' ' -c "SELECT datname, -1 FROM pg_database WHERE $match")
  while read -r db age; do
    [ -n "$db" ] || continue
    if [[ "$db" =~ ^${base}_r([0-9a-z]+)_(test|tpl)_ ]]; then
      test_run_alive "${BASH_REMATCH[1]}" && continue
    elif [ "$age" -lt 0 ] || [ "$age" -lt $((TEST_DB_MAX_AGE_HOURS * 3600)) ]; then
      continue
    fi
    psql_admin -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
  done <<<"$rows"
}

# claim_test_port FROM TO: the first port of FROM..TO that no other test run has claimed and on
# which nothing listens. Sets TEST_PORT and TEST_PORT_LOCK (the claim's descriptor, held like the
# run's lock); fails when there is none.
claim_test_port() {
  local from=$1 to=$2 port
  mkdir -p "$TEST_RUNS_DIR"
  for ((port = from; port <= to; port++)); do
    exec {TEST_PORT_LOCK}>>"$TEST_RUNS_DIR/port-$port.lock"
    if flock -n "$TEST_PORT_LOCK" && ! port_open 127.0.0.1 "$port"; then
      TEST_PORT=$port
      return 0
    fi
    exec {TEST_PORT_LOCK}>&-
  done
  return 1
}

ensure_keys() {
  local dir="$DEV/keys"
  if [ ! -f "$dir/identity-private.pem" ]; then
    say "generating the access-token signing key (never committed)"
    mkdir -p "$dir"
    if command -v openssl >/dev/null; then
      openssl genpkey -algorithm ed25519 -out "$dir/identity-private.pem"
      openssl pkey -in "$dir/identity-private.pem" -pubout -out "$dir/identity-public.pem"
      chmod 600 "$dir/identity-private.pem"
    else
      "$(bin_path identity)" gen-keys --out "$dir"
    fi
  fi
}

build_profile() { echo "${KOUPANG_BUILD_PROFILE:-release}"; }

bin_path() {
  local profile
  profile=$(build_profile)
  [ "$profile" = dev ] && profile=debug
  echo "${CARGO_TARGET_DIR:-$ROOT/target}/$profile/$1"
}

# A service's database URL: <SERVICE>_DATABASE_URL if set, else the local server's database.
db_url_for() {
  local var="$1_DATABASE_URL"
  echo "${!var:-postgres://$PG_USER@$PG_HOST:$PG_PORT/$2}"
}

# The developer's .env (settings for `make up`); a stack of its own (the walkthrough in
# `make test`, KOUPANG_DEV_DIR set) ignores it.
load_dotenv() {
  if [ -f "$ROOT/.env" ] && [ -z "${KOUPANG_DEV_DIR:-}" ]; then
    set -a
    source "$ROOT/.env"
    set +a
  fi
}

seed_password() { echo "${KOUPANG_SEED_PASSWORD:-Koupang-dem0!}"; }
