# Switchyard — the two commands a newcomer needs: `make run` and `make test`.
SWIFT ?= swift
RELEASE_BIN := .build/release/switchyard
DEBUG_BIN := .build/debug/switchyard
PROMPT ?= What is the capital of France? Answer in one sentence.

.PHONY: all build release run pull test bench clean

all: release

build:
	$(SWIFT) build --product switchyard

release:
	$(SWIFT) build -c release --product switchyard

# Builds release, pulls the default model if it is missing, answers a prompt.
run: release
	$(RELEASE_BIN) pull smollm2
	$(RELEASE_BIN) run smollm2 "$(PROMPT)" --verbose

pull: build
	$(DEBUG_BIN) pull smollm2

# All tests: unit tests, reference conformance against llama.cpp's outputs (needs the model: pulled first).
test: build
	$(DEBUG_BIN) pull smollm2
	SWITCHYARD_TEST_PIP=1 $(SWIFT) test

# Side-by-side speed against llama.cpp built from source on this machine.
bench:
	bash bench/compare.sh

clean:
	rm -rf .build
