#!/usr/bin/env bash
# The demo. The cluster demo (etcd, metaserver, chunk servers, the mounted file
# system) comes with the document store; until then this shows a raidlib
# volume losing a disk and a block and getting both back.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target cairn-volume cairn-volume-demo >/dev/null
echo "Cairn demo: the cluster demo is not built yet (it comes with the document store)."
echo "This shows the storage layer underneath: a raidlib volume over 4 disk directories."
echo
CAIRN_LOG_LEVEL=${CAIRN_LOG_LEVEL:-error} build/raidlib/cairn-volume-demo "${1:-/tmp/cairn-demo}"
