#!/usr/bin/env bash
# README command (1): installs what is missing, builds, and runs the demo on
# one machine: a store, the backup daemon with its standby store, the sync
# agent, the demo shop (shmsession-appserver) with 4 worker processes on one
# port, ~5 s of HTTP load, then the same load on the same shop keeping its
# sessions in Redis (`serve --sessions redis`: a redis-server it starts and
# stops, phpredis's lock recipe), then a summary (throughput and latency of
# both, commits, bytes shipped to the backup against whole-session
# replication, lag), a look at one session on the primary and on the
# standby, and a clean stop.
#
#   bash tools/scripts/demo.sh                  the story above
#   bash tools/scripts/demo.sh --keep-running   start everything and leave it
#                                               running for curl or a browser
#                                               (Ctrl-C stops it)
# Everything started is stopped (SIGTERM, by pid) and both stores and the
# temporary files are removed on every exit, failures included.
set -euo pipefail

keep_running=0
for arg in "$@"; do
  case $arg in
    --keep-running) keep_running=1 ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown option '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/../.."
bash tools/scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 --target shmsession-appserver shmctl shmsession-agent shmsession-backupd

B=build/tools
shmctl=$B/shmctl/shmctl
appserver=$B/appserver/shmsession-appserver
store=shmsession-demo
standby=shmsession-demo-standby
workers=4
load_seconds=5
connections=8
sessions=200
tmp=$(mktemp -d /tmp/shmsession-demo.XXXXXX)
server_pid='' agent_pid='' backupd_pid='' redis_shop_pid=''

