#!/usr/bin/env bash
# `make lint`: formatting, clippy with warnings as errors, and one version of each dependency.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
say "one version of each dependency"
dups=$(awk '/^name = /{gsub(/"/,"",$3); n[$3]++} END{for(k in n) if(n[k]>1) print k}' Cargo.lock | sort -u)
allowed_file="$ROOT/scripts/allowed-duplicates.txt"
unexpected=$(comm -23 <(echo "$dups" | sed '/^$/d') <(sed '/^#/d;/^$/d' "$allowed_file" | sort -u))
if [ -n "$unexpected" ]; then
  die "crates with more than one version in Cargo.lock (unify them, or list them in scripts/allowed-duplicates.txt with a reason): $unexpected"
fi
say "docker-compose.yml: every service setting documented in .env.example"
python3 "$ROOT/scripts/check-compose-env"
# Debian's docker-compose (v1) validates the file where the compose plugin is absent (no Docker
# engine is needed for `config`); installed like the other tools when apt-get can.
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1 &&
  command -v apt-get >/dev/null 2>&1; then
  (apt_install --no-install-recommends docker-compose) || warn "could not install docker-compose"
fi
if docker compose version >/dev/null 2>&1; then
  say "docker compose config"
  docker compose -f "$ROOT/docker-compose.yml" config -q
elif command -v docker-compose >/dev/null 2>&1; then
  # Compose v1 (Debian's docker-compose) predates the top-level `name`: check the rest.
  say "docker-compose config (v1, without the top-level name)"
  copy="$ROOT/.docker-compose.check.yml"
  grep -v '^name:' "$ROOT/docker-compose.yml" >"$copy"
  status=0
  docker-compose -f "$copy" config -q || status=$?
  rm -f "$copy"
  [ "$status" = 0 ] || die "docker-compose.yml is not a valid compose file"
else
  warn "docker compose is not installed here: docker-compose.yml was not validated by compose itself"
fi
