#!/usr/bin/env bash
# Pull benchmark: Berth's pullImage (bench/pull-image.mjs) vs `podman pull` and `skopeo copy`,
# each into a fresh store per run, pulling the same image from a local registry on 127.0.0.1, in
# ONE hyperfine run. skopeo copies twice: into containers-storage (overlay driver; it unpacks the
# layers, as podman pull and Berth do) and into an OCI layout (it only downloads, so it is compared
# with Berth's download alone, `pull-image.mjs --content-only`). The summary pairs like with like.
# Then unpack throughput: Berth's unpackLayer vs `tar -xzf` of the same layer blob, on the disk
# and on a tmpfs (the unpacker's own cost, without the disk's).
#
# Every run writes into a new directory, and they are all removed at the end, not before each
# run: this VM's ext4 is mounted with online discard, and for up to a minute after a tree of
# this size is deleted, writes wait behind its discards (a `tar -xzf` of the Debian layer took
# 1.3 s into a new directory, 3.2 s and then 5.6 s after `rm -rf` of the last one). Before each
# run, `sync`, so that none pays for the writeback of the one before.
#
# As root, from the repo root, after `npm run build`:
#   bash bench/pull.sh              # busybox + multilayer images, pulls multilayer
#   bash bench/pull.sh --debian     # also builds the Debian image (+45-80 s) and pulls it
#   RUNS=10 PORT=15500 RESULTS=/dir bash bench/pull.sh
#   ALTERNATE=6 bash bench/pull.sh --debian   # also 6 alternating rounds of the unpacking pullers (fairer under a changing load)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${BERTH_SHARED_DIR:-$ROOT/../shared}
RUNS=${RUNS:-10}
WARMUP=${WARMUP:-1}
PORT=${PORT:-15500}
RESULTS=${RESULTS:-/tmp/berth-bench-results}
DEBIAN=0
for a in "$@"; do
  case "$a" in
    --debian) DEBIAN=1 ;;
    *) echo "usage: $0 [--debian]" >&2; exit 2 ;;
  esac
done
[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 1; }
[[ -f $ROOT/dist/src/images/pull-image.js ]] || { echo "run npm run build first" >&2; exit 1; }
for t in hyperfine skopeo podman; do command -v $t >/dev/null || apt-get install -y -q $t >/dev/null; done

