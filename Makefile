# The two commands: `make up` (the whole local stack) and `make test` (every test).
.PHONY: up down test lint seed bench logs

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

bench:
	@bash scripts/bench

logs:
	@tail -n 50 -f .dev/logs/*.log
