#!/usr/bin/env bash
# `make down`: stop what `make up` started (services first, then the broker). Data stays in .dev/.
source "$(dirname "$0")/lib.sh"
for s in catalog cart order payment identity; do
  if [ -f "$DEV/run/$s.pid" ]; then say "stopping $s"; stop_pidfile "$DEV/run/$s.pid" "$s"; fi
done
if [ -f "$DEV/run/broker.pid" ]; then say "stopping the broker"; stop_pidfile "$DEV/run/broker.pid" tansu; fi
say "stopped"
