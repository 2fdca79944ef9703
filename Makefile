# The two commands: `make up` (the whole local stack) and `make test` (every test).
.PHONY: up down test lint seed bench audit logs walkthrough

up:
	@bash scripts/up.sh

down:
	@bash scripts/down.sh

test:
	@bash scripts/test.sh

lint:
	@bash scripts/lint.sh

seed:
	@bash scripts/seed.sh

walkthrough:
	@bash scripts/walkthrough.sh

bench:
	@bash scripts/bench

# The invariant auditor against the running stack (orders settled, stock conserved, ledger
# balanced, outboxes drained, no dead letters); exit 1 with the list when anything is broken.
audit:
	@cargo run -q --profile "$${KOUPANG_BUILD_PROFILE:-release}" -p auditor -- --wait-secs 30

logs:
	@tail -n 50 -f .dev/logs/*.log
