# datakit — build, test and run targets. `make demo` and `make test` are the
# two commands a newcomer needs (see README.md).

GO        ?= go
BIN       := bin/datakit
VERSION   ?= 0.1.0-dev
LDFLAGS   := -X main.version=$(VERSION)
FUZZTIME  ?= 10s
# Static analysis tools, pinned (hardening.md §4); `make test` and `make check`
# install them into bin/tools on first use.
STATICCHECK_VERSION := v0.8.2
GOVULNCHECK_VERSION := v1.9.0
GOSEC_VERSION       := v2.30.0
TOOLS     := $(CURDIR)/bin/tools
VULNDB    ?= $(abspath $(wildcard $(CURDIR)/../shared/vulndb))
# The oldest Go toolchain allowed to build the gateway is go.mod's go
# directive (hardening.md §5: go1.26.6 fixed CVEs in net/http).
GO_FLOOR  := $(shell sed -n 's/^go //p' go.mod)

# $(call install-tool,BINARY,PACKAGE,VERSION): go install PACKAGE@VERSION into
# bin/tools unless bin/tools/BINARY was built from VERSION already (gosec
# takes minutes to build).
install-tool = [ "$$($(GO) version -m $(TOOLS)/$(1) 2>/dev/null | awk '$$1 == "mod" {print $$3}')" = "$(3)" ] || \
	{ echo "go install $(2)@$(3)"; GOBIN=$(TOOLS) $(GO) install $(2)@$(3); }

.PHONY: build test bench fuzz run demo lint check check-extra bench-proxy tools soak

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/datakit

# The CI gates (hardening.md T50): go vet, staticcheck, govulncheck against
# the offline vulnerability database when ../shared/vulndb exists (there is
# no network in CI), then the whole suite with the race detector (goleak runs
# in the packages' TestMain).
test:
	$(GO) vet ./...
	@$(call install-tool,staticcheck,honnef.co/go/tools/cmd/staticcheck,$(STATICCHECK_VERSION))
	$(TOOLS)/staticcheck ./...
	@if [ -n "$(VULNDB)" ]; then \
	  $(call install-tool,govulncheck,golang.org/x/vuln/cmd/govulncheck,$(GOVULNCHECK_VERSION)) && \
	  echo "$(TOOLS)/govulncheck -db file://$(VULNDB) ./..." && \
	  $(TOOLS)/govulncheck -db file://$(VULNDB) ./...; \
	else echo "govulncheck skipped: no ../shared/vulndb"; fi
	$(GO) test -race -count=1 ./...

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./engine/... ./nodes/... ./gateway/router/...

# Short runs of every fuzz target; their seed corpora also run in `make test`.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$target"; \
	    $(GO) test -run='^$$' -fuzz="^$$target$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; \
	done

# A DB-less gateway on 127.0.0.1:8000 with the demo graphs and built-in
# mock services; it prints curl commands to try.
demo run: build
	./$(BIN) demo

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Load harness (needs 2 cores, installs wrk and nginx-light with apt-get if
# missing): the whole gateway against the upstream and nginx, as ratios; see
# bench/README.md. Writes bench/results/latest.txt.
bench-proxy:
	GO=$(GO) bash bench/run.sh

# `make check` is `make test` plus the slower gates in check-extra. CI runs
# `make test` and then `make check-extra` (see .ci/run), so the suite runs
# once; locally `make check` runs everything.
check: test check-extra

# The toolchain floor, then gosec over the whole module. Findings that are
# deliberate carry a `#nosec Gxxx -- reason` comment at their site; no rule
# is excluded globally.
check-extra:
	@v=$$($(GO) version | awk '{print $$3}'); \
	if [ "$$(printf '%s\n' go$(GO_FLOOR) $$v | sort -V | head -n1)" != go$(GO_FLOOR) ]; then \
	  echo "toolchain $$v is older than go$(GO_FLOOR) (go.mod, hardening.md §5)"; exit 1; \
	fi; echo "toolchain $$v >= go$(GO_FLOOR)"
	@$(call install-tool,gosec,github.com/securego/gosec/v2/cmd/gosec,$(GOSEC_VERSION))
	$(TOOLS)/gosec -quiet ./...

# Load tools of hardening.md §4, pinned, into the git-ignored .tools/bin;
# binaries already there are kept.
LOAD_TOOLS := $(CURDIR)/.tools/bin
tools:
	@mkdir -p $(LOAD_TOOLS)
	@set -e; get() { \
	  if [ -x $(LOAD_TOOLS)/$$1 ]; then echo "tools: $$1 present"; return; fi; \
	  echo "tools: go install $$2"; GOBIN=$(LOAD_TOOLS) $(GO) install $$2; \
	  if [ -n "$$3" ]; then mv $(LOAD_TOOLS)/$$3 $(LOAD_TOOLS)/$$1; fi; }; \
	get vegeta github.com/tsenart/vegeta/v12@v12.13.0; \
	get hey github.com/rakyll/hey@v0.1.5; \
	get toxiproxy-server github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0 server; \
	get toxiproxy-cli github.com/Shopify/toxiproxy/v2/cmd/cli@v2.12.0 cli; \
	get h2spec github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible

# The [load] cases of hardening.md §3 (scripts/hardening/tNN-*.sh) against
# the built gateway on 127.0.0.1; about 15 minutes, SOAK=30m for the long
# soak. Not part of `make test`; see scripts/hardening/README.md.
soak: build tools
	GO=$(GO) DATAKIT_BIN=$(CURDIR)/$(BIN) TOOLS_BIN=$(LOAD_TOOLS) bash scripts/hardening/run.sh
