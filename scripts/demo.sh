#!/usr/bin/env bash
# The Cairn demo cluster, on this machine and on loopback only:
#   bash scripts/demo.sh          # install deps, build, start, load sample data
#   bash scripts/demo.sh stop     # stop exactly the processes it started
#   bash scripts/demo.sh status   # what runs
#
# It starts etcd (TLS, client certificates, a private data dir), the
# metaserver (store = etcd, 3 initial nodes), 3 chunk servers with 4 disk
# directories each, all with certificates made on the spot, then loads the
# sample e-commerce data set (customers, products, orders) with
# cairn-sample-data, and mounts the cluster as a file system with cairn-fsd
# (at $STATE/mnt, or $CAIRN_MOUNT). Everything lives in one state directory;
# the PIDs it started are in $STATE/pids and `stop` kills those and nothing
# else (fsd first: it unmounts; a mount left behind is unmounted lazily).
#
# Environment:
#   CAIRN_DEMO_DIR        state directory (default /tmp/cairn-demo)
#   CAIRN_DEMO_BUILD      build directory (default build-demo, Release)
#   CAIRN_DEMO_SKIP_BUILD=1   use the binaries already in CAIRN_DEMO_BUILD
#   CAIRN_DEMO_PORT_BASE  first loopback port (default 7000): metaserver +0,
#                         chunk servers +1..+3, etcd client +10, peer +11
#   CAIRN_DEMO_CUSTOMERS, CAIRN_DEMO_PRODUCTS, CAIRN_DEMO_ORDERS
#                         data set size (default 2000, 500, 8000)
#   CAIRN_MOUNT           where to mount the cluster (default $STATE/mnt;
#                         e.g. /mnt/cairn)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

STATE=${CAIRN_DEMO_DIR:-/tmp/cairn-demo}
BUILD=${CAIRN_DEMO_BUILD:-$ROOT/build-demo}
PORT_BASE=${CAIRN_DEMO_PORT_BASE:-7000}
CUSTOMERS=${CAIRN_DEMO_CUSTOMERS:-2000}
PRODUCTS=${CAIRN_DEMO_PRODUCTS:-500}
ORDERS=${CAIRN_DEMO_ORDERS:-8000}
NODES=3
DISKS=4
READY_TIMEOUT=60
MARKER=.cairn-demo-state   # a state dir holds this file; only such a dir is ever wiped

METASERVER_BIN=$BUILD/metaserver/cairn-metaserver
CHUNKSERVER_BIN=$BUILD/chunkserver/cairn-chunkserver
CAIRN_BIN=$BUILD/client/cairn
SAMPLE_BIN=$BUILD/tools/sample_data/cairn-sample-data
FSD_BIN=$BUILD/fsd/cairn-fsd
MNT=${CAIRN_MOUNT:-$STATE/mnt}
ETCD_BIN=${CAIRN_ETCD_BIN:-/usr/bin/etcd}
ETCDCTL_BIN=/usr/bin/etcdctl

say() { printf '%s\n' "$*"; }
die() { printf 'demo.sh: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------ PIDs
# $STATE/pids/<name> holds "<pid> <start time>" (field 22 of /proc/<pid>/stat),
# so that a PID reused by another process after ours died is never killed.

start_time() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null || true; }

# True when the recorded process still runs (same PID and start time).
alive() {
  local file=$1 pid st
  read -r pid st <"$file" 2>/dev/null || return 1
  [ -n "${pid:-}" ] && [ -n "${st:-}" ] && [ "$(start_time "$pid")" = "$st" ]
}

record_pid() {  # name pid
  mkdir -p "$STATE/pids"
  echo "$2 $(start_time "$2")" >"$STATE/pids/$1"
}

