#!/usr/bin/env bash
# fs_bench.sh: the file-system benchmark of ../shared/peers (bench-fs.sh: fio
# sequential write and read of 1 GiB in 1 MiB blocks, 4 KiB O_DIRECT random
# reads, 2,000 small files created / listed / read / deleted) on a Cairn mount
# and, in the same run, on MooseFS (goal 2) and GlusterFS (replica 3 and
# disperse 2+1) mounted on loopback by the peers' scripts. See bench/README.md.
#
#   bash bench/fs_bench.sh [--runs N] [--no-peers] [--keep]
#
# The systems are measured in rounds: round r runs bench-fs.sh once on every
# mount, one after another, so that a busy machine weighs on all of them
# alike; the table gives median [min-max] over the rounds (summarize.py).
# Cairn runs as the demo cluster (scripts/demo.sh: etcd, metaserver, 3 chunk
# servers with 4 disk directories each, cairn-fsd) in its own state dir.
# Everything started is stopped at the end (by PID, through demo.sh stop and
# the peers' teardown.sh), also on failure, unless --keep.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PEERS_DIR=${CAIRN_PEERS_DIR:-$ROOT/../shared/peers}

RUNS=3
PEERS=1
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --no-peers) PEERS=0; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "fs_bench.sh: unknown argument $1" >&2; exit 64 ;;
  esac
done
[ -d "$PEERS_DIR" ] || { echo "fs_bench.sh: no peers scripts in $PEERS_DIR" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "fs_bench.sh: run as root (drop_caches, mounts)" >&2; exit 1; }

OUT=${CAIRN_FSBENCH_DIR:-/var/tmp/cairn-fsbench}
STATE=$OUT/cluster
ROUNDS=$OUT/rounds
FINAL=$OUT/results
export CAIRN_DEMO_DIR=$STATE
export CAIRN_DEMO_PORT_BASE=${CAIRN_DEMO_PORT_BASE:-7300}
export CAIRN_DEMO_CUSTOMERS=10 CAIRN_DEMO_PRODUCTS=10 CAIRN_DEMO_ORDERS=10
export CAIRN_DEMO_BUILD=${CAIRN_DEMO_BUILD:-$ROOT/build-demo}

log() { echo "[$(date +%H:%M:%S)] fs_bench: $*"; }

cleanup() {
  local rc=$?
  if [ "$KEEP" = 0 ]; then
    log "stopping the Cairn cluster and the peers"
    bash scripts/demo.sh stop >/dev/null 2>&1 || true
    if [ "$PEERS" = 1 ]; then bash "$PEERS_DIR/teardown.sh" >/dev/null 2>&1 || true; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$ROUNDS" "$FINAL"
mkdir -p "$ROUNDS" "$FINAL"

# ---- Cairn: the demo cluster with the file system mounted
bash scripts/demo.sh stop >/dev/null 2>&1 || true
log "starting the Cairn demo cluster in $STATE"
bash scripts/demo.sh >"$OUT/demo.log" 2>&1 || { tail -30 "$OUT/demo.log" >&2; exit 1; }
CAIRN_MNT=$STATE/mnt
mountpoint -q "$CAIRN_MNT" || { echo "fs_bench.sh: the demo did not mount $CAIRN_MNT" >&2; exit 1; }
mkdir -p "$CAIRN_MNT/bench"

declare -a TARGETS=("cairn:$CAIRN_MNT/bench")

# ---- the peers
if [ "$PEERS" = 1 ]; then
  log "setting up MooseFS and GlusterFS (../shared/peers)"
  bash "$PEERS_DIR/teardown.sh" >/dev/null 2>&1 || true
  bash "$PEERS_DIR/moosefs-setup.sh" >"$OUT/moosefs-setup.log" 2>&1
  bash "$PEERS_DIR/gluster-setup.sh" >"$OUT/gluster-setup.log" 2>&1
  PEERS_MNT=/tmp/peers/mnt
  TARGETS+=("moosefs-goal2:$PEERS_MNT/moosefs/bench"
            "gluster-replica3:$PEERS_MNT/gluster-rep3/bench"
            "gluster-disperse2+1:$PEERS_MNT/gluster-disp/bench")
fi

# One round on Cairn: the workloads of bench-fs.sh, with the same fio and
# smallfiles.py commands, except where the files go. Cairn's layout has
# collections directly under the root and no nested directories (mkdir of
# bench/smallfiles is EPERM by design), so the fio files go to the "bench"
# collection and smallfiles.py gets the mount root: its "smallfiles"
# subdirectory is then a collection of its own (created by its mkdir and
# dropped by its rmdir).
cairn_round() {
  local r=$1 dir=$2 outd=$ROUNDS/$1/cairn
  local fio=(fio --ioengine=psync --numjobs=1 --output-format=json)
  mkdir -p "$outd" "$dir"
  drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
  log "[cairn] round $r dir=$dir"
  rm -f "$dir/fio-seq.dat"; sync
  "${fio[@]}" --name=seqwrite --filename="$dir/fio-seq.dat" --rw=write --bs=1M --size=1G \
    --end_fsync=1 --output="$outd/seqwrite-1.json"
  drop
  "${fio[@]}" --name=seqread --filename="$dir/fio-seq.dat" --rw=read --bs=1M --size=1G \
    --output="$outd/seqread-1.json"
  rm -f "$dir/fio-seq.dat"
  rm -f "$dir/fio-rand.dat"
  "${fio[@]}" --name=layout --filename="$dir/fio-rand.dat" --rw=write --bs=1M --size=512M \
    --end_fsync=1 --output="$outd/randlayout.json"
  drop
  "${fio[@]}" --name=randread --filename="$dir/fio-rand.dat" --rw=randread --bs=4k --size=512M \
    --direct=1 --time_based --runtime=30 --output="$outd/randread-1.json"
  rm -f "$dir/fio-rand.dat"
  python3 "$PEERS_DIR/smallfiles.py" "$(dirname "$dir")" 2000 4096 >"$outd/smallfiles-1.json"
  log "[cairn] round $r smallfiles: $(cat "$outd/smallfiles-1.json")"
}

# ---- rounds: every system once per round
for r in $(seq 1 "$RUNS"); do
  for t in "${TARGETS[@]}"; do
    label=${t%%:*}
    dir=${t#*:}
    if ! mountpoint -q "$(dirname "$dir")"; then
      log "SKIP $label: $(dirname "$dir") is not mounted"
      continue
    fi
    log "round $r: $label"
    if [ "$label" = cairn ]; then
      cairn_round "$r" "$dir" >>"$OUT/bench-$label.log" 2>&1 ||
        log "FAILED $label round $r (see $OUT/bench-$label.log)"
    else
      RESULTS=$ROUNDS/$r bash "$PEERS_DIR/bench-fs.sh" "$dir" "$label" 1 \
        >>"$OUT/bench-$label.log" 2>&1 || log "FAILED $label round $r (see $OUT/bench-$label.log)"
    fi
    mkdir -p "$FINAL/$label"
    for f in "$ROUNDS/$r/$label"/*-1.json; do
      [ -e "$f" ] || continue
      b=$(basename "$f" -1.json)
      cp "$f" "$FINAL/$label/$b-$r.json"
    done
  done
done

python3 "$PEERS_DIR/summarize.py" "$FINAL" | tee "$OUT/summary.md"
log "raw results in $FINAL, summary in $OUT/summary.md"
