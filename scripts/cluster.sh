#!/usr/bin/env bash
# A Tern cluster on this machine without Docker: the topology of docker-compose.yml, all on
# 127.0.0.1 (docs/cluster.md).
#
#   scripts/cluster.sh up [options] [-- extra tern flags]   start everything, return when ready
#   scripts/cluster.sh status [--dir DIR]                    what runs, on which port
#   scripts/cluster.sh down [--dir DIR]                      stop everything `up` started
#
#   redis-server   --redis-port (default: a free port), appendonly yes, data in DIR/redis
#   tern1..N       MQTT --node-ports (1884,1885,1886), metrics --metrics-ports (9465,9466,9467),
#                  each with --redis redis://127.0.0.1:<redis port>
#   haproxy        TCP mode on --lb-port (1883), balancing over the nodes, checking /ready
#
# Options: --dir DIR (default tmp/cluster in the repository, or $TERN_CLUSTER_DIR), --prefix P
# (Redis key prefix, default tern). Pids, logs and the generated haproxy.cfg go to DIR; `down`
# stops exactly the processes whose pids `up` wrote there. Needs a build (npm run build),
# redis-server and haproxy (Debian packages redis-server and haproxy).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CLI="$ROOT/packages/broker/dist/cli.js"
DIR="${TERN_CLUSTER_DIR:-$ROOT/tmp/cluster}"
REDIS_PORT=""
LB_PORT=1883
NODE_PORTS="1884,1885,1886"
METRICS_PORTS="9465,9466,9467"
PREFIX=tern
EXTRA=()
# Longest wait for one process to accept connections, and for one to stop after SIGTERM.
START_TIMEOUT_S=30
STOP_TIMEOUT_S=15

die() {
  echo "cluster: $*" >&2
  exit 1
}

usage() {
  # The comment block at the top of this file.
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  exit "${1:-0}"
}

[ $# -ge 1 ] || usage 2
COMMAND="$1"
shift
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR="$2"; shift 2 ;;
    --redis-port) REDIS_PORT="$2"; shift 2 ;;
    --lb-port) LB_PORT="$2"; shift 2 ;;
    --node-ports) NODE_PORTS="$2"; shift 2 ;;
    --metrics-ports) METRICS_PORTS="$2"; shift 2 ;;
    --prefix) PREFIX="$2"; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h | --help) usage 0 ;;
    *) die "unknown option $1 (scripts/cluster.sh --help)" ;;
  esac
done
IFS=, read -r -a NODES <<<"$NODE_PORTS"
IFS=, read -r -a METRICS <<<"$METRICS_PORTS"
[ "${#NODES[@]}" -eq "${#METRICS[@]}" ] || die "--node-ports and --metrics-ports must list as many ports"

# ---- processes by pid file: DIR/<name>.pid holds "<pid> <program>" ----

# The pid in DIR/<name>.pid if that process still runs the program `up` started there (a pid
# reused by something else after a crash is never signalled).
live_pid() {
  local file="$DIR/$1.pid" pid program
  [ -f "$file" ] || return 1
  read -r pid program <"$file"
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$program" || return 1
  echo "$pid"
}

# start NAME PROGRAM-MARK COMMAND...: in the background, output to DIR/NAME.log.
start() {
  local name="$1" mark="$2"
  shift 2
  nohup "$@" >"$DIR/$name.log" 2>&1 </dev/null &
  echo "$! $mark" >"$DIR/$name.pid"
}