# Stops one process we started: SIGTERM, up to 10 s, then SIGKILL; prints
# its exit status unless told to be quiet.
stop() {
  local pid=$1 what=$2 quiet=${3:-}
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { echo "demo: $what (pid $pid) ignored SIGTERM: SIGKILL" >&2; kill -KILL "$pid"; }
  local status=0
  wait "$pid" 2>/dev/null || status=$?
  [[ -z $quiet ]] && printf '  %-15s pid %-7s exit %s\n' "$what" "$pid" "$status"
  return 0
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop "$redis_shop_pid" "Redis shop" quiet
  stop "$server_pid" "app server" quiet
  stop "$agent_pid" "agent" quiet
  stop "$backupd_pid" "backup daemon" quiet
  "$shmctl" destroy "$store" >/dev/null 2>&1 || true
  "$shmctl" destroy "$standby" >/dev/null 2>&1 || true
  if ((status != 0 && status != 130)); then
    for log in "$tmp"/*.log; do
      [[ -s $log ]] && { echo "--- $(basename "$log") (last lines)"; tail -n 5 "$log"; }
    done >&2
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted: stopping everything"; exit 130' INT TERM

# The first port from $1 up that nothing listens on.
free_port() {
  local port=$1
  while ss -Hltn "sport = :$port" | grep -q .; do port=$((port + 1)); done
  echo "$port"
}

# A number from compact JSON on stdin: json_num KEY.
json_num() { grep -o "\"$1\":-\{0,1\}[0-9.eE+-]*" | head -n 1 | cut -d: -f2; }

# Waits until `grep -q PATTERN FILE` holds while PID lives (at most 15 s).
wait_for_line() {
  local pid=$1 pattern=$2 file=$3 what=$4
  for _ in $(seq 150); do
    grep -q "$pattern" "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { echo "demo: $what exited at start:" >&2; cat "$file" >&2; return 1; }
    sleep 0.1
  done
  echo "demo: $what did not start within 15 s" >&2
  return 1
}

port=$(free_port "${SHMSESSION_DEMO_PORT:-8080}")
backup_port=$(free_port 7480)
key=$tmp/backup.key
head -c 32 /dev/urandom >"$key"
chmod 600 "$key"
"$shmctl" destroy "$store" --force >/dev/null 2>&1 || true  # left by a killed earlier run
"$shmctl" destroy "$standby" --force >/dev/null 2>&1 || true

echo
echo "== starting: backup daemon, store, sync agent, app server ($workers workers)"
# Each server in a session of its own (setsid), so that a Ctrl-C reaches only
# this script, which then stops them in order: app server, agent, backup.
setsid "$B"/shmsession-backupd/shmsession-backupd "$standby" --key "$key" --listen "127.0.0.1:$backup_port" --size 256M \
  2>"$tmp/backupd.log" &
backupd_pid=$!
wait_for_line "$backupd_pid" "listening on" "$tmp/backupd.log" "shmsession-backupd"
"$shmctl" create "$store" --size 256M --log-capacity 262144 >/dev/null
setsid "$B"/shmsession-agent/shmsession-agent run "$store" --backup "127.0.0.1:$backup_port" --key "$key" \
  2>"$tmp/agent.log" &
agent_pid=$!
setsid "$appserver" serve --store "$store" --port "$port" --workers "$workers" 2>"$tmp/appserver.log" &
server_pid=$!
wait_for_line "$server_pid" "serving store" "$tmp/appserver.log" "shmsession-appserver"
sed 's/^[^ ]* //' "$tmp/appserver.log"
echo "shmsession-backupd: pid $backupd_pid, standby store '$standby' on 127.0.0.1:$backup_port"
echo "shmsession-agent: pid $agent_pid, shipping '$store' to it"

url="http://127.0.0.1:$port"
if ((keep_running)); then
  jar=$tmp/cookies
  cat <<EOF

The shop is running at $url/cart (open it in a browser), $workers workers on one port.
Try (the cookie jar keeps your session):
  curl -c $jar -b $jar -X POST '$url/cart/items?sku=SKU-0001&qty=2'
  curl -c $jar -b $jar -X POST $url/cart/items -d sku=SKU-0042 -d qty=1
  curl -c $jar -b $jar -X POST '$url/cart/items/SKU-0001?qty=5'     # qty=0 removes the line
  curl -c $jar -b $jar $url/view/SKU-0007
  curl -c $jar -b $jar $url/cart
  curl -c $jar -b $jar $url/api/session                            # which worker served it, version, total
  $B/appserver/shmsession-appserver load --port $port --seconds 5
  $shmctl info $store        $shmctl list $store        $shmctl info $standby
Ctrl-C stops everything and removes both stores.
EOF
  wait "$server_pid" || true
  echo "demo: the app server exited" >&2
  exit 1
fi

echo
echo "== load: $connections keep-alive connections, $sessions sessions, ${load_seconds} s against $url"
# The agent's lag, sampled while the load runs.
(
  while :; do
    "$shmctl" info "$store" --json 2>/dev/null | json_num lag_ms >>"$tmp/lag_samples" || true
    sleep 0.25
  done
) &
sampler_pid=$!
load_status=0
"$appserver" load --port "$port" --connections "$connections" --sessions "$sessions" --seconds "$load_seconds" \
  --json >"$tmp/load.json" || load_status=$?
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
if ((load_status != 0)); then
  echo "demo: the load client reported failures (exit $load_status): $(cat "$tmp/load.json")" >&2
  exit 1
fi

# Catch-up: until the backup acknowledged the whole change log.
catch_up_start=$(date +%s%N)
caught_up=no
for _ in $(seq 200); do
  info=$("$shmctl" info "$store" --json)
  if [[ $(json_num acked_seq <<<"$info") == "$(json_num next_change_seq <<<"$info")" ]]; then caught_up=yes; break; fi
  sleep 0.05
done
catch_up_ms=$((($(date +%s%N) - catch_up_start) / 1000000))
sleep 0.2  # the agent publishes its counters every 100 ms
info=$("$shmctl" info "$store" --json)
load=$(cat "$tmp/load.json")

# The same shop, workers, connections, sessions and request mix, with the
# sessions in Redis: the shop starts its own redis-server on a free loopback
# port and stops it by pid when stopped. The store's shop idles meanwhile.
redis_port=$(free_port $((port + 1)))
echo
echo "== the same load on the same shop, sessions in Redis (shmsession-appserver serve --sessions redis)"
setsid "$appserver" serve --sessions redis --port "$redis_port" --workers "$workers" 2>"$tmp/appserver-redis.log" &
redis_shop_pid=$!
wait_for_line "$redis_shop_pid" "serving sessions in Redis" "$tmp/appserver-redis.log" "shmsession-appserver --sessions redis"
sed 's/^[^ ]* //' "$tmp/appserver-redis.log"
load_status=0
"$appserver" load --port "$redis_port" --connections "$connections" --sessions "$sessions" --seconds "$load_seconds" \
  --json >"$tmp/load-redis.json" || load_status=$?
if ((load_status != 0)); then
  echo "demo: the load client reported failures on the Redis shop (exit $load_status): $(cat "$tmp/load-redis.json")" >&2
  exit 1
fi
stop "$redis_shop_pid" "Redis shop"
redis_shop_pid=''
redis_load=$(cat "$tmp/load-redis.json")

max_lag=$(sort -n "$tmp/lag_samples" 2>/dev/null | tail -n 1)

commits=$(json_num commits <<<"$info")
store_sessions=$(json_num sessions <<<"$info")
delta=$(json_num delta_bytes <<<"$info")
whole=$(json_num whole_bytes <<<"$info")
wire=$(json_num wire_bytes <<<"$info")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "n/a" }'; }
# fmt FORMAT KEY [JSON]: a number of a load summary (the store's by
# default; Boost.JSON writes 1.2E4), formatted.
fmt() { awk -v f="$1" -v x="$(json_num "$2" <<<"${3:-$load}")" 'BEGIN { printf f, x }'; }
store_rate=$(fmt %.0f requests_per_s)
redis_rate=$(fmt %.0f requests_per_s "$redis_load")

echo
echo "== summary"
printf '%-44s %s\n' \
  "requests" "$(fmt %d requests) in $(fmt %.2f seconds) s over $connections connections, $(fmt %d errors) errors" \
  "requests/s" "$store_rate ($(ratio "$store_rate" "$redis_rate") the same shop with sessions in Redis)" \
  "latency p50 / p99" "$(fmt %.2f p50_ms) ms / $(fmt %.2f p99_ms) ms (max $(fmt %.1f max_ms) ms)" \
  "sessions in Redis: requests" \
  "$(fmt %d requests "$redis_load") in $(fmt %.2f seconds "$redis_load") s over $connections connections, $(fmt %d errors "$redis_load") errors" \
  "sessions in Redis: requests/s" "$redis_rate" \
  "sessions in Redis: latency p50 / p99" \
  "$(fmt %.2f p50_ms "$redis_load") ms / $(fmt %.2f p99_ms "$redis_load") ms (max $(fmt %.1f max_ms "$redis_load") ms)" \
  "sessions in the store" "$store_sessions" \
  "commits" "$commits" \
  "bytes shipped to the backup (deltas)" "$delta ($wire on the wire, sealed frames included)" \
  "whole-session frames for the same shipments" "$whole ($(ratio "$whole" "$delta") the deltas)" \
  "replication lag during load (max sampled)" "${max_lag:-0} ms" \
  "backup caught up after the load" "$caught_up, in $catch_up_ms ms"
cat <<'EOF'

notes: "sessions in Redis" is the same shop binary, workers, connections, sessions and request
mix with each session a Redis hash (same attribute bytes) on a redis-server the shop started
on loopback (no persistence, no replica), and every request runs phpredis's session cycle:
EXISTS (strict mode), SET NX PX lock, HGETALL, HSET + HINCRBY + EXPIRE (one round trip) or
EXPIRE, unlock script; the store's run also shipped every change to the backup meanwhile.
Both byte counts are the sync agent's own counters (shmctl info): for every delta it
shipped, the delta frame's payload, and the frame that would have carried the whole session
(every attribute, same format) instead. The agent ships one delta per changed session per poll
of the change log: one per commit while it keeps up, fewer under a backlog (then replicating
the whole session on every commit, as Tomcat's BackupManager does, would ship even more than
the whole-session figure). Lag: the agent's age of the oldest unacknowledged change, sampled
every 250 ms.
EOF

sid=$("$shmctl" list "$store" --limit 1 --json | grep -o '"id":"[^"]*"' | head -n 1 | cut -d'"' -f4)
for cmd in "list $store --limit 5" "show $store $sid" "show $standby $sid"; do
  echo
  echo "\$ shmctl $cmd"
  # shellcheck disable=SC2086
  "$shmctl" $cmd
done

echo
echo "== stopping (SIGTERM, in order: app server, agent, backup daemon)"
stop "$server_pid" "app server"
server_pid=''
stop "$agent_pid" "agent"
agent_pid=''
stop "$backupd_pid" "backup daemon"
backupd_pid=''
echo "stores '$store' and '$standby' and $tmp removed on exit"