W=$(mktemp -d /tmp/berth-pull-bench.XXXXXX)
cleanup() {
  set +e # everything below is tried, whatever fails
  sh "$W/berthd-stop.sh" 2>/dev/null
  pkill -f -- "--berth-cli-serve $W/cli" 2>/dev/null
  rmdir /sys/fs/cgroup/*/berth-pull-bench 2>/dev/null
  bash "$SHARED/testimages/registry.sh" stop "$W/reg" "$PORT" >/dev/null 2>&1 || true
  # podman's overlay driver leaves its store's home bind-mounted on itself.
  for r in "$W"/runs/p.* "$W"/runs/s.*; do
    [[ -d $r ]] || continue
    podman --root "$r/root" --runroot "$r/run" --storage-driver overlay system reset -f >/dev/null 2>&1
    umount -R "$r/root/overlay" 2>/dev/null
  done
  rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$RESULTS"

echo "== context"
echo "kernel $(uname -r), nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "node $(node --version), $(skopeo --version), $(podman --version), $(hyperfine --version)"
echo "storage: $(df -T /tmp | awk 'NR==2{print $2}') under /tmp"

echo "== images"
if [[ $DEBIAN == 1 ]]; then
  bash "$SHARED/testimages/make-images.sh" "$W/img" --debian --no-docker-archive >/dev/null
  IMAGE=debian
else
  bash "$SHARED/testimages/make-images.sh" "$W/img" --no-docker-archive >/dev/null
  IMAGE=multilayer
fi
bash "$SHARED/testimages/registry.sh" start "$W/reg" "$PORT" >/dev/null
skopeo copy -q --dest-tls-verify=false "oci:$W/img/oci:$IMAGE" "docker://127.0.0.1:$PORT/$IMAGE:latest"
# To warm up each new berthd with (see berthd-fresh.sh below).
skopeo copy -q --dest-tls-verify=false "oci:$W/img/oci:busybox" "docker://127.0.0.1:$PORT/warmup:latest"
REF=127.0.0.1:$PORT/$IMAGE:latest
echo "pulling $REF"

cat > "$W/registries.conf" <<CONF
[[registry]]
location = "127.0.0.1:$PORT"
insecure = true
CONF
export CONTAINERS_REGISTRIES_CONF=$W/registries.conf

# Each puller into a new directory under $W/runs per run (see the top).
mkdir -p "$W/runs"
cat > "$W/pull-berth.sh" <<SH
exec node $ROOT/bench/pull-image.mjs $REF \$(mktemp -u -d $W/runs/berth.XXXXXX)
SH
cat > "$W/pull-podman.sh" <<SH
r=\$(mktemp -d $W/runs/p.XXXX) # short: podman refuses a runroot over 50 characters
exec podman --root \$r/root --runroot \$r/run --storage-driver overlay pull -q $REF >/dev/null
SH
cat > "$W/pull-berth-content.sh" <<SH
exec node $ROOT/bench/pull-image.mjs $REF \$(mktemp -u -d $W/runs/berthc.XXXXXX) --content-only
SH
# Node reads NODE_EXTRA_CA_CERTS at every start (~40-90 ms here, where it is set): once more without.
cat > "$W/pull-berth-content-noca.sh" <<SH
unset NODE_EXTRA_CA_CERTS
exec node $ROOT/bench/pull-image.mjs $REF \$(mktemp -u -d $W/runs/berthc.XXXXXX) --content-only
SH
cat > "$W/pull-skopeo.sh" <<SH
exec skopeo copy -q --src-tls-verify=false docker://$REF oci:\$(mktemp -u -d $W/runs/skopeo.XXXXXX):x
SH
cat > "$W/pull-skopeo-storage.sh" <<SH
r=\$(mktemp -d $W/runs/s.XXXX)
exec skopeo copy -q --src-tls-verify=false docker://$REF "containers-storage:[overlay@\$r/root+\$r/run]$REF"
SH

# `berth pull` as a user runs it: the berth CLI asking a running berthd. Before each timed pull a
# new berthd starts on a new data root (hyperfine's --prepare), so that every pull starts from an
# empty store without deleting anything (see the top); the one before is stopped, its data kept.
cat > "$W/berthd-stop.sh" <<SH
if [ -f $W/berthd.pid ]; then
  p=\$(cat $W/berthd.pid); kill \$p 2>/dev/null; while kill -0 \$p 2>/dev/null; do sleep 0.02; done
fi
umount $W/exec 2>/dev/null; true
SH
cat > "$W/berthd-fresh.sh" <<SH
sh $W/berthd-stop.sh
d=\$(mktemp -d $W/runs/d.XXXX)
$ROOT/bin/berthd --data-root \$d --exec-root $W/exec -H unix://$W/berthd.sock -p $W/berthd.pid -b none \\
  --cgroup-parent /berth-pull-bench --insecure-registry 127.0.0.1:$PORT >\$d.log 2>&1 &
for i in \$(seq 1 200); do $ROOT/bin/berth -H unix://$W/berthd.sock version >/dev/null 2>&1 && break; sleep 0.05; done
# A daemon that has served a pull before, as a user's has: the first one loads and compiles code.
$ROOT/bin/berth -H unix://$W/berthd.sock pull -q 127.0.0.1:$PORT/warmup:latest >/dev/null || { echo "berthd: \$(cat \$d.log)" >&2; exit 1; }
sync
SH
export BERTH_CLI_SERVER_DIR=$W/cli # the berth CLI's server: ours, stopped at the end
cat > "$W/pull-berthd.sh" <<SH
exec $ROOT/bin/berth -H unix://$W/berthd.sock pull -q $REF >/dev/null
SH

# Sanity: each puller works once (and Berth's result is a usable layer stack).
for t in berth podman skopeo-storage skopeo berth-content; do sh "$W/pull-$t.sh"; done
sh "$W/berthd-fresh.sh" && sh "$W/pull-berthd.sh"

hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$RESULTS/pull.json" \
  --command-name 'berth pullImage (new Node process)' --prepare sync "sh $W/pull-berth.sh" \
  --command-name 'podman pull' --prepare sync "sh $W/pull-podman.sh" \
  --command-name 'skopeo copy to containers-storage' --prepare sync "sh $W/pull-skopeo-storage.sh" \
  --command-name 'skopeo copy to an OCI layout (no unpack)' --prepare sync "sh $W/pull-skopeo.sh" \
  --command-name 'berth, content only (no unpack)' --prepare sync "sh $W/pull-berth-content.sh" \
  --command-name 'berth pull (berth CLI -> berthd)' --prepare "sh $W/berthd-fresh.sh" "sh $W/pull-berthd.sh" \
  --command-name 'berth, content only, no NODE_EXTRA_CA_CERTS' --prepare sync "sh $W/pull-berth-content-noca.sh"

# Alternating runs (ALTERNATE=N rounds): berth CLI -> berthd, podman, skopeo into
# containers-storage, pullImage in Node, berth CLI -> berthd, ... so that a change in the load
# lands on every side; wall seconds per run, then medians.
if [[ ${ALTERNATE:-0} -gt 0 ]]; then
  : > "$RESULTS/alternate.txt"
  for i in $(seq 1 "$ALTERNATE"); do
    for t in berthd podman skopeo-storage berth; do
      if [[ $t == berthd ]]; then sh "$W/berthd-fresh.sh"; else sync; fi
      s=$(date +%s.%N); sh "$W/pull-$t.sh"; e=$(date +%s.%N)
      echo "$t $(echo "$e - $s" | bc)" >> "$RESULTS/alternate.txt"
    done
  done
  median() { awk -v t=$1 '$1 == t {print $2}' "$RESULTS/alternate.txt" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
  for t in berthd podman skopeo-storage berth; do
    echo "alternate: $t median $(awk -v t=$t '$1 == t {print $2}' "$RESULTS/alternate.txt" | sort -n | awk '{a[NR]=$1} END {printf "%.2f s (fastest %.2f s, %d runs)", a[int((NR+1)/2)], a[1], NR}')"
  done
  for a in berthd berth; do
    for b in podman skopeo-storage; do
      echo "alternate ratio: $a / $b: $(echo "scale=2; $(median $a) / $(median $b)" | bc)"
    done
  done | tee "$RESULTS/alternate-ratios.txt"
fi

# Unpack throughput on the largest layer of the image.
LAYER=$(node -e '
const fs=require("fs"),p=require("path");const o=process.argv[1];
const i=JSON.parse(fs.readFileSync(p.join(o,"index.json")));
const d=i.manifests.find(m=>m.annotations["org.opencontainers.image.ref.name"]===process.argv[2]).digest;
const m=JSON.parse(fs.readFileSync(p.join(o,"blobs",...d.split(":"))));
const l=m.layers.reduce((a,b)=>a.size>b.size?a:b);console.log(p.join(o,"blobs",...l.digest.split(":")));' "$W/img/oci" "$IMAGE")
cat > "$W/unpack.mjs" <<JS
import fs from 'node:fs';
const { unpackLayer } = await import('$ROOT/dist/src/storage/unpack.js');
// sizeHint as a pull gives it (the descriptor's size): a large layer is gunzipped on a worker.
const started = performance.now();
await unpackLayer(fs.createReadStream(process.argv[2], { highWaterMark: 1 << 20 }), process.argv[3], { maxBytes: 16 * 1024 ** 3, sizeHint: fs.statSync(process.argv[2]).size });
// The unpacker's own time, as berthd (a running process) spends it: read by the in-process rounds below.
if (process.env.BERTH_BENCH_PRINT_MS) console.log((performance.now() - started).toFixed(1));
JS
# What every unpacking puller must do at least, writing nothing: decompress and hash the layer.
cat > "$W/gunzip.mjs" <<JS
import fs from 'node:fs';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { pipeline } from 'node:stream/promises';
const hash = crypto.createHash('sha256');
await pipeline(fs.createReadStream(process.argv[2], { highWaterMark: 1 << 20 }), zlib.createGunzip({ chunkSize: 128 * 1024 }), async function* (chunks) {
  for await (const c of chunks) hash.update(c);
});
JS
# On the disk, each run into a new directory (see the top); on a tmpfs, removed before each run.
SHM=$(mktemp -d /dev/shm/berth-unpack-bench.XXXXXX)
trap 'rm -rf "$SHM"; cleanup' EXIT
cat > "$W/unpack-tar.sh" <<SH
d=\$(mktemp -d \$1/tar.XXXXXX) && exec tar -xzf $LAYER -C \$d
SH
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$RESULTS/unpack.json" \
  --command-name 'berth unpackLayer' --prepare sync "sh -c 'exec node $W/unpack.mjs $LAYER \$(mktemp -u -d $W/runs/unpack.XXXXXX)'" \
  --command-name 'tar -xzf' --prepare sync "sh $W/unpack-tar.sh $W/runs" \
  --command-name 'berth unpackLayer, tmpfs' --prepare "rm -rf $SHM/u" "node $W/unpack.mjs $LAYER $SHM/u" \
  --command-name 'tar -xzf, tmpfs' --prepare "rm -rf $SHM/u $SHM/tar.*" "sh $W/unpack-tar.sh $SHM" \
  --command-name 'floor: gunzip + sha256 only (Node)' --prepare true "node $W/gunzip.mjs $LAYER"
UNPACKED=$(gzip -dc "$LAYER" | wc -c)

# The rows above count Node's start (and NODE_EXTRA_CA_CERTS) in the unpacker's time. berthd
# unpacks in a process that is running already, so the unpacker's own time is timed inside the
# process too, in rounds alternating with tar (whose start is ~1 ms): the like-with-like figure.
: > "$RESULTS/unpack-inprocess.txt"
for i in $(seq 1 "$RUNS"); do
  sync
  echo "disk berth $(BERTH_BENCH_PRINT_MS=1 node "$W/unpack.mjs" "$LAYER" "$(mktemp -u -d "$W/runs/unpack.XXXXXX")")" >> "$RESULTS/unpack-inprocess.txt"
  sync
  s=$(date +%s%N); sh "$W/unpack-tar.sh" "$W/runs"; e=$(date +%s%N)
  echo "disk tar $(( (e - s) / 1000000 ))" >> "$RESULTS/unpack-inprocess.txt"
  rm -rf "$SHM/u" "$SHM"/tar.*
  echo "tmpfs berth $(BERTH_BENCH_PRINT_MS=1 node "$W/unpack.mjs" "$LAYER" "$SHM/u")" >> "$RESULTS/unpack-inprocess.txt"
  rm -rf "$SHM/u" "$SHM"/tar.*
  s=$(date +%s%N); sh "$W/unpack-tar.sh" "$SHM"; e=$(date +%s%N)
  echo "tmpfs tar $(( (e - s) / 1000000 ))" >> "$RESULTS/unpack-inprocess.txt"
done
rm -rf "$SHM/u" "$SHM"/tar.*

echo "== summary"
node -e '
const [pull, unpack, bytes] = [require(process.argv[1]), require(process.argv[2]), Number(process.argv[3])];
const med = (r) => r.median;
// Rows as hyperfine ran them; then like with like: the Berth pulls (they unpack) against the
// pullers that unpack, the Berth download alone against the skopeo copy to a layout.
const [node, podman, skopeoStorage, skopeoLayout, berthContent, berthd, berthContentNoCa] = pull.results;
for (const r of pull.results) console.log(`pull: ${r.command.padEnd(44)} median ${(med(r)*1000).toFixed(0).padStart(6)} ms`);
for (const [a, b] of [[berthd, podman], [berthd, skopeoStorage], [node, podman], [node, skopeoStorage], [berthContent, skopeoLayout], [berthContentNoCa, skopeoLayout], [berthd, skopeoLayout]]) {
  console.log(`ratio: ${a.command} / ${b.command}: ${(med(a)/med(b)).toFixed(2)}`);
}
// Berth on the disk against tar on the disk, Berth on a tmpfs against tar on a tmpfs.
for (const [i, r] of unpack.results.entries()) {
  const berth = unpack.results[i - (i % 2)];
  if (i >= 4) { console.log(`unpack: ${r.command.padEnd(26)} median ${(med(r)*1000).toFixed(0).padStart(6)} ms`); continue; }
  console.log(`unpack: ${r.command.padEnd(26)} median ${(med(r)*1000).toFixed(0).padStart(6)} ms  ratio berth/this ${(med(berth)/med(r)).toFixed(2)}  ${(bytes/med(r)/1e6).toFixed(0)} MB/s of tar`);
}' "$RESULTS/pull.json" "$RESULTS/unpack.json" "$UNPACKED"
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => l.split(" "));
const median = (where, who) => {
  const v = rows.filter((r) => r[0] === where && r[1] === who).map((r) => Number(r[2])).sort((a, b) => a - b);
  return v[(v.length - 1) >> 1];
};
for (const where of ["disk", "tmpfs"]) {
  const [b, t] = [median(where, "berth"), median(where, "tar")];
  console.log(`unpack in-process, ${where.padEnd(5)}: berth unpackLayer median ${b.toFixed(0)} ms, tar -xzf ${t.toFixed(0)} ms, ratio berth/tar ${(b / t).toFixed(2)}`);
}' "$RESULTS/unpack-inprocess.txt"
# The alternating rounds (when run) again, with the summary: the fairer pairing under a changing load.
if [[ ${ALTERNATE:-0} -gt 0 ]]; then cat "$RESULTS/alternate-ratios.txt"; fi
