#!/usr/bin/env bash
# Installs every Debian 12 package Cairn needs to build, test and benchmark.
# Idempotent: installs only what is missing. Run as root (or with sudo).
set -euo pipefail

PACKAGES=(
  # build
  cmake ninja-build g++ clang pkg-config
  # libraries
  libxxhash-dev libzstd-dev libssl-dev libcurl4-openssl-dev nlohmann-json3-dev
  libthrift-dev thrift-compiler libboost-dev  # thrift headers include boost, a Recommends only
  # the query evaluator (query/)
  libsimdjson-dev
  # sd_notify readiness of the daemons
  libsystemd-dev
  # cairn-fsd, the mounted file system (libfuse3 low-level API, fusermount3)
  libfuse3-dev fuse3
  # the Python example client (run with /usr/bin/python3)
  python3-thrift python3-xxhash
  # the metaserver's consistent store (tests start a private etcd on loopback)
  etcd-server etcd-client
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # bench/query_cluster_bench talks to PostgreSQL with libpq (the server itself,
  # postgresql, is installed by hand: only that benchmark uses it)
  libpq-dev
  # tools the cairn-fsd tests run on the mount (tests/fsd/tools_test.cc)
  rsync jq
  # libFuzzer for the query parser fuzzer (clang's -fsanitize=fuzzer)
  libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
