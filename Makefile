# nemotron - the two commands a newcomer needs:
#   make run    build, then chat with the model (MODEL=dir to choose one;
#               the default is the small model trained here, weights/scholar-4m)
#   make test   install what is missing, build, run every test (also under
#               AddressSanitizer + UBSan)
# and `make bench` for speed on the real model's shape.

BUILD      ?= build
ASAN_BUILD ?= build-asan
MODEL      ?= weights/scholar-4m
SYSTEM     ?= You are Aldric, the village scholar of Oakvale. You know the meaning of every word and answer questions plainly.
BENCH_MODEL ?= models/synth-mini-4b
BENCH_ARGS ?= -p 512 -n 128 -t 2 --no-mmap

NEMOTRON = $(BUILD)/nemotron

.PHONY: all setup build test test-release test-asan run bench bench-compare bench-tokenizer clean

all: build

setup:
	@scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD)

test: test-release test-asan

test-release: build
	cd $(BUILD) && ctest --output-on-failure --timeout 600

# clang for this build, so that both compilers see the code with -Werror.
test-asan: setup
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_C_COMPILER=clang \
	    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNT_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure --timeout 900

run: build
	$(NEMOTRON) chat -m $(MODEL) --system "$(SYSTEM)"

# A random-weight checkpoint of the real 4B shape (8.4 GB on disk), made
# once, then llama-bench-style prefill and decode speed with 2 threads.
bench: build
	@test -f $(BENCH_MODEL)/config.json || \
	    $(NEMOTRON) synth -o $(BENCH_MODEL) --shape mini-4b --seed 1
	$(NEMOTRON) bench -m $(BENCH_MODEL) $(BENCH_ARGS)

# nemotron against llama.cpp on the same GGUF files of the 4B shape (made
# once from the synthetic checkpoint): LLAMA_BENCH=path/to/llama-bench,
# a llama.cpp you built yourself (it is not part of this project).
BENCH_TYPES ?= q4_0 q4_k_m q8_0 f16
bench-compare: build
	@test -n "$(LLAMA_BENCH)" || { echo "usage: make bench-compare LLAMA_BENCH=path/to/llama-bench"; exit 2; }
	@test -f $(BENCH_MODEL)/config.json || \
	    $(NEMOTRON) synth -o $(BENCH_MODEL) --shape mini-4b --seed 1
	@for t in $(BENCH_TYPES); do f=$(BENCH_MODEL)-$$t.gguf; test -f $$f && continue; \
	    case $$t in f16|bf16|f32) $(NEMOTRON) convert -m $(BENCH_MODEL) -o $$f --type $$t;; \
	    *) $(NEMOTRON) quantize -m $(BENCH_MODEL) -o $$f --type $$t;; esac || exit 1; done
	bench/compare_llamacpp.py $(LLAMA_BENCH) $(foreach t,$(BENCH_TYPES),$(BENCH_MODEL)-$(t).gguf) \
	    --nemotron $(NEMOTRON) --bandwidth $(BUILD)/bench_bandwidth

# Tokenizer speed: a large vocabulary trained here, ours vs spm_encode.
bench-tokenizer: build
	tools/bench_tokenizer.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
