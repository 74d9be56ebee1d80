#!/usr/bin/env bash
# A local single-node Elasticsearch for dev and CI: scripts/es.sh up|down|status|logs|env
# (and up-secure|down-secure: a second node with security on, for the authentication tests)
#
# Version: ES_VERSION (default 8.19.21), the integ-test-zip from Maven Central,
#   org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip
#   Why not 9.x: Maven Central publishes no 9.x integ-test-zip (its maven-metadata lists 7.x and 8.x
#   only, newest 8.19.21; 9.3.0:zip is "Could not find artifact"). See docs/ELASTICSEARCH.md.
#   The Python client must match: elasticsearch>=8.19,<9; the plugin's elasticsearch.version too.
#
# Paths (other scripts may rely on them; `scripts/es.sh env` prints them as shell assignments):
#   zip cache   ${DSSM_CACHE:-$HOME/.cache/dssm-search}/es/elasticsearch-$ES_VERSION.zip
#   ES_BASE     ${DSSM_ES_BASE:-/tmp/dssm-es-$(id -u)}   (under /tmp so the ES user can traverse it)
#   ES_HOME     $ES_BASE/elasticsearch-$ES_VERSION      (bin/, config/, data/, logs/, plugins/)
#   pid file    $ES_HOME/es.pid; log $ES_HOME/logs/dssm-search.log (cluster.name dssm-search)
#   ES_USER     when run as root: system user `dssm-es` (ES refuses root), created when missing;
#               otherwise the calling user.
#   ES_JAVA_HOME ${ES_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64} (the zip has no bundled JDK)
# Node: 127.0.0.1:${ES_PORT:-9200} (transport ES_PORT + 100, so extra nodes on 9301/9302 never collide), discovery.type=single-node, heap ${ES_HEAP:-512m},
#   xpack.security.enabled=false, disk threshold off. Data persists in $ES_HOME/data across restarts.
#
# Extra nodes (e.g. a two-node test) reuse the same unpacked ES_HOME with their own paths and ports;
# they must not use discovery.type=single-node. As root, run them as $ES_USER:
#   eval "$(scripts/es.sh env)"
#   runuser -u "$ES_USER" -- env ES_JAVA_HOME="$ES_JAVA_HOME" ES_JAVA_OPTS="-Xms512m -Xmx512m" \
#     ES_PATH_CONF=<a copy of $ES_HOME/config owned by $ES_USER> "$ES_HOME/bin/elasticsearch" -d -p <pid> \
#     -Epath.data=<dir> -Epath.logs=<dir> -Ehttp.port=<port> -Etransport.port=<port> ...
#
# Plugin: when es-plugin/target/releases/*.zip (or the file $DSSM_ES_PLUGIN_ZIP) exists, `up`
# installs it (elasticsearch-plugin install --batch) and reinstalls it, restarting a running node,
# when the zip's sha256 changed; a zip built for another elasticsearch.version is refused.
# When the zip is gone, a plugin installed by this script is removed.
set -euo pipefail

