#!/usr/bin/env bash
# `make down`: stop what `make up` started (services first, then the broker). Data stays in .dev/.
source "$(dirname "$0")/lib.sh"
# In reverse start order: identity, which the others depend on, goes last.
for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
  s=${SERVICES[$i]}
  if [ -f "$DEV/run/$s.pid" ]; then say "stopping $s"; stop_pidfile "$DEV/run/$s.pid" "$s"; fi
done
if [ -f "$DEV/run/broker.pid" ]; then say "stopping the broker"; stop_pidfile "$DEV/run/broker.pid" tansu; fi
say "stopped"
