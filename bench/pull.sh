#!/usr/bin/env bash
# Pull benchmark: Berth's pullImage (bench/pull-image.mjs) vs `skopeo copy` (to an OCI layout, no
# unpack) and `podman pull` (unpacks into containers/storage, overlay driver), each into a fresh
# store per run, pulling the same image from a local registry on 127.0.0.1, in ONE hyperfine run.
# Then unpack throughput: Berth's unpackLayer vs `tar -xzf` of the same layer blob.
#
# As root, from the repo root, after `npm run build`:
#   bash bench/pull.sh              # busybox + multilayer images, pulls multilayer
#   bash bench/pull.sh --debian     # also builds the Debian image (+45-80 s) and pulls it
#   RUNS=10 PORT=15500 RESULTS=/dir bash bench/pull.sh
#   ALTERNATE=6 bash bench/pull.sh --debian   # also 6 alternating berth/podman pairs (fairer under a changing load)
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
  bash "$SHARED/testimages/registry.sh" stop "$W/reg" "$PORT" >/dev/null 2>&1 || true
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
REF=127.0.0.1:$PORT/$IMAGE:latest
echo "pulling $REF"

# One store per puller, wiped before every run.
STORE=$W/store
PODMAN_ROOT=$W/podman
cat > "$W/registries.conf" <<CONF
[[registry]]
location = "127.0.0.1:$PORT"
insecure = true
CONF
PODMAN="podman --root $PODMAN_ROOT/root --runroot $PODMAN_ROOT/run --storage-driver overlay"
export CONTAINERS_REGISTRIES_CONF=$W/registries.conf

# Sanity: each puller works once (and Berth's result is a usable layer stack).
rm -rf "$STORE" && node "$ROOT/bench/pull-image.mjs" "$REF" "$STORE"
$PODMAN pull -q "$REF" >/dev/null && $PODMAN rmi -a -f >/dev/null
skopeo copy -q --src-tls-verify=false "docker://$REF" "oci:$W/skopeo:x"

hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$RESULTS/pull.json" \
  --command-name berth --prepare "rm -rf $STORE" "node $ROOT/bench/pull-image.mjs $REF $STORE" \
  --command-name 'podman pull' --prepare "sh -c '$PODMAN rmi -a -f >/dev/null 2>&1; $PODMAN system reset -f >/dev/null 2>&1; rm -rf $PODMAN_ROOT'" "$PODMAN pull -q $REF" \
  --command-name 'skopeo copy' --prepare "rm -rf $W/skopeo" "skopeo copy -q --src-tls-verify=false docker://$REF oci:$W/skopeo:x"

# Alternating runs (ALTERNATE=N pairs): berth, podman, berth, ... so that a change in the load
# lands on both sides; wall seconds per run, then medians.
if [[ ${ALTERNATE:-0} -gt 0 ]]; then
  : > "$RESULTS/alternate.txt"
  for i in $(seq 1 "$ALTERNATE"); do
    rm -rf "$STORE"
    s=$(date +%s.%N); node "$ROOT/bench/pull-image.mjs" "$REF" "$STORE"; e=$(date +%s.%N)
    echo "berth $(echo "$e - $s" | bc)" >> "$RESULTS/alternate.txt"
    sh -c "$PODMAN rmi -a -f >/dev/null 2>&1; $PODMAN system reset -f >/dev/null 2>&1; rm -rf $PODMAN_ROOT"
    s=$(date +%s.%N); $PODMAN pull -q "$REF" >/dev/null; e=$(date +%s.%N)
    echo "podman $(echo "$e - $s" | bc)" >> "$RESULTS/alternate.txt"
  done
  for t in berth podman; do
    echo "alternate: $t median $(awk -v t=$t '$1 == t {print $2}' "$RESULTS/alternate.txt" | sort -n | awk '{a[NR]=$1} END {printf "%.2f s (fastest %.2f s, %d runs)", a[int((NR+1)/2)], a[1], NR}')"
  done
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
await unpackLayer(fs.createReadStream(process.argv[2]), process.argv[3], { maxBytes: 16 * 1024 ** 3 });
JS
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$RESULTS/unpack.json" \
  --command-name 'berth unpackLayer' --prepare "rm -rf $W/u" "node $W/unpack.mjs $LAYER $W/u" \
  --command-name 'tar -xzf' --prepare "sh -c 'rm -rf $W/u; mkdir $W/u'" "tar -xzf $LAYER -C $W/u"
UNPACKED=$(gzip -dc "$LAYER" | wc -c)

echo "== summary"
node -e '
const [pull, unpack, bytes] = [require(process.argv[1]), require(process.argv[2]), Number(process.argv[3])];
const med = (r) => r.median;
for (const [name, res] of [["pull", pull], ["unpack", unpack]]) {
  const base = res.results[0];
  for (const r of res.results) console.log(`${name}: ${r.command.padEnd(18)} median ${(med(r)*1000).toFixed(0).padStart(6)} ms  ratio berth/this ${(med(base)/med(r)).toFixed(2)}` + (name === "unpack" ? `  ${(bytes/med(r)/1e6).toFixed(0)} MB/s of tar` : ""));
}' "$RESULTS/pull.json" "$RESULTS/unpack.json" "$UNPACKED"
