# Switchyard — the two commands a newcomer needs: `make run` and `make test`.
SWIFT ?= swift
RELEASE_BIN := .build/release/switchyard
DEBUG_BIN := .build/debug/switchyard
PROMPT ?= What is the capital of France? Answer in one sentence.

.PHONY: all deps build release run ask pull test bench clean

all: release

# System packages the build and the tests need (the SQLite headers, PostgreSQL, redis-server), installed when missing.
deps:
	bash tools/system-deps.sh

build: deps
	$(SWIFT) build --product switchyard

release: deps
	$(SWIFT) build -c release --product switchyard

# Builds release, pulls the default model if it is missing, serves on http://127.0.0.1:8080.
run: release
	$(RELEASE_BIN) pull smollm2
	$(RELEASE_BIN) serve --config config --preload smollm2

# Answers one prompt from the command line instead of serving.
ask: release
	$(RELEASE_BIN) pull smollm2
	$(RELEASE_BIN) run smollm2 "$(PROMPT)" --verbose

pull: build
	$(DEBUG_BIN) pull smollm2
	$(DEBUG_BIN) pull gemma3-270m
	$(DEBUG_BIN) pull minilm

# The Swift test modules that wait on servers, sockets and timers (PostgreSQL, Redis, upstreams, the gateway). They run
# apart from the engine's long compute-bound tests: on a two-core machine those hold Swift's cooperative threads for
# minutes, and a test waiting on a timer or a pooled connection beside them starves.
SERVICE_TESTS := ^(StorageTests|RedisTests|RoutingTests|RegistryTests|ModelStoreTests|ProvidersTests|GatewayTests)\.

# All tests: Swift tests (units, reference conformance against llama.cpp's outputs, the server in-process), then the
# official openai Python SDK against a real `switchyard serve`. Needs the models: pulled first.
test: build
	$(DEBUG_BIN) pull smollm2
	$(DEBUG_BIN) pull gemma3-270m
	$(DEBUG_BIN) pull minilm
	SWITCHYARD_TEST_PIP=1 $(SWIFT) test --filter '$(SERVICE_TESTS)'
	bash tools/fetch-llama-vocab.sh
	$(SWIFT) test --skip-build --skip '$(SERVICE_TESTS)'
	bash Tests/clients/run.sh $(DEBUG_BIN)

# Side-by-side speed against llama.cpp built from source on this machine.
bench:
	bash bench/compare.sh

clean:
	rm -rf .build
