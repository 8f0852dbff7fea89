#!/usr/bin/env bash
# Container start latency: `runc run` vs `berth-oci run` (CLI, with and without NODE_EXTRA_CA_CERTS)
# vs `crun run` (if it works here), in one hyperfine run, on a busybox bundle running /bin/true.
# Then the in-process path (bench/runtime-inprocess.mjs) and the cgroup attach cost (bench/cgroup-attach.mjs).
#
#   sudo bash bench/runtime-start.sh            # from the repo root, after npm run build
#   RUNS=50 WARMUP=5 RESULTS=/tmp/berth-bench-results bash bench/runtime-start.sh
#
# Needs root. Installs runc crun hyperfine umoci (Debian) if missing. Cleans up on any exit.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-50}
WARMUP=${WARMUP:-5}
RESULTS=${RESULTS:-/tmp/berth-bench-results}
TARGET_RATIO=1.5

[ "$(id -u)" = 0 ] || { echo "runtime-start: needs root" >&2; exit 2; }
[ -f "$REPO/dist/berth-oci.cjs" ] && [ -f "$REPO/dist/src/runtime/runtime.js" ] && [ -x "$REPO/native/build/berth-nsexec" ] ||
  { echo "runtime-start: build first (npm run build)" >&2; exit 2; }

# --- peers --------------------------------------------------------------------------------------
missing=()
for tool in runc crun hyperfine umoci; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >/dev/null ||
    { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >/dev/null; }
fi

# --- scratch space and cleanup ------------------------------------------------------------------
WORK=$(mktemp -d /tmp/berth-bench-start.XXXXXX)
PREFIX="bb$$"        # every container id of this run starts with this (also those of the .mjs benchmarks)
export BENCH_ID_PREFIX=$PREFIX
STATE="$WORK/state"
mkdir -p "$STATE/runc" "$STATE/berth" "$STATE/crun" "$RESULTS"
# bin/berth-oci runs its commands in a berth-oci server that it starts on first use: this run
# gets one of its own, stopped at the end.
export BERTH_OCI_SERVER_DIR="$WORK/server"

