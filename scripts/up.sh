#!/usr/bin/env bash
# `make up`: the whole local stack, from a fresh machine, safe to run twice.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

load_dotenv
mkdir -p "$DEV/logs" "$DEV/run" "$DEV/mail" "$DEV/broker"

ensure_tools
ensure_postgres
ensure_redis
ensure_databases
ensure_tansu

KAFKA_PORT="${KAFKA_PORT:-9092}"
# KOUPANG_BROKER_STORAGE=memory keeps the broker's data in RAM (lost when it stops; for
# benchmarks: docs/benchmarks.md); the default SQLite file survives restarts.
case "${KOUPANG_BROKER_STORAGE:-sqlite}" in
  sqlite) storage="sqlite://tansu.db"; where="data in .dev/broker" ;;
  memory) storage="memory://tansu/"; where="data in memory only" ;;
  *) die "KOUPANG_BROKER_STORAGE must be sqlite or memory" ;;
esac
say "starting the broker on 127.0.0.1:$KAFKA_PORT ($where)"
start_broker "$DEV/broker" "$KAFKA_PORT" "$storage" "$DEV/logs/broker.log" "$DEV/run/broker.pid"

profile=$(build_profile)
say "building the services ($profile)"
packages=()
for s in "${SERVICES[@]}"; do packages+=(-p "$s"); done
cargo build --profile "$profile" "${packages[@]}"

ensure_keys

export KOUPANG_PROFILE=local
export KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
for s in "${SERVICES[@]}"; do
  pidfile="$DEV/run/$s.pid"
  if service_up "$s"; then
    say "$s already running and ready (pid $(cat "$pidfile"))"
    continue
  fi
  # A process that is alive but not ready (stuck, or started against a broker that is gone) is
  # restarted; a dead one (even one not yet reaped) is simply started again.
  if [ -f "$pidfile" ] && process_running "$(cat "$pidfile")" "$s"; then
    say "$s (pid $(cat "$pidfile")) runs but is not ready: restarting it"
  fi
  stop_pidfile "$pidfile" "$s"
  upper=$(echo "$s" | tr '[:lower:]' '[:upper:]')
  settings=("${upper}_PORT=${PORT_OF[$s]}")
  # KOUPANG_REDIS_PREFIX: keys of a stack of its own apart from `make up`'s (the walkthrough).
  [ -n "${KOUPANG_REDIS_PREFIX:-}" ] && settings+=("${upper}_REDIS_PREFIX=$KOUPANG_REDIS_PREFIX")
  if [ -n "${DB_OF[$s]:-}" ]; then
    settings+=("${upper}_DATABASE_URL=$(db_url_for "$upper" "${DB_OF[$s]}")")
  fi
  say "starting $s on :${PORT_OF[$s]}"
  env "${settings[@]}" \
    "${upper}_JWT_PUBLIC_KEY_PATH=$DEV/keys/identity-public.pem" \
    "${upper}_KAFKA_BROKERS=$KAFKA_BROKERS" \
    IDENTITY_JWT_PRIVATE_KEY_PATH="$DEV/keys/identity-private.pem" \
    IDENTITY_MAIL_DIR="$DEV/mail" \
    CART_CATALOG_URL="http://127.0.0.1:${PORT_OF[catalog]}" \
    ORDER_CATALOG_URL="http://127.0.0.1:${PORT_OF[catalog]}" \
    ORDER_CART_URL="http://127.0.0.1:${PORT_OF[cart]}" \
    nohup "$(bin_path "$s")" </dev/null >>"$DEV/logs/$s.log" 2>&1 &
  echo $! >"$pidfile"
done

for s in "${SERVICES[@]}"; do
  url="http://127.0.0.1:${PORT_OF[$s]}/health/ready"
  ok=0
  for _ in $(seq 1 60); do
    if curl -fsS "$url" >/dev/null 2>&1; then ok=1; break; fi
    process_running "$(cat "$DEV/run/$s.pid")" "$s" || break
    sleep 0.5
  done
  [ "$ok" = 1 ] || { tail -n 30 "$DEV/logs/$s.log" >&2; die "$s is not ready; see .dev/logs/$s.log"; }
  say "$s ready"
done

"$ROOT/scripts/seed.sh"

cat <<INFO

Koupang is up.
  identity  http://127.0.0.1:${PORT_OF[identity]}   (OpenAPI: /openapi.json, JWKS: /.well-known/jwks.json)
  catalog   http://127.0.0.1:${PORT_OF[catalog]}   (OpenAPI: /openapi.json; try /api/v1/products)
  cart      http://127.0.0.1:${PORT_OF[cart]}   (OpenAPI: /openapi.json; a buyer's token)
  order     http://127.0.0.1:${PORT_OF[order]}   (OpenAPI: /openapi.json; POST /api/v1/orders needs an Idempotency-Key)
  payment   http://127.0.0.1:${PORT_OF[payment]}   (OpenAPI: /openapi.json; mock gateway: tok_visa, tok_decline, tok_timeout)
  broker    127.0.0.1:$KAFKA_PORT (tansu)
  logs      .dev/logs/<service>.log     mail: .dev/mail/
Demo users (password for all: $(seed_password)):
  admin, seller1, seller2, buyer1, buyer2
  buyer1 and buyer2 have demo orders (confirmed, shipped, delivered, cancelled and refunded);
  seller1 and seller2 see their lines (GET /api/v1/orders/seller/me), admin the ledger.
Walk through the API: make walkthrough (Postman collection in postman/, run by newman)
Stop with: make down
INFO