ES_VERSION=${ES_VERSION:-8.19.21}
ES_PORT=${ES_PORT:-9200}
ES_HEAP=${ES_HEAP:-512m}
ES_JAVA_HOME=${ES_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
ES_START_TIMEOUT=${ES_START_TIMEOUT:-180}
DSSM_CACHE=${DSSM_CACHE:-$HOME/.cache/dssm-search}
ES_BASE=${DSSM_ES_BASE:-/tmp/dssm-es-$(id -u)}
ES_HOME=$ES_BASE/elasticsearch-$ES_VERSION
ES_ZIP=$DSSM_CACHE/es/elasticsearch-$ES_VERSION.zip
ES_PID_FILE=$ES_HOME/es.pid
CLUSTER_NAME=dssm-search
MVN_DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
PLUGIN_GLOB="$REPO_ROOT/es-plugin/target/releases/*.zip"
PLUGIN_STAMP=$ES_HOME/.dssm-plugin   # "<sha256> <plugin name>" of the plugin we installed
if [ "$(id -u)" -eq 0 ]; then ES_USER=dssm-es; else ES_USER=$(id -un); fi
URL=http://127.0.0.1:$ES_PORT

log() { echo "es.sh: $*" >&2; }
die() { log "$*"; exit 1; }

es_user_prefix() {  # words to put before a command to run it as the ES user
  if [ "$(id -u)" -eq 0 ]; then echo "runuser -u $ES_USER --"; fi
}

is_our_node() {  # $1: pid file; true when its pid is alive and is a java process of this ES_HOME
  local args  # (no `ps | grep -q`: under pipefail, grep quitting early can fail the pipe with SIGPIPE)
  [ -f "$1" ] && args=$(ps -o args= -p "$(cat "$1")" 2>/dev/null) && [[ "$args" == *"-Des.path.home=$ES_HOME "* ]]
}

pid_alive() { is_our_node "$ES_PID_FILE"; }

healthy() {  # $1: seconds to wait for yellow
  curl -sf --max-time $(($1 + 5)) "$URL/_cluster/health?wait_for_status=yellow&timeout=${1}s" >/dev/null
}

log_tail() {
  local f
  for f in "$ES_HOME/logs/$CLUSTER_NAME.log" "$ES_HOME/logs/gc.log"; do
    [ -f "$f" ] && { log "last lines of $f:"; tail -n "${1:-80}" "$f" >&2; return; }
  done
  log "no log file under $ES_HOME/logs"
}

ensure_unzip() {
  command -v unzip >/dev/null && return
  [ "$(id -u)" -eq 0 ] || die "unzip is missing; install it (apt-get install unzip) and rerun"
  log "installing unzip"
  apt-get update -qq && apt-get install -y -qq unzip >/dev/null
}

ensure_zip() {
  [ -s "$ES_ZIP" ] && return
  command -v mvn >/dev/null || die "mvn is missing; install Maven to fetch Elasticsearch $ES_VERSION"
  log "fetching Elasticsearch $ES_VERSION integ-test-zip with mvn into $(dirname "$ES_ZIP")"
  mkdir -p "$(dirname "$ES_ZIP")"
  mvn -B -q -Dstyle.color=never "$MVN_DEPENDENCY_PLUGIN:copy" \
    -Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" \
    -DoutputDirectory="$(dirname "$ES_ZIP")" >&2 \
    || die "mvn could not fetch org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip"
}

ensure_unpacked() {
  [ -x "$ES_HOME/bin/elasticsearch" ] && return
  ensure_zip
  ensure_unzip
  log "unpacking into $ES_BASE"
  mkdir -p "$ES_BASE"
  chmod 755 "$ES_BASE"
  local tmp
  tmp=$(mktemp -d "$ES_BASE/.unpack.XXXXXX")
  unzip -q "$ES_ZIP" -d "$tmp"   # unzip keeps the +x bits of bin/* (Python's zipfile does not)
  rm -rf "$ES_HOME"
  mv "$tmp/elasticsearch-$ES_VERSION" "$ES_HOME"
  rmdir "$tmp"
}

ensure_user() {
  [ "$(id -u)" -eq 0 ] || return 0
  id "$ES_USER" >/dev/null 2>&1 \
    || useradd --system --no-create-home --shell /usr/sbin/nologin "$ES_USER"
  chown -R "$ES_USER:$ES_USER" "$ES_HOME"
}

plugin_zip() {  # the plugin zip of this checkout (or $DSSM_ES_PLUGIN_ZIP), or nothing
  local zips=()
  if [ -n "${DSSM_ES_PLUGIN_ZIP:-}" ]; then
    [ -f "$DSSM_ES_PLUGIN_ZIP" ] || die "DSSM_ES_PLUGIN_ZIP=$DSSM_ES_PLUGIN_ZIP: no such file"
    echo "$(cd "$(dirname "$DSSM_ES_PLUGIN_ZIP")" && pwd)/$(basename "$DSSM_ES_PLUGIN_ZIP")"
    return
  fi
  shopt -s nullglob
  zips=($PLUGIN_GLOB)
  shopt -u nullglob
  [ ${#zips[@]} -le 1 ] || die "more than one plugin zip in es-plugin/target/releases; run make clean plugin"
  [ ${#zips[@]} -eq 0 ] || echo "${zips[0]}"
}

plugin_wanted_stamp() {  # "<sha256> <name>" for the checkout's zip, or nothing
  local zip name version
  zip=$(plugin_zip)
  [ -n "$zip" ] || return 0
  ensure_unzip
  name=$(unzip -p "$zip" plugin-descriptor.properties | sed -n 's/^name=//p' | tr -d '\r')
  version=$(unzip -p "$zip" plugin-descriptor.properties | sed -n 's/^elasticsearch.version=//p' | tr -d '\r')
  [ -n "$name" ] || die "$zip has no plugin-descriptor.properties with name= at its root"
  [ "$version" = "$ES_VERSION" ] || die "$zip is built for Elasticsearch '$version' but the server is $ES_VERSION; set es.version=$ES_VERSION in es-plugin/pom.xml and rebuild (make plugin)"
  echo "$(sha256sum "$zip" | cut -d' ' -f1) $name"
}

sync_plugin() {  # ES must be stopped; installs/removes so that the server matches the checkout
  local wanted have zip
  ensure_unzip
  wanted=$(plugin_wanted_stamp)
  have=$(cat "$PLUGIN_STAMP" 2>/dev/null || true)
  [ "$wanted" = "$have" ] && return
  if [ -n "$have" ]; then
    log "removing plugin ${have#* }"
    ES_JAVA_HOME=$ES_JAVA_HOME "$ES_HOME/bin/elasticsearch-plugin" remove --purge "${have#* }" >&2 || true
    rm -f "$PLUGIN_STAMP"
  fi
  if [ -n "$wanted" ]; then
    zip=$(plugin_zip)
    log "installing plugin ${wanted#* } from $zip"
    ES_JAVA_HOME=$ES_JAVA_HOME "$ES_HOME/bin/elasticsearch-plugin" install --batch "file://$zip" >&2 \
      || die "elasticsearch-plugin install failed for $zip"
    echo "$wanted" >"$PLUGIN_STAMP"
  fi
}

plugin_changed() { [ "$(plugin_wanted_stamp)" != "$(cat "$PLUGIN_STAMP" 2>/dev/null || true)" ]; }

start() {
  if curl -s --max-time 2 -o /dev/null "$URL/"; then
    die "port $ES_PORT already answers but not from $ES_HOME; stop that server or set ES_PORT"
  fi
  [ -x "$ES_JAVA_HOME/bin/java" ] || die "no JDK at ES_JAVA_HOME=$ES_JAVA_HOME (ES needs a full JDK 17+)"
  sync_plugin
  ensure_user
  rm -f "$ES_PID_FILE"
  log "starting Elasticsearch $ES_VERSION as $ES_USER on $URL (ES_HOME $ES_HOME)"
  # -d returns once the node signalled readiness; a non-zero exit is a failed start
  if ! timeout "$ES_START_TIMEOUT" $(es_user_prefix) env ES_JAVA_HOME="$ES_JAVA_HOME" \
      ES_JAVA_OPTS="-Xms$ES_HEAP -Xmx$ES_HEAP" "$ES_HOME/bin/elasticsearch" -d -p "$ES_PID_FILE" \
      -Ecluster.name="$CLUSTER_NAME" -Enode.name=dssm-node-1 \
      -Ediscovery.type=single-node -Expack.security.enabled=false \
      -Enetwork.host=127.0.0.1 -Ehttp.port="$ES_PORT" -Etransport.port="$((ES_PORT + 100))" \
      -Ecluster.routing.allocation.disk.threshold_enabled=false >"$ES_BASE/start.out" 2>&1; then
    log "Elasticsearch failed to start; its output:"
    tail -n 30 "$ES_BASE/start.out" >&2
    log_tail 30
    exit 1
  fi
  healthy 60 || { log "Elasticsearch started but is not yellow within 60 s"; log_tail 30; exit 1; }
  log "up: $URL (pid $(cat "$ES_PID_FILE"))"
}

stop() {
  if ! pid_alive; then rm -f "$ES_PID_FILE"; log "not running"; return; fi
  local pid i
  pid=$(cat "$ES_PID_FILE")
  log "stopping pid $pid"
  kill "$pid"
  for i in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  if kill -0 "$pid" 2>/dev/null; then log "pid $pid still alive after 60 s; killing"; kill -9 "$pid"; fi
  rm -f "$ES_PID_FILE"
  log "stopped"
}

up() {
  ensure_unpacked
  if pid_alive; then
    if plugin_changed; then log "plugin zip changed: restarting"; stop; start; return; fi
    healthy 60 || { log "pid $(cat "$ES_PID_FILE") runs but the cluster is not yellow"; log_tail 40; exit 1; }
    log "already running: $URL (pid $(cat "$ES_PID_FILE"))"
    return
  fi
  start
}

status() {
  if pid_alive && healthy 5; then
    echo "running: $URL pid $(cat "$ES_PID_FILE") ES_HOME $ES_HOME"
    curl -s --max-time 5 "$URL/_cluster/health?pretty"
  elif pid_alive; then
    echo "starting or unhealthy: pid $(cat "$ES_PID_FILE") ES_HOME $ES_HOME"; exit 3
  else
    echo "stopped (ES_HOME $ES_HOME)"; exit 3
  fi
}

# A second, throwaway node with security on (file-realm user, no TLS), for authentication tests:
# `up-secure` prints its URL; the user and password are in $SECURE_DIR/credentials (user:password).
# Ports: http ES_SECURE_PORT (default ES_PORT + 10 = 9210), transport ES_SECURE_TRANSPORT_PORT
# (default http + 100); one directory per http port, so test sessions running side by side can each
# start their own (tests/es_fixtures.py picks free ports). `down` stops every one of them.
SECURE_PORT=${ES_SECURE_PORT:-$((ES_PORT + 10))}
SECURE_TRANSPORT_PORT=${ES_SECURE_TRANSPORT_PORT:-$((SECURE_PORT + 100))}
SECURE_DIR=$ES_BASE/secure-$SECURE_PORT

secure_up() {
  ensure_unpacked
  ensure_user
  local pid_file=$SECURE_DIR/es.pid password
  if is_our_node "$pid_file"; then
    echo "http://127.0.0.1:$SECURE_PORT"; return
  fi
  rm -rf "$SECURE_DIR"
  mkdir -p "$SECURE_DIR/data" "$SECURE_DIR/logs"
  cp -r "$ES_HOME/config" "$SECURE_DIR/config"
  rm -f "$SECURE_DIR/config/elasticsearch.keystore"
  password=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
  ES_PATH_CONF=$SECURE_DIR/config ES_JAVA_HOME=$ES_JAVA_HOME \
    "$ES_HOME/bin/elasticsearch-users" useradd dssm-test -p "$password" -r superuser >&2
  (umask 077; echo "dssm-test:$password" >"$SECURE_DIR/credentials")
  [ "$(id -u)" -ne 0 ] || chown -R "$ES_USER:$ES_USER" "$SECURE_DIR/config" "$SECURE_DIR/data" "$SECURE_DIR/logs"
  [ "$(id -u)" -ne 0 ] || chown "$ES_USER:$ES_USER" "$SECURE_DIR"
  log "starting a secured node on 127.0.0.1:$SECURE_PORT ($SECURE_DIR)"
  if ! timeout "$ES_START_TIMEOUT" $(es_user_prefix) env ES_JAVA_HOME="$ES_JAVA_HOME" \
      ES_PATH_CONF="$SECURE_DIR/config" ES_JAVA_OPTS="-Xms384m -Xmx384m" \
      "$ES_HOME/bin/elasticsearch" -d -p "$pid_file" \
      -Ecluster.name=dssm-secure -Enode.name=dssm-secure-1 -Ediscovery.type=single-node \
      -Expack.security.enabled=true -Expack.security.http.ssl.enabled=false \
      -Expack.security.transport.ssl.enabled=false -Enetwork.host=127.0.0.1 -Ehttp.port="$SECURE_PORT" \
      -Etransport.port="$SECURE_TRANSPORT_PORT" -Epath.data="$SECURE_DIR/data" -Epath.logs="$SECURE_DIR/logs" \
      -Ecluster.routing.allocation.disk.threshold_enabled=false >"$SECURE_DIR/start.out" 2>&1; then
    log "the secured node failed to start; its output:"
    tail -n 30 "$SECURE_DIR/start.out" >&2
    exit 1
  fi
  curl -sf --max-time 65 -u "dssm-test:$password" \
    "http://127.0.0.1:$SECURE_PORT/_cluster/health?wait_for_status=yellow&timeout=60s" >/dev/null \
    || die "the secured node on port $SECURE_PORT is not yellow within 60 s"
  echo "http://127.0.0.1:$SECURE_PORT"
}

secure_down() {  # $1: the node's directory (default: this port's)
  local dir=${1:-$SECURE_DIR} pid i
  local pid_file=$dir/es.pid
  if is_our_node "$pid_file"; then
    pid=$(cat "$pid_file")
    kill "$pid"
    for i in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
  fi
  rm -rf "$dir"
}

all_secure_down() {
  local dir
  for dir in "$ES_BASE"/secure-*; do
    if [ -d "$dir" ]; then secure_down "$dir"; fi
  done
}

with_lock() {  # one up/down at a time per ES_BASE
  mkdir -p "$ES_BASE"
  chmod 755 "$ES_BASE"
  exec 9>"$ES_BASE/.lock"
  flock -w 300 9 || die "another scripts/es.sh holds $ES_BASE/.lock"
  "$@"
}

case "${1:-}" in
  up) with_lock up ;;
  down) with_lock stop; with_lock all_secure_down ;;
  up-secure) with_lock secure_up ;;
  down-secure) with_lock secure_down ;;
  status) status ;;
  logs) tail -n "${2:-200}" "$ES_HOME/logs/$CLUSTER_NAME.log" ;;
  env)
    printf 'ES_VERSION=%q\nES_HOME=%q\nES_USER=%q\nES_JAVA_HOME=%q\nES_PORT=%q\nES_URL=%q\n' \
      "$ES_VERSION" "$ES_HOME" "$ES_USER" "$ES_JAVA_HOME" "$ES_PORT" "$URL" ;;
  *) echo "usage: scripts/es.sh up|down|status|logs [N]|env|up-secure|down-secure" >&2; exit 2 ;;
esac