cleanup() {
  local rc=$?
  set +e
  # Containers left in our state roots (a failed or interrupted run).
  for id in $(ls "$STATE/runc" 2>/dev/null); do runc --root "$STATE/runc" delete -f "$id" >/dev/null 2>&1; done
  for id in $(ls "$STATE/crun" 2>/dev/null); do crun --root "$STATE/crun" delete -f "$id" >/dev/null 2>&1; done
  for id in $(ls "$STATE/berth" 2>/dev/null); do "$REPO/bin/berth-oci" --root "$STATE/berth" delete -f "$id" >/dev/null 2>&1; done
  # Their cgroups (each runtime removes its own on delete; this catches a killed run). A run killed
  # between its cgroup join and writing its state leaves processes with no state entry (stage 0 and
  # an init waiting for start): they are in our containers' cgroups, so kill those pids, then rmdir.
  local dirs pids
  dirs=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 6 -type d -name "${PREFIX}-*" 2>/dev/null | sort -r)
  if [ -n "$dirs" ]; then
    for _ in 1 2 3 4 5; do
      pids=$(for d in $dirs; do cat "$d/cgroup.procs" 2>/dev/null; done | sort -u)
      [ -z "$pids" ] && break
      kill -9 $pids 2>/dev/null
      sleep 0.2
    done
    for d in $dirs; do rmdir "$d" 2>/dev/null; done
  fi
  pkill -f "berth-oci-serve $WORK/server/"
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# --- machine context ----------------------------------------------------------------------------
if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then cgmode=unified
elif [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then cgmode=hybrid
else cgmode=legacy; fi
echo "machine: kernel $(uname -r), cgroup mode $cgmode, nproc $(nproc), load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "versions: $(runc --version | head -1), $(crun --version | head -1), node $(node --version), $(hyperfine --version)"

# --- bundle -------------------------------------------------------------------------------------
echo "building test images and the busybox bundle..."
bash "$REPO/../shared/testimages/make-images.sh" "$WORK/img" --no-docker-archive >"$WORK/make-images.log" 2>&1 ||
  { cat "$WORK/make-images.log" >&2; exit 1; }
BUNDLE="$WORK/bundle"
umoci unpack --image "$WORK/img/oci:busybox" "$BUNDLE" >/dev/null
rm "$BUNDLE/config.json"
"$REPO/bin/berth-oci" spec -b "$BUNDLE"
node -e '
  const fs = require("fs"); const f = process.argv[1];
  const spec = JSON.parse(fs.readFileSync(f, "utf8"));
  spec.process.args = ["/bin/true"]; spec.process.terminal = false;
  fs.writeFileSync(f, JSON.stringify(spec, null, 2));
' "$BUNDLE/config.json"

# Each hyperfine run gets a fresh container id: the wrapper appends PREFIX-<its pid>. All commands
# go through it, so they pay the same (dash) exec.
WRAP="$WORK/with-id"
printf '#!/bin/sh\nexec "$@" "%s-$$"\n' "$PREFIX" >"$WRAP"
chmod +x "$WRAP"
# Reference: the floor for any Node CLI here, started the way bin/berth-oci starts node.
NODE0="$WORK/node-e-0"
printf '#!/bin/sh\nunset NODE_EXTRA_CA_CERTS\nexec node -e 0\n' >"$NODE0"
chmod +x "$NODE0"

# --- crun probe ---------------------------------------------------------------------------------
crun_cmd=()
if out=$(crun --root "$STATE/crun" run -b "$BUNDLE" "$PREFIX-crunprobe" 2>&1); then
  crun_cmd=(-n "crun run" "$WRAP crun --root $STATE/crun run -b $BUNDLE")
else
  echo "crun: left out: 'crun run' failed on the bundle: $out"
  if [[ $out == *"unknown version"* ]]; then
    # crun 1.8 knows OCI spec versions up to 1.1; retry with ociVersion 1.0.2 and the same rootfs.
    mkdir "$WORK/bundle-crun"
    node -e '
      const fs = require("fs"); const [src, dst, rootfs] = process.argv.slice(1);
      const spec = JSON.parse(fs.readFileSync(src, "utf8"));
      spec.ociVersion = "1.0.2"; spec.root.path = rootfs;
      fs.writeFileSync(dst, JSON.stringify(spec, null, 2));
    ' "$BUNDLE/config.json" "$WORK/bundle-crun/config.json" "$BUNDLE/rootfs"
    if out=$(crun --root "$STATE/crun" run -b "$WORK/bundle-crun" "$PREFIX-crunprobe2" 2>&1); then
      echo "crun: works with ociVersion 1.0.2; included with that bundle"
      crun_cmd=(-n "crun run (ociVersion 1.0.2)" "$WRAP crun --root $STATE/crun run -b $WORK/bundle-crun")
    else
      echo "crun: with ociVersion 1.0.2 it fails too: $out"
    fi
  fi
fi

# --- one hyperfine run --------------------------------------------------------------------------
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then
  ca_label="berth-oci run, NODE_EXTRA_CA_CERTS kept"
else
  ca_label="berth-oci run, node directly (NODE_EXTRA_CA_CERTS not set here)"
fi
JSON="$RESULTS/runtime-start.json"
echo
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --style basic --export-json "$JSON" \
  -n "runc run" "$WRAP runc --root $STATE/runc run -b $BUNDLE" \
  -n "berth-oci run (bin/berth-oci: served)" "$WRAP $REPO/bin/berth-oci --root $STATE/berth run -b $BUNDLE" \
  -n "berth-oci run in Node (BERTH_OCI_SERVER=0)" "$WRAP env BERTH_OCI_SERVER=0 $REPO/bin/berth-oci --root $STATE/berth run -b $BUNDLE" \
  -n "$ca_label" "$WRAP node $REPO/dist/boot.cjs $REPO/dist/berth-oci.cjs --root $STATE/berth run -b $BUNDLE" \
  "${crun_cmd[@]}" \
  -n "reference: node -e 0 (launcher like bin/berth-oci)" "$WRAP $NODE0"

echo
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).results;
  const target = Number(process.argv[2]);
  const base = r.find((x) => x.command === "runc run").median;
  const w = Math.max(...r.map((x) => x.command.length));
  console.log(`${"command".padEnd(w)}  median ms   mean ms  stddev  ratio to runc`);
  for (const x of r)
    console.log(`${x.command.padEnd(w)}  ${(x.median * 1e3).toFixed(1).padStart(9)}  ${(x.mean * 1e3).toFixed(1).padStart(8)}  ${(x.stddev * 1e3).toFixed(1).padStart(6)}  ${(x.median / base).toFixed(2).padStart(6)}x`);
  const ours = r.find((x) => x.command.startsWith("berth-oci run (bin/"));
  const ratio = ours.median / base;
  console.log(`target: berth-oci run (launcher) no slower than ${target}x runc: ${ratio <= target ? "MET" : "NOT MET"} (${ratio.toFixed(2)}x)`);
' "$JSON" "$TARGET_RATIO"
echo "(hyperfine JSON: $JSON)"

# --- in-process path and cgroup attach cost -----------------------------------------------------
echo
status=0
node "$REPO/bench/runtime-inprocess.mjs" "$BUNDLE" --runs "$RUNS" --warmup "$WARMUP" --json "$RESULTS/runtime-inprocess.json" || status=1
echo
# The daemon's paths, which the 10 ms target is for: under a shim, the state on a tmpfs; create
# then start (berthd's, when a network or an attach client waits between the two), and create and
# start in one (berthd's for a container with neither, as the API cycle in bench/engine.mjs).
node "$REPO/bench/runtime-inprocess.mjs" "$BUNDLE" --shim --runs "$RUNS" --warmup "$WARMUP" --json "$RESULTS/runtime-inprocess-shim.json" || status=1
echo
node "$REPO/bench/runtime-inprocess.mjs" "$BUNDLE" --shim --start-now --runs "$RUNS" --warmup "$WARMUP" --json "$RESULTS/runtime-inprocess-shim-start-now.json" || status=1
echo
node "$REPO/bench/cgroup-attach.mjs" "$BUNDLE" --runs 10 || status=1
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