running_names() {
  local f
  [ -d "$STATE/pids" ] || return 0
  for f in "$STATE/pids"/*; do
    [ -e "$f" ] || continue
    if alive "$f"; then basename "$f"; fi
  done
}

# True when $1 is a mount point now (also a dead FUSE mount).
is_mounted() { awk -v p="$1" '$5 == p { found = 1 } END { exit !found }' /proc/self/mountinfo; }

# Unmounts the demo's mount if one is left (fsd killed): -u, then lazily.
unmount_left() {
  local m
  m=$(cat "$STATE/mountpoint" 2>/dev/null || true)
  [ -n "$m" ] || return 0
  if is_mounted "$m"; then
    fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || true
  fi
}

stop_all() {
  local f pid st name waited
  [ -d "$STATE/pids" ] || { say "demo.sh: nothing to stop in $STATE"; unmount_left; return 0; }
  # The file system first (SIGTERM uploads open files and unmounts), then
  # the chunk servers, the metaserver, etcd.
  for name in fsd cs1 cs2 cs3 cs4 metaserver etcd; do
    f=$STATE/pids/$name
    [ -e "$f" ] || continue
    if alive "$f"; then
      read -r pid st <"$f"
      say "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      waited=0
      while alive "$f" && [ $waited -lt 100 ]; do sleep 0.1; waited=$((waited + 1)); done
      if alive "$f"; then
        say "  $name did not stop within 10 s of SIGTERM: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while alive "$f"; do sleep 0.1; done
      fi
    fi
    rm -f "$f"
  done
  # Any other recorded process (none today).
  for f in "$STATE/pids"/*; do
    [ -e "$f" ] || continue
    if alive "$f"; then read -r pid st <"$f"; kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$f"
  done
  unmount_left
  say "demo stopped (logs and data kept in $STATE; the next start wipes them)"
}

case "${1:-start}" in
  stop) stop_all; exit 0 ;;
  status)
    names=$(running_names)
    if [ -z "$names" ]; then say "no demo running in $STATE"; exit 1; fi
    for n in $names; do read -r pid _ <"$STATE/pids/$n"; say "$n: pid $pid"; done
    exit 0 ;;
  start) ;;
  -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
  *) die "unknown command '$1' (start, stop, status)" ;;
esac

# ------------------------------------------------------------------ start

mkdir -p "$STATE"
exec 9>"$STATE/.lock"
flock -n 9 || die "another demo.sh is starting or stopping in $STATE"
if [ -n "$(running_names)" ]; then
  say "A Cairn demo is already running (state in $STATE):"
  for n in $(running_names); do read -r pid _ <"$STATE/pids/$n"; say "  $n: pid $pid"; done
  say "Stop it first: bash scripts/demo.sh stop"
  exit 1
fi
# A mount left by a killed fsd must go before anything is wiped (a removal
# through a live mount would delete documents).
unmount_left
if is_mounted "$STATE/mnt"; then die "$STATE/mnt is still mounted; fusermount3 -uz $STATE/mnt"; fi
# Wipe a previous demo's state, but only a directory this script made.
if [ -n "$(ls -A "$STATE" | grep -v '^\.lock$' || true)" ]; then
  # (the earlier raidlib-only demo left just disk0..disk3 here: also ours)
  if [ ! -e "$STATE/$MARKER" ] &&
     [ -n "$(ls -A "$STATE" | grep -v -E '^(\.lock|disk[0-9]+)$' || true)" ]; then
    die "$STATE is not empty and is not a demo state directory; set CAIRN_DEMO_DIR"
  fi
  find "$STATE" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +
fi
touch "$STATE/$MARKER"

if [ "${CAIRN_DEMO_SKIP_BUILD:-0}" != 1 ]; then
  say "== installing dependencies (scripts/install-deps.sh)"
  bash scripts/install-deps.sh
  say "== building (Release, in $BUILD)"
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCAIRN_BUILD_BENCH=OFF >/dev/null
  cmake --build "$BUILD" --target cairn-metaserver cairn-chunkserver cairn cairn-sample-data cairn-fsd
fi
for b in "$METASERVER_BIN" "$CHUNKSERVER_BIN" "$CAIRN_BIN" "$SAMPLE_BIN" "$FSD_BIN" "$ETCD_BIN" "$ETCDCTL_BIN"; do
  [ -x "$b" ] || die "missing $b (build it, or run scripts/install-deps.sh for etcd)"
done

# Every process started from here on is stopped again if the start fails
# (an error, a `die`, or Ctrl-C).
on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    say "demo.sh: start failed; stopping what was started" >&2
    stop_all >&2 || true
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
MS_PORT=$PORT_BASE
ETCD_PORT=$((PORT_BASE + 10))
ETCD_PEER_PORT=$((PORT_BASE + 11))
for p in "$MS_PORT" $(seq $((PORT_BASE + 1)) $((PORT_BASE + NODES))) "$ETCD_PORT" "$ETCD_PEER_PORT"; do
  port_free "$p" || die "port 127.0.0.1:$p is in use; set CAIRN_DEMO_PORT_BASE"
done

# ---- certificates: the cluster CA, a node certificate per daemon, a user and
# an admin; and a separate CA for etcd (so that cluster users cannot reach it).
say "== certificates (cairn certs) in $STATE/pki"
PKI=$STATE/pki
mkdir -p "$PKI"
"$CAIRN_BIN" certs init --dir "$PKI/ca" --cluster demo >/dev/null
for n in metaserver $(seq -f 'cs%g' 1 $NODES); do
  "$CAIRN_BIN" certs issue --dir "$PKI/ca" --node "$n" --out "$PKI" >/dev/null
done
"$CAIRN_BIN" certs issue --dir "$PKI/ca" --user demo --out "$PKI" >/dev/null
"$CAIRN_BIN" certs issue --dir "$PKI/ca" --admin root --out "$PKI" >/dev/null
"$CAIRN_BIN" certs init --dir "$PKI/etcd-ca" --cluster demo-etcd >/dev/null
"$CAIRN_BIN" certs issue --dir "$PKI/etcd-ca" --node etcd --out "$PKI/etcd" >/dev/null
"$CAIRN_BIN" certs issue --dir "$PKI/etcd-ca" --node metaserver --out "$PKI/etcd" >/dev/null

# ---- etcd
say "== etcd on https://127.0.0.1:$ETCD_PORT"
mkdir -p "$STATE/etcd"
setsid "$ETCD_BIN" --name cairn-demo --data-dir "$STATE/etcd/data" \
  --listen-client-urls "https://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls "https://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "cairn-demo=http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster-state new \
  --cert-file "$PKI/etcd/etcd.crt" --key-file "$PKI/etcd/etcd.key" \
  --trusted-ca-file "$PKI/etcd-ca/ca.crt" --client-cert-auth \
  </dev/null >"$STATE/etcd/etcd.log" 2>&1 9>&- &
record_pid etcd $!
for i in $(seq 1 $((READY_TIMEOUT * 5))); do
  alive "$STATE/pids/etcd" || { tail -20 "$STATE/etcd/etcd.log" >&2; die "etcd exited"; }
  if ETCDCTL_API=3 "$ETCDCTL_BIN" --endpoints "https://127.0.0.1:$ETCD_PORT" \
      --cacert "$PKI/etcd-ca/ca.crt" --cert "$PKI/etcd/metaserver.crt" \
      --key "$PKI/etcd/metaserver.key" endpoint health >/dev/null 2>&1; then
    break
  fi
  [ "$i" -lt $((READY_TIMEOUT * 5)) ] || die "etcd not healthy within $READY_TIMEOUT s (see $STATE/etcd/etcd.log)"
  sleep 0.2
done

# Starts a daemon in its own session, logs to <dir>/<name>.log, records its PID.
start_daemon() {  # name dir binary config
  local name=$1 dir=$2 bin=$3 conf=$4
  rm -f "$dir/ready"
  setsid "$bin" --config "$conf" --ready-file "$dir/ready" </dev/null >"$dir/$name.log" 2>&1 9>&- &
  record_pid "$name" $!
}
wait_ready() {  # name dir
  local name=$1 dir=$2 i
  for i in $(seq 1 $((READY_TIMEOUT * 10))); do
    [ -s "$dir/ready" ] && return 0
    if ! alive "$STATE/pids/$name"; then
      tail -30 "$dir/$name.log" >&2
      die "$name exited during start (log: $dir/$name.log)"
    fi
    sleep 0.1
  done
  tail -30 "$dir/$name.log" >&2
  die "$name not ready within $READY_TIMEOUT s (log: $dir/$name.log)"
}

# ---- the metaserver
say "== metaserver on 127.0.0.1:$MS_PORT (store = etcd)"
mkdir -p "$STATE/metaserver"
cat >"$STATE/metaserver/metaserver.conf" <<EOF
# The demo's metaserver (written by scripts/demo.sh).
name = metaserver
listen = 127.0.0.1:$MS_PORT
store = etcd
etcd_endpoints = https://127.0.0.1:$ETCD_PORT
etcd_prefix = /cairn-demo/
etcd_ca = $PKI/etcd-ca/ca.crt
etcd_cert = $PKI/etcd/metaserver.crt
etcd_key = $PKI/etcd/metaserver.key
tls_ca = $PKI/ca/ca.crt
tls_cert = $PKI/metaserver.crt
tls_key = $PKI/metaserver.key
partitions = 64
initial_nodes = $NODES
EOF
start_daemon metaserver "$STATE/metaserver" "$METASERVER_BIN" "$STATE/metaserver/metaserver.conf"
wait_ready metaserver "$STATE/metaserver"

# ---- the chunk servers
for n in $(seq 1 $NODES); do
  d=$STATE/cs$n
  mkdir -p "$d"
  disks=""
  for k in $(seq 0 $((DISKS - 1))); do
    mkdir -p "$d/disk$k"
    disks="$disks${disks:+,}$d/disk$k"
  done
  cat >"$d/chunkserver.conf" <<EOF
# Demo chunk server cs$n (written by scripts/demo.sh).
name = cs$n
listen = 127.0.0.1:$((PORT_BASE + n))
advertise = 127.0.0.1:$((PORT_BASE + n))
disks = $disks
metaservers = 127.0.0.1:$MS_PORT
tls_ca = $PKI/ca/ca.crt
tls_cert = $PKI/cs$n.crt
tls_key = $PKI/cs$n.key
EOF
  say "== chunk server cs$n on 127.0.0.1:$((PORT_BASE + n)), disks $d/disk0..$((DISKS - 1))"
  start_daemon "cs$n" "$d" "$CHUNKSERVER_BIN" "$d/chunkserver.conf"
done
for n in $(seq 1 $NODES); do wait_ready "cs$n" "$STATE/cs$n"; done

# ---- the client configuration
cat >"$STATE/client.conf" <<EOF
# cairn CLI configuration for the demo (user:demo). Use with: cairn --config $STATE/client.conf ...
metaservers = 127.0.0.1:$MS_PORT
tls_ca = $PKI/ca/ca.crt
tls_cert = $PKI/demo.crt
tls_key = $PKI/demo.key
EOF
cat >"$STATE/admin.conf" <<EOF
# cairn CLI configuration for the demo's administrator (admin:root).
metaservers = 127.0.0.1:$MS_PORT
tls_ca = $PKI/ca/ca.crt
tls_cert = $PKI/root.crt
tls_key = $PKI/root.key
EOF

# ---- the sample data
say "== loading the sample data set ($CUSTOMERS customers, $PRODUCTS products, $ORDERS orders)"
"$SAMPLE_BIN" --metaservers "127.0.0.1:$MS_PORT" --ca "$PKI/ca/ca.crt" \
  --cert "$PKI/demo.crt" --key "$PKI/demo.key" \
  --customers "$CUSTOMERS" --products "$PRODUCTS" --orders "$ORDERS"

# ---- the mounted file system
say "== cairn-fsd: mounting the cluster at $MNT"
mkdir -p "$STATE/fsd" "$MNT"
echo "$MNT" >"$STATE/mountpoint"
rm -f "$STATE/fsd/ready"
setsid "$FSD_BIN" --config "$STATE/client.conf" -f --ready-file "$STATE/fsd/ready" \
  -o default_permissions "$MNT" </dev/null >"$STATE/fsd/fsd.log" 2>&1 9>&- &
record_pid fsd $!
wait_ready fsd "$STATE/fsd"
trap - EXIT INT TERM

C="$CAIRN_BIN --config $STATE/client.conf"
STOP="bash $ROOT/scripts/demo.sh stop"
if [ "$STATE" != /tmp/cairn-demo ]; then STOP="CAIRN_DEMO_DIR=$STATE $STOP"; fi
cat <<EOF

The Cairn demo cluster is running (state, logs and data in $STATE):
  etcd        https://127.0.0.1:$ETCD_PORT   (log $STATE/etcd/etcd.log)
  metaserver  127.0.0.1:$MS_PORT             (log $STATE/metaserver/metaserver.log)
  chunk servers 127.0.0.1:$((PORT_BASE + 1))-$((PORT_BASE + NODES)), 4 disk directories each ($STATE/cs*/disk*)
  cairn-fsd   the cluster mounted at $MNT (log $STATE/fsd/fsd.log)

Try:
  $C status
  $C collection list
  $C ls orders | head
  $C get orders o0000042
  $C stat customers c000007
  echo '{"hello": "cairn"}' > /tmp/hello.json
  $C put products p-hello /tmp/hello.json
  $C mv products p-hello p-hello-2
  $C rm products p-hello-2
  $CAIRN_BIN --help

The same data as files (cairn-fsd):
  ls $MNT
  cat $MNT/.status
  ls $MNT/orders | head
  jq . $MNT/orders/o0000042
  grep -l '"FR"' $MNT/customers/* | head
  python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.cairn.replicas").decode())' $MNT/orders/o0000042
  mkdir $MNT/notes && echo hello > $MNT/notes/first && cat $MNT/notes/first
  cp /etc/os-release $MNT/notes/ && ls -l $MNT/notes

To see a disk fail and the data survive: remove $STATE/cs1/disk2 and read again.

Stop everything this demo started:
  $STOP
EOF
