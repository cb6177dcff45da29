#!/usr/bin/env bash
# `systemd-analyze verify` on the units in systemd/, with ExecStart pointed at
# this build's binaries (the installed path /usr/local/bin does not exist on a
# build machine).
#   systemd_units_test.sh <source dir> <unit>=<binary> ...
# Fails if a unit does not verify, or if a unit's ExecStart names a binary not
# given.
set -euo pipefail
src=$1
shift
if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze is not installed" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for pair in "$@"; do
  unit=${pair%%=*}
  bin=${pair#*=}
  [ -x "$bin" ] || { echo "$unit: $bin is not built" >&2; status=1; continue; }
  name=$(basename "$bin")
  grep -q "^ExecStart=/usr/local/bin/$name " "$src/systemd/$unit" ||
    { echo "$unit: ExecStart does not run /usr/local/bin/$name" >&2; status=1; continue; }
  sed "s|/usr/local/bin/$name |$bin |" "$src/systemd/$unit" >"$tmp/$unit"
  if out=$(systemd-analyze verify "$tmp/$unit" 2>&1) && [ -z "$out" ]; then
    echo "$unit: ok"
  else
    echo "$unit: systemd-analyze verify says:" >&2
    echo "$out" >&2
    status=1
  fi
done
exit "$status"
