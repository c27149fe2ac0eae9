# minifocus: `make demo` runs a local conference, `make test` runs every test.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# Fuzz targets run briefly in `make test`, longer with `make fuzz`.
FUZZTIME ?= 3s

.PHONY: build build-arm64 test deps deps-prosody vet fuzz fuzz-short bench demo clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/minifocus .

build-arm64:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/minifocus-linux-arm64 .
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/minifocus-linux-armv7 .

# deps installs what the tests need: Debian's prosody, and chromium for the
# status page test. The demo and the benchmark need only prosody.
deps: deps-prosody
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

vet:
	$(GO) vet ./...

test: deps vet build-arm64
	$(GO) test -race -count=1 ./...
	$(MAKE) fuzz-short

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
demo: deps-prosody
	@$(GO) build -o bin/demo ./cmd/demo
	@bin/demo

clean:
	rm -rf bin
