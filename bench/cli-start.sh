#!/usr/bin/env bash
# CLI start-up: `berth version` vs `docker version`, against the same daemon, in one hyperfine run
# (else a loop timed with date +%s%N). berth runs three times: through bin/berth (its native
# client and the berth CLI server, which the warmup starts), through bin/berth in Node
# (BERTH_CLI_SERVER=0, which unsets NODE_EXTRA_CA_CERTS), and as `node dist/boot.cjs
# dist/berth.cjs` with the environment's NODE_EXTRA_CA_CERTS kept.
# A reference row `node -e 0` (started like the launcher) is the floor for any Node CLI here.
#
#   bash bench/cli-start.sh                       # from the repo root, after npm run build
#   DOCKER_HOST=unix:///run/berth.sock bash bench/cli-start.sh   # an already running daemon
#   RUNS=30 WARMUP=3 RESULTS=/tmp/berth-bench-results bash bench/cli-start.sh
#
# Without DOCKER_HOST it starts a private dockerd (test/helpers/engines.ts; needs root, dockerd and
# containerd) and stops it on exit.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
RESULTS=${RESULTS:-/tmp/berth-bench-results}
mkdir -p "$RESULTS"
[ -f "$REPO/dist/berth.cjs" ] || { echo "cli-start: build first (npm run build)" >&2; exit 2; }
DOCKER=$(command -v /usr/local/bin/docker || command -v docker || true)
[ -n "$DOCKER" ] || { echo "cli-start: needs the docker CLI" >&2; exit 2; }

WORK=$(mktemp -d /tmp/berth-bench-cli.XXXXXX)
# bin/berth runs most commands in a berth CLI server that it starts on first use: this run gets
# its own, stopped at the end.
export BERTH_CLI_SERVER_DIR="$WORK/cli-server"
DAEMON_PID=
cleanup() {
  set +e
  pkill -f "berth-cli-serve $WORK/cli-server/"
  if [ -n "$DAEMON_PID" ]; then
    kill -TERM "$DAEMON_PID" 2>/dev/null
    for _ in $(seq 1 600); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM HUP

if [ -z "${DOCKER_HOST:-}" ]; then
  cat > "$WORK/dockerd.mjs" <<JS
const m = await import('$REPO/dist/test/helpers/engines.js');
const d = await m.startPrivateDockerd({ prefix: 'berth-bench-cli-' });
(await import('node:fs')).writeFileSync('$WORK/host', d.env.DOCKER_HOST);
const stop = async () => { await d.stop(); process.exit(0); };
process.on('SIGTERM', stop); process.on('SIGINT', stop);
setInterval(() => {}, 1 << 30);
JS
  node "$WORK/dockerd.mjs" > "$WORK/dockerd.log" 2>&1 &
  DAEMON_PID=$!
  for _ in $(seq 1 600); do [ -s "$WORK/host" ] && break; kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
  [ -s "$WORK/host" ] || { cat "$WORK/dockerd.log" >&2; echo "cli-start: private dockerd did not start" >&2; exit 1; }
  DOCKER_HOST=$(cat "$WORK/host")
fi
export DOCKER_HOST
unset BERTH_HOST
CA=${NODE_EXTRA_CA_CERTS:-}

echo "daemon: $DOCKER_HOST ($("$DOCKER" version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
echo "node $(node --version), docker CLI $("$DOCKER" version --format '{{.Client.Version}}' 2>/dev/null), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "NODE_EXTRA_CA_CERTS=${CA:-<unset>}"

names=("docker version" "berth version (bin/berth: served)" "berth version in Node (BERTH_CLI_SERVER=0)" "berth version (NODE_EXTRA_CA_CERTS kept)" "node -e 0 (floor)")
cmds=("$DOCKER version" "$REPO/bin/berth version" "env BERTH_CLI_SERVER=0 $REPO/bin/berth version" "env NODE_EXTRA_CA_CERTS=$CA node $REPO/dist/boot.cjs $REPO/dist/berth.cjs version" "sh -c 'unset NODE_EXTRA_CA_CERTS; exec node -e 0'")
if [ -z "$CA" ]; then cmds[3]="node $REPO/dist/boot.cjs $REPO/dist/berth.cjs version"; fi
for c in "${cmds[@]}"; do sh -c "$c" >/dev/null || { echo "cli-start: failed: $c" >&2; exit 1; }; done

if command -v hyperfine >/dev/null; then
  args=()
  for i in "${!cmds[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
  hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$RESULTS/cli-start.json" "${args[@]}" >/dev/null
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).results;
    const base = r[0].median;
    console.log("command".padEnd(44) + "median ms   mean ms   stddev   x docker");
    for (const x of r) console.log(x.command.padEnd(44) + (x.median * 1e3).toFixed(1).padStart(9) + (x.mean * 1e3).toFixed(1).padStart(10) + (x.stddev * 1e3).toFixed(1).padStart(9) + (x.median / base).toFixed(2).padStart(11));
  ' "$RESULTS/cli-start.json"
else
  echo "hyperfine not found: timing a loop of $RUNS runs with date +%s%N"
  printf '%-44s %9s %11s\n' command "median ms" "x docker"
  base=
  for i in "${!cmds[@]}"; do
    for _ in $(seq 1 "$WARMUP"); do sh -c "${cmds[$i]}" >/dev/null; done
    ts=()
    for _ in $(seq 1 "$RUNS"); do
      t0=$(date +%s%N); sh -c "${cmds[$i]}" >/dev/null; t1=$(date +%s%N); ts+=($(( (t1 - t0) / 1000 )))
    done
    med=$(printf '%s\n' "${ts[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}')
    [ -n "$base" ] || base=$med
    printf '%-44s %9.1f %11.2f\n' "${names[$i]}" "$(echo "$med / 1000" | bc -l)" "$(echo "$med / $base" | bc -l)"
  done
fi
