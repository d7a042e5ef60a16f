# productd — `make` (or `make help`) lists the targets.
#
# Every target that talks to Postgres, RabbitMQ, Redis or MinIO first runs
# scripts/services up, which starts (and if needed installs or builds) them
# and is a sub-second no-op when they already answer. Every target that
# compiles first runs scripts/services deps: the image worker binds libvips
# through cgo, so building needs a C compiler and libvips-dev.

.DEFAULT_GOAL := help

GO          ?= go
GOFMT       ?= gofmt
BIN         ?= bin/productd
SERVICES    ?= scripts/services
COVERPROFILE ?= coverage.out
# Both tools are pinned by the tool directives in go.mod (go get -tool pkg@version).
STATICCHECK ?= $(GO) tool staticcheck
GOVULNCHECK ?= $(GO) tool govulncheck
TEST_FLAGS  ?= -race -count=1 -p 2
BENCH_FLAGS ?= -benchmem -count 1

# VCS stamping fails in some checkouts (no commits yet, another user's
# clone) and nothing reads it.
export GOFLAGS ?= -buildvcs=false

# Where `make run` says the API listens: the port of HTTP_ADDR (default :8080).
HTTP_PORT = $(lastword $(subst :, ,$(or $(HTTP_ADDR),:8080)))
API_URL   = http://localhost:$(HTTP_PORT)

# Go sources gofmt checks: everything but dot-folders (.data, .git), bin and testdata.
GO_SOURCES = find . -name '*.go' -not -path './.*' -not -path './bin/*' -not -path '*/testdata/*' -print0

.PHONY: help
help: ## Show this list of targets
	@echo "usage: make <target>   (override variables such as GO, BIN, TEST_FLAGS on the command line)"
	@awk 'BEGIN { FS = ":.*## " } \
		/^## / { printf "\n%s\n", substr($$0, 4) } \
		/^[a-zA-Z0-9_-]+:.*## / { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

## Services

.PHONY: services
services: ## Start Postgres, RabbitMQ, Redis and MinIO on 127.0.0.1 (idempotent)
	@$(SERVICES) up

.PHONY: tools
tools: ## Install what the tests need beyond the services (Debian's chromium)
	@$(SERVICES) tools

.PHONY: services-down
services-down: ## Stop the services that `make services` itself started
	@$(SERVICES) down

.PHONY: services-status
services-status: ## Show whether each service answers, and who started it
	@$(SERVICES) status

.PHONY: deps
deps: ## Install what building needs besides Go: a C compiler and libvips-dev (idempotent)
	@$(SERVICES) deps

## Build and run

.PHONY: build
build: deps ## Build bin/productd
	$(GO) build -o $(BIN) ./cmd/productd

.PHONY: run
run: services build ## Start the services, migrate, and run productd in the foreground
	$(BIN) migrate up
	@echo
	@echo "  API              $(API_URL)"
	@echo "  OpenAPI          $(API_URL)/openapi.yaml"
	@echo "  RabbitMQ         http://localhost:15672  (guest / guest)"
	@echo "  MinIO console    http://localhost:9001   (S3_ACCESS_KEY / S3_SECRET_KEY, default minioadmin)"
	@echo
	exec $(BIN) all

## Quality

.PHONY: test
test: deps services tools ## Run every test (race detector, coverage over all packages) and print total coverage
	$(GO) test $(TEST_FLAGS) -coverpkg=./... -coverprofile=$(COVERPROFILE) ./...
	@$(GO) tool cover -func=$(COVERPROFILE) | tail -n 1

.PHONY: lint
lint: deps ## go mod tidy (must change nothing), gofmt (must list nothing), go vet, staticcheck
	@$(GO) mod tidy -diff || { echo "go.mod or go.sum is not tidy: run go mod tidy and commit the result"; exit 1; }
	@unformatted=$$($(GO_SOURCES) | xargs -0 -r $(GOFMT) -l); \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (run make fmt):"; echo "$$unformatted"; exit 1; \
	fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

# govulncheck reads its database from vuln.go.dev, which these build machines
# cannot reach, so neither lint nor CI depends on it: run it where that host
# answers.
.PHONY: vuln
vuln: deps ## govulncheck: needs https://vuln.go.dev, unreachable from the build machines, so not in lint or CI
	$(GOVULNCHECK) ./...

.PHONY: fmt
fmt: ## Format every Go file in place
	@$(GO_SOURCES) | xargs -0 -r $(GOFMT) -w

.PHONY: cover-html
cover-html: ## Turn coverage.out (from make test) into coverage.html
	@test -f $(COVERPROFILE) || { echo "no $(COVERPROFILE): run make test first"; exit 1; }
	$(GO) tool cover -html=$(COVERPROFILE) -o coverage.html
	@echo "open coverage.html"

.PHONY: bench
bench: deps services ## Run every benchmark against its ceiling and print the targets of docs/ARCHITECTURE.md (~50 min on 2 busy cores)
	@scripts/bench

.PHONY: bench-quick
bench-quick: deps services ## Shorter runs of every benchmark, for a look (~4 min)
	@scripts/bench quick

# The chaos suite takes away only private Postgres, RabbitMQ, Redis and
# MinIO instances it starts itself in a scratch directory (internal/sandbox),
# so it runs beside other tests and never touches the shared services.
# `services` installs the Debian packages and builds MinIO when missing.
CHAOS_FLAGS ?=
.PHONY: chaos
chaos: deps services build ## Chaos suite: every fault, 2,000 products each, against private services; prints the table (35–45 min)
	$(GO) run ./cmd/chaos -productd $(BIN) -logs .data/chaos/logs -json .data/chaos/table.json $(CHAOS_FLAGS)

.PHONY: chaos-short
chaos-short: deps services build ## Short chaos suite (CI): a broker outage and a worker kill, 300 products each (~5 min)
	$(GO) run ./cmd/chaos -productd $(BIN) -short -logs .data/chaos/logs-short $(CHAOS_FLAGS)

.PHONY: clean
clean: ## Remove build and coverage output (not .data/)
	rm -rf bin $(COVERPROFILE) coverage.html
