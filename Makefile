# minifocus: `make demo` runs a local conference, `make test` runs every test.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# Fuzz targets run briefly in `make test`, longer with `make fuzz`.
FUZZTIME ?= 3s

.PHONY: build build-arm64 test test-short test-fresh deps deps-prosody deps-cc vet fuzz fuzz-short features-removable bench demo clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/minifocus .

build-arm64:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/minifocus-linux-arm64 .
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/minifocus-linux-armv7 .

# deps installs what the tests need: Debian's prosody, chromium for the
# status page test, and gcc with libc6-dev for the race detector (which needs
# cgo). The demo and the benchmark need only prosody.
deps: deps-prosody deps-cc
	@[ -x /usr/bin/chromium ] || { \
	  echo "Installing Debian's chromium (needed by the status page test)..."; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null || \
	  { echo "error: could not install chromium with apt-get; install it by hand (apt-get install chromium) and retry" >&2; exit 1; }; }

deps-prosody:
	@command -v prosody >/dev/null 2>&1 || { \
	  echo "Installing Debian's prosody (needed by the integration tests and the demo)..."; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq prosody >/dev/null || \
	  { echo "error: could not install prosody with apt-get; install it by hand (apt-get install prosody) and retry" >&2; exit 1; }; }
	@# The package starts a system Prosody on 5222; the tests use their own on free ports.
	@command -v systemctl >/dev/null 2>&1 && systemctl stop prosody >/dev/null 2>&1 || true

# CGO_WORKS succeeds when cgo is on and its C compiler can build and link a
# program (a fresh Debian server has no gcc; Go then turns cgo off by itself).
CGO_WORKS = [ "$$($(GO) env CGO_ENABLED)" = 1 ] && ccdir=$$(mktemp -d) && \
	{ printf 'int main(void){return 0;}\n' >$$ccdir/t.c; $$($(GO) env CC) -o $$ccdir/t $$ccdir/t.c >/dev/null 2>&1; \
	  ccok=$$?; rm -rf $$ccdir; [ $$ccok = 0 ]; }

# deps-cc installs Debian's gcc and libc6-dev when cgo has no usable C
# compiler. It never fails: without them `make test` runs without -race.
deps-cc:
	@$(CGO_WORKS) || { \
	  echo "Installing Debian's gcc and libc6-dev (the race detector needs cgo)..."; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq gcc libc6-dev >/dev/null || \
	  echo "warning: could not install gcc and libc6-dev with apt-get" >&2; }

vet:
	$(GO) vet ./...

# RACE=required (as in CI) fails instead of running without the race detector.
RACE ?= auto

# `make test` runs every test, wire tests with a real Prosody included. It
# must never pass -short: under -short the tests that need Prosody skip
# themselves (testkit.StartProsody), and CI treats a skip as a failure.
test: deps vet build-arm64
	@if $(CGO_WORKS); then race=-race; \
	elif [ "$(RACE)" = required ]; then echo "error: RACE=required but cgo has no working C compiler (apt-get install gcc libc6-dev)" >&2; exit 1; \
	else race=; echo "note: no working C compiler for cgo (apt-get install gcc libc6-dev), so the tests run without -race"; fi; \
	echo "$(GO) test $$race -count=1 ./..."; $(GO) test $$race -count=1 ./...
	$(MAKE) fuzz-short
	$(MAKE) features-removable

# features-removable checks that every optional feature can be taken out by
# deleting its file, its tests and its line in features() (about 2 minutes).
features-removable:
	GO=$(GO) .ci/feature-removal

# test-short runs the tests that need no Prosody (unit tests, fakes), on any
# machine with Go; it installs nothing. It is a developer mode, not CI: it
# prints how many tests were left out because they need a real Prosody.
test-short:
	@out=$$(mktemp); \
	if $(GO) test -short -count=1 -v ./... >$$out 2>&1; then \
	  grep -e '^ok' -e '^?' $$out; \
	  echo "test-short: passed; $$(grep -c -e '^ *--- SKIP' $$out) tests skipped (they need a real Prosody: run make test)"; \
	  rm -f $$out; \
	else rm -f $$out; $(GO) test -short -count=1 ./...; exit 1; fi

# test-fresh runs `make test` and `make demo` as a new user would: in a clean
# Debian bookworm chroot with Go, git, make and no C compiler, on a clone of
# this checkout's HEAD (commit first). It needs root, network access to the
# Debian mirror named in this machine's apt sources, a few GB of disk and
# takes a long while, so it is not part of `make test`. See .ci/fresh-debian.
test-fresh:
	.ci/fresh-debian

# Every fuzz target, a few seconds each. A crasher is saved under
# testdata/fuzz and fails the re-run; a failure the re-run does not confirm
# (the fuzzing engine itself stumbling on a loaded machine) is reported but
# does not fail the build.
fuzz-short:
	@for t in $$($(GO) test -list 'Fuzz.*' . | grep ^Fuzz); do \
	  out=$$(mktemp); \
	  if $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) . >$$out 2>&1; then \
	    echo "fuzz $$t: ok ($(FUZZTIME))"; \
	  else \
	    grep -v '^fuzz: elapsed' $$out | tail -20; \
	    if $(GO) test -count=1 -run "^$$t\$$" . >/dev/null 2>&1; then \
	      echo "fuzz $$t: the fuzzing run failed but its corpus passes; no crasher was found"; \
	    else \
	      echo "fuzz $$t: FAILED (the crasher is in testdata/fuzz/$$t)"; rm -f $$out; exit 1; \
	    fi; \
	  fi; rm -f $$out; done

fuzz:
	$(MAKE) fuzz-short FUZZTIME=60s

bench: deps-prosody
	$(GO) test -run '^$$' -bench . -benchmem .
	$(GO) run ./cmd/loadgen

# The demo is built, then run, so that Ctrl-C reaches it (not `go run`,
# which would exit 1) and it can stop everything in order.
# DEMO_FLAGS='-exit-after 10s' makes it stop by itself.
demo: deps-prosody
	@$(GO) build -o bin/demo ./cmd/demo
	@bin/demo $(DEMO_FLAGS)

clean:
	rm -rf bin
