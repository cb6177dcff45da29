#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every test.
#   bash scripts/test.sh                 # normal build (build/)
#   bash scripts/test.sh --sanitize address   # ASan+UBSan build (build-asan/)
#   bash scripts/test.sh --sanitize thread    # TSan build (build-tsan/)
# Extra arguments after -- go to ctest (e.g. -- -R raidlib).
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=""
ctest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) sanitize="$2"; shift 2 ;;
    --) shift; ctest_args=("$@"); break ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown argument $1" >&2; exit 64 ;;
  esac
done

bash scripts/install-deps.sh

build=build
cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAIRN_SANITIZE="$sanitize")
case "$sanitize" in
  "") ;;
  address) build=build-asan ;;
  thread) build=build-tsan; cmake_args+=(-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang) ;;
  *) echo "test.sh: --sanitize takes address or thread" >&2; exit 64 ;;
esac

cmake -S . -B "$build" "${cmake_args[@]}" >/dev/null
cmake --build "$build" -j "$(nproc)"
export CAIRN_LOG_LEVEL="${CAIRN_LOG_LEVEL:-warn}"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" --timeout 600 "${ctest_args[@]}"
