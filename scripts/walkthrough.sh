#!/usr/bin/env bash
# `make walkthrough`: the Postman walkthrough (postman/koupang.postman_collection.json) run
# headless by newman against the running `make up` stack. Fails when any `pm.test` fails.
#
#   scripts/walkthrough.sh              against `make up`'s stack (the ports in scripts/lib.sh)
#   scripts/walkthrough.sh --own-stack [--fuzz N]
#       starts a stack of its own first (debug build unless KOUPANG_BUILD_PROFILE says otherwise;
#       its own ports, databases, in-memory broker and Redis keys), seeds it, runs the
#       walkthrough, then with --fuzz the OpenAPI check (scripts/check-openapi) and a short
#       schemathesis pass of N examples per operation on every service (scripts/fuzz-api), and
#       removes the stack again: what `make test` does.
#   --compose-kafka: the services of its own stack take the Kafka settings docker-compose.yml
#       gives them (for Apache Kafka: 500 ms fetch wait, no dozing, idempotent producers) on the
#       local broker: `make test` runs the walkthrough so a second time, as the check that the
#       services start and settle orders with what compose passes (there is no Docker here).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_newman() {
  if [ ! -x postman/node_modules/.bin/newman ]; then
    command -v npm >/dev/null || die "npm is needed for newman (Debian: apt-get install nodejs npm)"
    say "installing newman (npm, pinned in postman/package-lock.json)"
    (cd postman && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

own=0 fuzz=0 compose_kafka=0
while [ $# -gt 0 ]; do
  case $1 in
    --own-stack) own=1 ;;
    --fuzz) fuzz=${2:?--fuzz N}; shift ;;
    --compose-kafka) compose_kafka=1 ;;
    *) die "unknown argument $1" ;;
  esac
  shift
done
ensure_newman

if [ "$own" = 1 ]; then
  ensure_tools
  ensure_postgres
  ensure_redis
  dev="" lock_fds=()
  finish() {
    local status=$? f
    # Cleanup goes on whatever fails in it.
    set +e
    if [ "$status" != 0 ] && [ -n "$dev" ]; then
      for f in "$dev"/logs/*.log; do
        [ -f "$f" ] || continue
        warn "last lines of $f"
        tail -n 15 "$f" >&2
      done
    fi
    if [ -n "$dev" ]; then
      bash "$ROOT/scripts/down.sh" >/dev/null 2>&1
      rm -rf "$dev"
    fi
    if [ -n "${KOUPANG_REDIS_PREFIX:-}" ]; then
      redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" --scan --pattern "${KOUPANG_REDIS_PREFIX}*" |
        xargs -r -n 500 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" del >/dev/null
    fi
    end_test_run
    exit "$status"
  }
  trap finish EXIT
  # A run of its own: its databases carry the run id (`koupang_r<id>_test_walk_*`), so they are
  # dropped at the end, or by the next run's sweep if this one is killed.
  begin_test_run
  lock_fds+=("$TEST_RUN_LOCK")
  dev=$(mktemp -d)
  ports=()
  for _ in 1 2 3 4 5 6; do
    claim_test_port 18100 18999 || die "no free port in 18100-18999 for the walkthrough's stack"
    ports+=("$TEST_PORT")
    lock_fds+=("$TEST_PORT_LOCK")
  done
  export KOUPANG_DEV_DIR="$dev" KOUPANG_DB_PREFIX="${TEST_DATABASE_PREFIX}_test_walk_"
  export KOUPANG_REDIS_PREFIX="koupang:walk${TEST_RUN_ID}:" KOUPANG_BROKER_STORAGE=memory
  export KOUPANG_BUILD_PROFILE="${KOUPANG_BUILD_PROFILE:-dev}"
  export IDENTITY_PORT=${ports[0]} CATALOG_PORT=${ports[1]} CART_PORT=${ports[2]}
  export ORDER_PORT=${ports[3]} PAYMENT_PORT=${ports[4]} KAFKA_PORT=${ports[5]}
  if [ "$compose_kafka" = 1 ]; then
    # Every <SERVICE>_KAFKA_* setting of docker-compose.yml but the broker address.
    while read -r setting; do
      say "as in docker-compose.yml: $setting"
      export "${setting?}"
    done < <(sed -nE 's/^ +([A-Z]+_KAFKA_[A-Z_]+): *"?([^"#]*[^" #])"? *$/\1=\2/p' docker-compose.yml | grep -v '_KAFKA_BROKERS=')
    [ -n "${ORDER_KAFKA_FETCH_WAIT_MS:-}" ] || die "no Kafka settings read from docker-compose.yml (has its layout changed?)"
  fi
  say "starting a stack of its own for the walkthrough (ports ${ports[*]})"
  # The services and the broker must not inherit the run's locks: killed with this script, they
  # would keep the run looking alive (its databases never swept, its ports never free).
  if ! (for fd in "${lock_fds[@]}"; do eval "exec $fd>&-"; done; exec bash "$ROOT/scripts/up.sh") >"$dev/up.log" 2>&1; then
    tail -n 40 "$dev/up.log" >&2
    die "the walkthrough's stack did not start"
  fi
  grep -E '^(catalog|orders):' "$dev/up.log" || true
fi

url() { echo "http://127.0.0.1:${!1:-$2}"; }
say "running the Postman walkthrough (newman)"
postman/node_modules/.bin/newman run postman/koupang.postman_collection.json \
  -e postman/local.postman_environment.json \
  --env-var "identity_url=$(url IDENTITY_PORT "${PORT_OF[identity]}")" \
  --env-var "catalog_url=$(url CATALOG_PORT "${PORT_OF[catalog]}")" \
  --env-var "cart_url=$(url CART_PORT "${PORT_OF[cart]}")" \
  --env-var "order_url=$(url ORDER_PORT "${PORT_OF[order]}")" \
  --env-var "payment_url=$(url PAYMENT_PORT "${PORT_OF[payment]}")" \
  --env-var "seed_password=$(seed_password)" \
  --color off --reporters cli

if [ "$fuzz" -gt 0 ]; then
  say "every route in /openapi.json, every request body with an example"
  contracts=()
  for s in "${SERVICES[@]}"; do
    port_var="$(echo "$s" | tr '[:lower:]' '[:upper:]')_PORT"
    contracts+=("$s=$(url "$port_var" "${PORT_OF[$s]}")")
  done
  python3 "$ROOT/scripts/check-openapi" "${contracts[@]}"
  bash "$ROOT/scripts/fuzz-api" "$fuzz"
fi
