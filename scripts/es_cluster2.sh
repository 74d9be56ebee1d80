#!/usr/bin/env bash
# A two-node Elasticsearch cluster on loopback for the plugin's distributed test: up|down|status
#
# Reuses the ES_HOME that scripts/es.sh unpacked (and the plugin installed there: run `make es-up`
# first), with its own config copy, data and logs per node under $ES_BASE/cluster2/node{1,2}:
#   node 1: http 127.0.0.1:${CLUSTER2_HTTP1:-9201}, transport ${CLUSTER2_TRANSPORT1:-9301}
#   node 2: http 127.0.0.1:${CLUSTER2_HTTP2:-9202}, transport ${CLUSTER2_TRANSPORT2:-9302}
# Cluster name dssm-cluster2, both master-eligible (initial masters node1,node2), heap ${CLUSTER2_HEAP:-384m}.
# Independent of the single node on 9200, which keeps running. `down` stops both and removes their data.
# Ports must be free (checked first); tests/test_plugin_cluster.py picks free ones through the
# CLUSTER2_* variables, so two checkouts can run it at once.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
eval "$("$REPO_ROOT/scripts/es.sh" env)"
HTTP=("${CLUSTER2_HTTP1:-9201}" "${CLUSTER2_HTTP2:-9202}")
TRANSPORT=("${CLUSTER2_TRANSPORT1:-9301}" "${CLUSTER2_TRANSPORT2:-9302}")
HEAP=${CLUSTER2_HEAP:-384m}
BASE=$(dirname "$ES_HOME")/cluster2
START_TIMEOUT=${ES_START_TIMEOUT:-180}

log() { echo "es_cluster2.sh: $*" >&2; }
die() { log "$*"; exit 1; }
es_user_prefix() { if [ "$(id -u)" -eq 0 ]; then echo "runuser -u $ES_USER --"; fi; }

node_dir() { echo "$BASE/node$1"; }
pid_of() { cat "$(node_dir "$1")/es.pid" 2>/dev/null || true; }
alive() { local pid; pid=$(pid_of "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

start_node() {  # $1: 1 or 2
  local i=$1 dir
  dir=$(node_dir "$i")
  mkdir -p "$dir/data" "$dir/logs"
  rm -rf "$dir/config"
  cp -r "$ES_HOME/config" "$dir/config"
  [ "$(id -u)" -ne 0 ] || chown -R "$ES_USER:$ES_USER" "$BASE"
  log "starting node$i (http ${HTTP[$((i-1))]}, transport ${TRANSPORT[$((i-1))]})"
  # shellcheck disable=SC2046
  timeout "$START_TIMEOUT" $(es_user_prefix) env ES_JAVA_HOME="$ES_JAVA_HOME" ES_JAVA_OPTS="-Xms$HEAP -Xmx$HEAP" \
    ES_PATH_CONF="$dir/config" "$ES_HOME/bin/elasticsearch" -d -p "$dir/es.pid" \
    -Ecluster.name=dssm-cluster2 -Enode.name="node$i" \
    -Epath.data="$dir/data" -Epath.logs="$dir/logs" \
    -Enetwork.host=127.0.0.1 -Ehttp.port="${HTTP[$((i-1))]}" -Etransport.port="${TRANSPORT[$((i-1))]}" \
    -Ediscovery.seed_hosts="127.0.0.1:${TRANSPORT[0]},127.0.0.1:${TRANSPORT[1]}" \
    -Ecluster.initial_master_nodes=node1,node2 \
    -Expack.security.enabled=false -Ecluster.routing.allocation.disk.threshold_enabled=false \
    >"$dir/start.log" 2>&1 &
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

up() {
  [ -x "$ES_HOME/bin/elasticsearch" ] || die "no Elasticsearch at $ES_HOME; run make es-up first"
  if alive 1 && alive 2; then log "already running"; return; fi
  down
  local port
  for port in "${HTTP[@]}" "${TRANSPORT[@]}"; do
    port_busy "$port" && die "port $port is in use (another cluster?); choose others with CLUSTER2_HTTP1/2, CLUSTER2_TRANSPORT1/2"
  done
  start_node 1
  start_node 2
  local pids=($(jobs -p)) failed=0 pid
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done   # -d returns once each node is ready
  if [ $failed -ne 0 ]; then
    for i in 1 2; do tail -n 40 "$(node_dir "$i")/start.log" >&2; done
    keep_logs_and_stop
    die "a node failed to start (logs kept under $BASE)"
  fi
  curl -sf --max-time 130 "http://127.0.0.1:${HTTP[0]}/_cluster/health?wait_for_nodes=2&wait_for_status=green&timeout=120s" >/dev/null \
    || { keep_logs_and_stop; die "the two nodes did not form a green cluster within 120 s (logs kept under $BASE)"; }
  log "up: http://127.0.0.1:${HTTP[0]} and http://127.0.0.1:${HTTP[1]}"
}

keep_logs_and_stop() { KEEP_LOGS=1 down; }

down() {
  local i pid
  for i in 1 2; do
    pid=$(pid_of "$i")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then log "stopping node$i (pid $pid)"; kill "$pid"; fi
  done
  for i in 1 2; do
    pid=$(pid_of "$i")
    [ -n "$pid" ] || continue
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
  done
  if [ "${KEEP_LOGS:-0}" = 1 ]; then rm -rf "$BASE"/node*/data "$BASE"/node*/es.pid; else rm -rf "$BASE"; fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) for i in 1 2; do if alive "$i"; then echo "node$i running (pid $(pid_of "$i"))"; else echo "node$i stopped"; fi; done ;;
  urls) echo "http://127.0.0.1:${HTTP[0]},http://127.0.0.1:${HTTP[1]}" ;;
  *) echo "usage: scripts/es_cluster2.sh up|down|status|urls" >&2; exit 2 ;;
esac
