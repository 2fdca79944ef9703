#!/usr/bin/env bash
# Demo data: an admin, two sellers and two buyers, all verified. Safe to run again.
# Catalog data is created through the catalog API (scripts/seed_catalog.py).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
load_dotenv

password=$(seed_password)
export KOUPANG_PROFILE=local
export IDENTITY_DATABASE_URL
IDENTITY_DATABASE_URL=$(db_url_for IDENTITY "${DB_OF[identity]}")
export IDENTITY_JWT_PRIVATE_KEY_PATH="$DEV/keys/identity-private.pem"
identity_bin=$(bin_path identity)

say "seeding demo users"
"$identity_bin" create-admin --username admin --email admin@koupang.local --password "$password" --exists-ok
for u in seller1 seller2; do
  "$identity_bin" create-user --role SELLER --username "$u" --email "$u@koupang.local" --password "$password" --verified --exists-ok
done
for u in buyer1 buyer2; do
  "$identity_bin" create-user --role BUYER --username "$u" --email "$u@koupang.local" --password "$password" --verified --exists-ok
done

# The catalog is seeded through its API (as the admin and the sellers), when it is running.
if curl -fsS "http://127.0.0.1:${PORT_OF[catalog]}/health/live" >/dev/null 2>&1; then
  say "seeding the demo catalog"
  python3 "$ROOT/scripts/seed_catalog.py" "http://127.0.0.1:${PORT_OF[identity]}" \
    "http://127.0.0.1:${PORT_OF[catalog]}" "$password"
else
  warn "catalog is not running; demo products not seeded (run make up)"
fi

# Demo orders in every state, when the saga's services are running (after the catalog seed).
if curl -fsS "http://127.0.0.1:${PORT_OF[order]}/health/ready" >/dev/null 2>&1 &&
  curl -fsS "http://127.0.0.1:${PORT_OF[payment]}/health/ready" >/dev/null 2>&1; then
  say "seeding demo orders (buyer1, buyer2)"
  # On a stack whose demo products were changed since (by hand, or by scripts/fuzz-api) an order
  # may not be placeable any more: say so and go on. A stack of its own must seed cleanly.
  python3 "$ROOT/scripts/seed_orders.py" "http://127.0.0.1:${PORT_OF[identity]}" \
    "http://127.0.0.1:${PORT_OF[catalog]}" "http://127.0.0.1:${PORT_OF[order]}" "$password" ||
    { [ -z "${KOUPANG_DEV_DIR:-}" ] || die "demo orders not seeded"; warn "demo orders not (all) seeded: see above"; }
else
  warn "order or payment is not running; demo orders not seeded (run make up)"
fi