# Whether process PID is still running. A zombie counts as stopped: the processes outlive the
# `up` that started them, so whoever adopted them reaps them, maybe not at once.
running() {
  local state
  state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# Whether the process `start` forked for NAME still exists (it may not have exec'd the program
# yet, so live_pid cannot tell).
started_alive() {
  local pid _
  read -r pid _ <"$DIR/$1.pid"
  running "$pid"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Waits until NAME's process accepts connections on PORT; fails if it exits first.
wait_port() {
  local name="$1" port="$2" deadline=$((SECONDS + START_TIMEOUT_S))
  until port_open "$port"; do
    started_alive "$name" || die "$name exited before listening on $port; last lines of $DIR/$name.log:
$(tail -n 5 "$DIR/$name.log")"
    [ "$SECONDS" -lt "$deadline" ] || die "$name is not listening on $port after ${START_TIMEOUT_S}s (see $DIR/$name.log)"
    sleep 0.1
  done
}

# stop NAME...: SIGTERM to each (they shut down gracefully side by side), then waits for all;
# one still running after STOP_TIMEOUT_S gets SIGKILL.
stop() {
  local name pid deadline
  local -A pids=()
  for name in "$@"; do
    if pid="$(live_pid "$name")"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids[$name]=$pid
    else
      rm -f "$DIR/$name.pid"
    fi
  done
  deadline=$((SECONDS + STOP_TIMEOUT_S))
  for name in "${!pids[@]}"; do
    pid=${pids[$name]}
    while running "$pid"; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "cluster: $name ($pid) did not stop in ${STOP_TIMEOUT_S}s: killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
      fi
      sleep 0.1
    done
    rm -f "$DIR/$name.pid"
    echo "cluster: stopped $name ($pid)"
  done
}

free_port() {
  node -e "const s = require('net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); })"
}

haproxy_config() {
  # HAProxy needs two descriptors per connection (client and node side) and refuses to start
  # when maxconn would need more than the open-file limit.
  local fds maxconn
  fds="$(ulimit -n)"
  [ "$fds" = unlimited ] && maxconn=100000 || maxconn=$(((fds - 64) / 2))
  cat <<EOF
# Written by scripts/cluster.sh: deploy/haproxy.cfg for nodes on 127.0.0.1.
global
    maxconn $maxconn

defaults
    mode tcp
    timeout connect 5s
    timeout client 15m
    timeout server 15m
    timeout client-fin 30s
    timeout server-fin 30s

frontend mqtt
    bind 127.0.0.1:$LB_PORT
    default_backend tern

backend tern
    balance leastconn
    option httpchk GET /ready
    http-check expect status 200
    default-server inter 2s fall 3 rise 2 on-marked-down shutdown-sessions
EOF
  local i
  for i in "${!NODES[@]}"; do
    echo "    server tern$((i + 1)) 127.0.0.1:${NODES[$i]} check port ${METRICS[$i]}"
  done
}

# ---- commands ----

up() {
  [ -f "$CLI" ] || die "$CLI is missing: run npm run build first"
  command -v redis-server >/dev/null || die "redis-server is not installed (apt-get install redis-server)"
  command -v haproxy >/dev/null || die "haproxy is not installed (apt-get install haproxy)"
  mkdir -p "$DIR/redis"
  local name
  for name in redis haproxy $(node_names) $(seq -f 'tern%g' 1 "${#NODES[@]}"); do
    if live_pid "$name" >/dev/null; then die "$name is already running from $DIR: scripts/cluster.sh down first"; fi
  done
  [ -n "$REDIS_PORT" ] || REDIS_PORT="$(free_port)"
  # A port already taken would pass wait_port's check for the wrong process.
  local port
  for port in "$REDIS_PORT" "$LB_PORT" "${NODES[@]}" "${METRICS[@]}"; do
    if port_open "$port"; then die "port $port on 127.0.0.1 is already in use"; fi
  done
  echo "$REDIS_PORT" >"$DIR/redis.port"
  # From here on a failure stops whatever was started.
  trap 'if [ $? -ne 0 ]; then echo "cluster: start-up failed, stopping what started" >&2; down; fi' EXIT

  start redis redis-server redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DIR/redis" \
    --appendonly yes --save ''
  wait_port redis "$REDIS_PORT"

  local i
  for i in "${!NODES[@]}"; do
    name="tern$((i + 1))"
    echo "mqtt://127.0.0.1:${NODES[$i]} http://127.0.0.1:${METRICS[$i]}" >"$DIR/$name.ports"
    start "$name" "$CLI" node "$CLI" --host 127.0.0.1 --port "${NODES[$i]}" \
      --metrics-host 127.0.0.1 --metrics-port "${METRICS[$i]}" \
      --redis "redis://127.0.0.1:$REDIS_PORT" --redis-prefix "$PREFIX" --node-name "$name" "${EXTRA[@]}"
  done
  # A node listens only once it has joined the cluster (read the routes and retained messages).
  for i in "${!NODES[@]}"; do wait_port "tern$((i + 1))" "${NODES[$i]}"; done

  haproxy_config >"$DIR/haproxy.cfg"
  haproxy -c -q -f "$DIR/haproxy.cfg" || die "haproxy rejects $DIR/haproxy.cfg"
  start haproxy "$DIR/haproxy.cfg" haproxy -db -f "$DIR/haproxy.cfg"
  wait_port haproxy "$LB_PORT"
  trap - EXIT

  echo "cluster: up (pids and logs in $DIR)"
  status
}

# The nodes `up` started from DIR, in order.
node_names() {
  ls "$DIR" 2>/dev/null | sed -n 's/^\(tern[0-9]*\)\.ports$/\1/p' | sort -V
}

# 200 from a node's /ready: it accepts clients (and, in a cluster, reaches Redis).
ready() {
  node -e "fetch('$1/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
}

status() {
  local name pid state where mqtt metrics running=0
  for name in redis $(node_names) haproxy; do
    if pid="$(live_pid "$name")"; then
      state="running (pid $pid)"
      running=$((running + 1))
    else
      state="stopped"
    fi
    case "$name" in
      redis) where="redis://127.0.0.1:$(cat "$DIR/redis.port" 2>/dev/null || echo '?')" ;;
      haproxy) where="mqtt://$(sed -n 's/^ *bind //p' "$DIR/haproxy.cfg" 2>/dev/null || echo '?') (TCP, over the nodes)" ;;
      *)
        read -r mqtt metrics <"$DIR/$name.ports"
        where="$mqtt, metrics $metrics"
        if [ "$state" != stopped ]; then ready "$metrics" && where="$where, ready" || where="$where, NOT ready"; fi
        ;;
    esac
    printf '%-8s %-22s %s\n' "$name" "$state" "$where"
  done
  [ "$running" -gt 0 ] || echo "cluster: nothing running from $DIR"
}

down() {
  trap - EXIT
  # The balancer first (no new clients), then the nodes (each leaves the cluster cleanly
  # through Redis), Redis last.
  stop haproxy
  # shellcheck disable=SC2046 # one name per word
  stop $(node_names)
  stop redis
  echo "cluster: down"
}

case "$COMMAND" in
  up) up ;;
  down) down ;;
  status) status ;;
  -h | --help | help) usage 0 ;;
  *) die "unknown command $COMMAND (up, down, status)" ;;
esac
