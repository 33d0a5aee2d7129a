# Wyvern — a reactive SDN controller for Open vSwitch.
#   make demo   build, start a node and real OVS, show it working
#   make test   every test (real OVS in network namespaces; needs root)
#   make package   dist/wyvern_<version>_<arch>.deb (nfpm; see deploy/nfpm.yaml)
#   make conformance  tempest's network API tests against wyvernd and a real Keystone
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin:/usr/sbin:/sbin:$(HOME)/go/bin
GO ?= go
STATICCHECK_VERSION := v0.7.0

.PHONY: all deps build package test test-short lint bench bench-scale fuzz conformance demo demo-stop clean

all: build

deps:
	@deploy/install-deps.sh

build:
	$(GO) build -buildvcs=true -o bin/ ./cmd/...

# The .deb: static binaries (CGO off, -trimpath, no symbol table or DWARF;
# the commit stamped in, panics still name their lines) and
# nfpm, a Go module pinned in deploy/tools.mod apart from go.mod so that
# its dependencies never move the daemon's. DEB_VERSION comes from git
# (deploy/deb-version.sh); DIST is where the package goes. Every file in
# it is dated at the commit (SOURCE_DATE_EPOCH), so one commit builds one
# .deb, byte for byte.
DIST ?= dist
DEB_VERSION ?= $(shell deploy/deb-version.sh)
package:
	@test -n "$(DEB_VERSION)" || { echo "make package: no version: set DEB_VERSION" >&2; exit 1; }
	rm -rf $(DIST)/bin && mkdir -p $(DIST)
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=true -ldflags='-s -w' -o $(DIST)/bin/ ./cmd/wyvernd ./cmd/wyvern
	VERSION='$(DEB_VERSION)' ARCH=$$($(GO) env GOARCH) BINDIR='$(DIST)/bin' \
		SOURCE_DATE_EPOCH=$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct)} \
		$(GO) tool -modfile=deploy/tools.mod nfpm pkg -f deploy/nfpm.yaml -p deb -t $(DIST)/

# Real-OVS tests create namespaces and processes of their own; two packages
# at a time keeps the 2-core machines responsive.
test: deps
	$(GO) vet ./...
	WYVERN_VERIFY_VIEWS=1 $(GO) test -race -count=1 -p 2 -timeout 20m ./...
	# The port-up lab once (its properties; its figures are make bench's).
	$(GO) test -run '^$$' -bench PortUp -benchtime 1x -count 1 ./bench/

test-short:
	$(GO) test -count=1 ./pipeline/... ./ofctl/of/... ./app/... ./internal/apps/... ./internal/topology/...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	@command -v staticcheck >/dev/null 2>&1 || GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	staticcheck ./...

# Benchmarks, with the same-run peers (ovs-ofctl) where there is one.
bench: deps build
	$(GO) test -run '^$$' -bench . -benchtime 3x -count 1 ./ofctl/of/ ./ofctl/ ./internal/apps/
	$(GO) test -run '^$$' -bench OnMiss -benchtime 100x -count 1 ./l2pop/ ./arpresponder/
	$(GO) test -run '^$$' -bench PortCreate -benchtime 300x -count 1 ./cmd/wyvernd/
	$(GO) test -run '^$$' -bench BulkCreate -benchtime 20x -count 1 ./cmd/wyvernd/
	$(GO) test -run '^$$' -bench '^BenchmarkPuntLatency$$' -benchtime 15x -count 1 ./cmd/wyvernd/
	$(GO) test -run '^$$' -bench RoutedPuntLatency -benchtime 15x -count 1 ./cmd/wyvernd/
	$(GO) test -run '^$$' -bench DHCPDiscoverToOffer -benchtime 200x -count 1 ./cmd/wyvernd/
	$(GO) test -run '^$$' -bench FloatingIPThroughput -benchtime 5x -count 1 ./cmd/wyvernd/
	$(GO) test -run '^$$' -bench PortUp -benchtime 40x -count 1 -v ./bench/

# The switch emulator's benchmarks (bench/README.md): punt throughput on
# one core beside ovs-testcontroller, and convergence with 100, 300 and
# 1,000 emulated chassis on three nodes (WYVERN_SCALE_CHASSIS=...).
bench-scale: deps
	$(GO) test -run '^$$' -bench '^BenchmarkPuntThroughput$$' -benchtime 1x -count 1 -v ./bench/
	$(GO) test -run '^$$' -bench '^BenchmarkConvergence$$' -benchtime 1x -count 1 -timeout 60m -v ./bench/

fuzz:
	$(GO) test ./ofctl/of -run '^$$' -fuzz '^FuzzDecodeFlowDesc$$' -fuzztime 60s
	$(GO) test ./ofctl/of -run '^$$' -fuzz '^FuzzDecodeFlowMod$$' -fuzztime 60s
	$(GO) test ./ofctl -run '^$$' -fuzz '^FuzzParsePacketIn$$' -fuzztime 60s
	$(GO) test ./ofctl -run '^$$' -fuzz '^FuzzParsePacketIn2$$' -fuzztime 60s
	$(GO) test ./controller/cluster -run '^$$' -fuzz '^FuzzApplyCommand$$' -fuzztime 60s
	$(GO) test ./controller/northbound -run '^$$' -fuzz '^FuzzDecodePortRequest$$' -fuzztime 60s
	$(GO) test ./controller/northbound -run '^$$' -fuzz '^FuzzDecodeNetworkRequest$$' -fuzztime 60s
	$(GO) test ./controller/northbound -run '^$$' -fuzz '^FuzzDecodeSubnetRequest$$' -fuzztime 60s
	$(GO) test ./controller/northbound -run '^$$' -fuzz '^FuzzDecodeRouterRequest$$' -fuzztime 60s
	$(GO) test ./controller/northbound -run '^$$' -fuzz '^FuzzDecodeRouterInterfaceRequest$$' -fuzztime 60s
	$(GO) test ./ofctl/of -run '^$$' -fuzz '^FuzzParsePacket$$' -fuzztime 60s
	$(GO) test ./dvr -run '^$$' -fuzz '^FuzzTimeExceeded$$' -fuzztime 60s
	$(GO) test ./controller/cluster -run '^$$' -fuzz '^FuzzGuardAccept$$' -fuzztime 60s
	$(GO) test ./internal/keystone -run '^$$' -fuzz '^FuzzParseToken$$' -fuzztime 60s
	$(GO) test ./dhcp/dhcpv4 -run '^$$' -fuzz '^FuzzParseRequest$$' -fuzztime 60s
	$(GO) test ./dhcp/dhcpv4 -run '^$$' -fuzz '^FuzzDecodeOptions$$' -fuzztime 60s
	$(GO) test ./dns/dnsmsg -run '^$$' -fuzz '^FuzzParseQuery$$' -fuzztime 60s

# Tempest's tempest.api.network against a one-node wyvernd with --auth
# keystone and a real Keystone (conformance/tempest_test.go); not part of
# make test: 8–11 minutes. Results in bin/conformance/ (summary.txt).
conformance: deps build
	WYVERN_CONFORMANCE=1 $(GO) test -count=1 -timeout 90m -v -run '^TestTempestNetworkAPI$$' ./conformance/

demo: deps build
	@deploy/demo.sh start

demo-stop:
	@deploy/demo.sh stop

clean:
	rm -rf bin dist
