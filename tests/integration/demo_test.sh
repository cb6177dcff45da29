#!/usr/bin/env bash
# The demo end to end, as ctest runs it: scripts/demo.sh in a temporary state
# directory with a small data set and the binaries of this build, then
# `cairn ls` must show the documents, the cairn-fsd mount must show the
# sample collections as directories, a second start must refuse, and
# `demo.sh stop` must leave none of the processes it started and no mount.
#   demo_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
state=$(mktemp -d "${TMPDIR:-/tmp}/cairn-demo-test-XXXXXX")
export CAIRN_DEMO_DIR=$state
export CAIRN_DEMO_BUILD=$build
export CAIRN_DEMO_SKIP_BUILD=1
export CAIRN_DEMO_PORT_BASE=$((20000 + (RANDOM % 600) * 20))  # below the ephemeral range
export CAIRN_DEMO_CUSTOMERS=60 CAIRN_DEMO_PRODUCTS=25 CAIRN_DEMO_ORDERS=150
pids=()
fail() { echo "demo_test: FAIL: $*" >&2; exit 1; }
cleanup() {
  local rc=$?
  bash "$src/scripts/demo.sh" stop >/dev/null 2>&1 || true
  # Never remove the state dir through a live mount.
  if awk -v p="$state/mnt" '$5 == p { f = 1 } END { exit !f }' /proc/self/mountinfo; then
    fusermount3 -uz "$state/mnt" 2>/dev/null || true
  fi
  # Belt and braces: nothing we saw started may survive the test.
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  if [ "$rc" -ne 0 ]; then
    for f in "$state"/metaserver/*.log "$state"/cs*/*.log "$state"/etcd/*.log "$state"/fsd/*.log; do
      [ -e "$f" ] && { echo "---- $f"; tail -20 "$f"; }
    done
  fi
  rm -rf "$state" "$state.out"
}
trap cleanup EXIT

echo "== demo.sh start (state $state, ports from $CAIRN_DEMO_PORT_BASE)"
bash "$src/scripts/demo.sh" | tee "$state.out" || fail "demo.sh failed"
mv "$state.out" "$state/demo.out"
grep -q "demo.sh stop" "$state/demo.out" || fail "the demo does not say how to stop it"
grep -q "$state/mnt" "$state/demo.out" || fail "the demo does not say where the cluster is mounted"
for f in "$state"/pids/*; do read -r p _ <"$f"; pids+=("$p"); done
[ "${#pids[@]}" -eq 6 ] || fail "expected 6 recorded processes (etcd, metaserver, 3 chunk servers, fsd), got ${#pids[@]}"
for p in "${pids[@]}"; do kill -0 "$p" || fail "process $p is not running"; done

echo "== a second start refuses"
if bash "$src/scripts/demo.sh" >"$state/second.out" 2>&1; then fail "a second demo.sh started"; fi
grep -q "already running" "$state/second.out" || fail "second start: $(cat "$state/second.out")"

echo "== cairn ls"
cairn=$build/client/cairn
n_orders=$("$cairn" --config "$state/client.conf" ls orders | grep -c 'o0000' || true)
[ "$n_orders" -eq 150 ] || fail "cairn ls orders shows $n_orders orders, expected 150"
n_customers=$("$cairn" --config "$state/client.conf" ls customers | grep -c 'c0000' || true)
[ "$n_customers" -eq 60 ] || fail "cairn ls customers shows $n_customers, expected 60"
"$cairn" --config "$state/client.conf" get orders o0000007 | grep -q '"customer"' ||
  fail "cairn get orders o0000007 does not look like an order"

echo "== the mount"
mnt=$state/mnt
for c in customers orders products; do
  [ -d "$mnt/$c" ] || fail "$mnt/$c is not a directory: $(ls -la "$mnt" 2>&1)"
done
[ -r "$mnt/.status" ] || fail "no $mnt/.status"
grep -q '"map_version"' "$mnt/.status" || fail ".status: $(cat "$mnt/.status")"
n_files=$(ls "$mnt/orders" | grep -c 'o0000' || true)
[ "$n_files" -eq 150 ] || fail "ls $mnt/orders shows $n_files orders, expected 150"
grep -q '"customer"' "$mnt/orders/o0000007" || fail "$mnt/orders/o0000007 does not look like an order"

echo "== demo.sh stop"
bash "$src/scripts/demo.sh" stop
for p in "${pids[@]}"; do
  if kill -0 "$p" 2>/dev/null; then fail "process $p survived demo.sh stop"; fi
done
[ -z "$(ls -A "$state/pids" 2>/dev/null)" ] || fail "pid files left in $state/pids"
if awk -v p="$mnt" '$5 == p { f = 1 } END { exit !f }' /proc/self/mountinfo; then
  fail "$mnt is still mounted after demo.sh stop"
fi
echo "demo_test: OK"
