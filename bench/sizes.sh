#!/usr/bin/env bash
# Speed of `switchyard bench` against llama.cpp's `llama-bench` at the sizes people run: Llama 3.2 1B, Llama 3.2 3B
# and Llama 3.1 8B, as Q4_K_M and Q8_0, without downloading them — and every other architecture the engine runs at
# its published small size (SHAPES="qwen2-1.5b qwen3-1.7b phi3-mini gemma2-2b gemma3-1b qwen3moe-8l"; see
# tools/make_random_gguf.py --help).
#
# tools/make_random_gguf.py writes each model with random weights at the published shape (hidden size, layers,
# heads, KV heads, FFN, 128256-token vocabulary, tied or untied output) into bench/.models (ignored by git), and
# quantizes it with llama.cpp's `llama-quantize`; speed does not depend on the weights' values. Files already there
# are reused. Then bench/compare.sh runs pp512 and tg128 on each file with both tools, and the rows are gathered
# into one table (ratio = switchyard / llama.cpp).
#
#   bash bench/sizes.sh                                   # SHAPES=1b QUANTS="Q4_K_M Q8_0" THREADS=2 REPS=3
#   SHAPES="1b 3b 8b" THREADS="1 2" REPS=5 bash bench/sizes.sh
#   SWITCHYARD_BIN=path LLAMA_BENCH=path bash bench/sizes.sh    # reuse built binaries
#
# Disk: the F16 file is kept next to the quantized ones (1b 2.5 GB, 3b 6.4 GB, 8b 16 GB; Q8_0 about half of that,
# Q4_K_M under a third); KEEP_F16=0 deletes it after quantizing. Writing one takes about 1.5 GB of memory at most.
set -euo pipefail
cd "$(dirname "$0")/.."
SHAPES=${SHAPES:-1b}
QUANTS=${QUANTS:-"Q4_K_M Q8_0"}
THREADS=${THREADS:-2}
REPS=${REPS:-3}
MODELS=${MODELS:-bench/.models}
KEEP_F16=${KEEP_F16:-1}
. bench/lib.sh
LLAMA_BENCH=${LLAMA_BENCH:-$(build_llama_tool llama-bench)}
build_switchyard

declare -A LABEL=([1b]="Llama 3.2 1B" [3b]="Llama 3.2 3B" [8b]="Llama 3.1 8B" [qwen2-1.5b]="Qwen 2.5 1.5B (qwen2)"
                 [qwen3-1.7b]="Qwen 3 1.7B (qwen3)" [phi3-mini]="Phi-3 mini 3.8B (phi3)" [gemma2-2b]="Gemma 2 2B (gemma2)"
                 [gemma3-1b]="Gemma 3 1B (gemma3)" [qwen3moe-8l]="Qwen 3 30B-A3B, 8 of 48 layers (qwen3moe)")
model_file() {
  case $1 in
    1b|3b|8b) echo "$MODELS/llama-$1-random.$2.gguf" ;;
    *) echo "$MODELS/$1-random.$2.gguf" ;;
  esac
}

# Models first, so that a failure there comes before the long runs.
for shape in $SHAPES; do
  missing=0
  for q in $QUANTS; do [ -f "$(model_file "$shape" "$q")" ] || missing=1; done
  [ $missing = 1 ] || continue
  quantize=$(build_llama_tool llama-quantize)
  keep=--keep-f16; [ "$KEEP_F16" = 1 ] || keep=--no-keep-f16
  python3 tools/make_random_gguf.py --shape "$shape" --out "$MODELS" --quantize "${QUANTS// /,}" \
    --llama-bin "$(dirname "$quantize")" $keep >&2
done

rows=()
for shape in $SHAPES; do
  for q in $QUANTS; do
    file=$(model_file "$shape" "$q")
    echo "$(basename "$file") ($(du -h "$file" | cut -f1))…" >&2
    table=$(GGUF=$file SWITCHYARD_BIN=$SY LLAMA_BENCH=$LLAMA_BENCH THREADS=$THREADS REPS=$REPS bash bench/compare.sh)
    while IFS= read -r row; do
      rows+=("| ${LABEL[$shape]:-$shape} | $q |${row#|}")
      echo "  $row" >&2
    done < <(grep '^| [0-9]' <<<"$table")
  done
done

echo "| model (random weights) | quant | threads | test | llama.cpp t/s | switchyard t/s | ratio |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
