#!/usr/bin/env bash
# The Wyvern demo: a simulated hypervisor (a network namespace with its own
# ovsdb-server and ovs-vswitchd on the userspace datapath), wyvernd running
# next to it, and the bridge's named pipeline as ovs-ofctl shows it.
#
#   deploy/demo.sh start   # (make demo) start, show, leave running
#   deploy/demo.sh stop    # (make demo-stop) stop what start started, by pid
#
# Everything lives under demo-run/ and in namespaces named wyv-*; nothing
# else on the machine is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/sbin:/sbin
RUN=$PWD/demo-run
HVS=(hv1)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

stop_pidfile() {
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

stop() {
  for hv in "${HVS[@]}"; do
    d=$RUN/$hv
    stop_pidfile "$d/wyvernd.pid"
    stop_pidfile "$d/vs.pid"
    stop_pidfile "$d/db.pid"
    ip netns del "wyv-$hv" 2>/dev/null || true
  done
  rm -rf "$RUN"
}

# start_hypervisor NAME: a namespace with OVS and a wyvernd controlling br-int.
start_hypervisor() {
  local hv=$1 d=$RUN/$1 ns=wyv-$1
  mkdir -p "$d"
  ip netns add "$ns"
  ip netns exec "$ns" ip link set lo up
  ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" --pidfile="$d/db.pid" --detach \
    --log-file="$d/db.log" --unixctl="$d/db.ctl" 2>>"$d/start.log"
  ovs-vsctl --db="unix:$d/db.sock" --no-wait init
  ip netns exec "$ns" env OVS_RUNDIR="$d" ovs-vswitchd "unix:$d/db.sock" --pidfile="$d/vs.pid" \
    --detach --log-file="$d/vs.log" --unixctl="$d/vs.ctl" 2>>"$d/start.log"

  ip netns exec "$ns" bin/wyvernd --node-id "$hv" --openflow-addr tcp:127.0.0.1:6653 --data-dir "$d/data" \
    >"$d/wyvernd.log" 2>&1 &
  echo $! >"$d/wyvernd.pid"

  ovs-vsctl --db="unix:$d/db.sock" -- add-br br-int \
    -- set bridge br-int datapath_type=netdev fail_mode=secure protocols=OpenFlow13,OpenFlow15 \
    -- set-controller br-int tcp:127.0.0.1:6653 \
    -- set controller br-int max_backoff=1000 connection_mode=out-of-band
}

wait_for() { # wait_for SECONDS WHAT COMMAND...
  local secs=$1 what=$2; shift 2
  for _ in $(seq $((secs * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "demo: timed out waiting for $what" >&2
  return 1
}

start() {
  [ "$(id -u)" = 0 ] || { echo "demo: run as root (network namespaces)"; exit 1; }
  [ -x bin/wyvernd ] || { echo "demo: build first (make demo does)"; exit 1; }
  stop
  say "Starting hypervisor ${HVS[*]}: ovsdb-server + ovs-vswitchd (userspace datapath) in namespace wyv-hv1, wyvernd beside it"
  for hv in "${HVS[@]}"; do start_hypervisor "$hv"; done
  d=$RUN/hv1
  OFCTL=(ovs-ofctl -O OpenFlow15)
  has_pipeline() { "${OFCTL[@]}" dump-flows --no-stats --names "$d/br-int.mgmt" | grep -q 'table=Delivery'; }
  in_round() { "${OFCTL[@]}" dump-flows --no-stats "$d/br-int.mgmt" | grep -q "cookie=0x$1"; }
  wait_for 15 "br-int to take the pipeline" has_pipeline

  say "ovs-vsctl show (hv1)"
  ovs-vsctl --db="unix:$d/db.sock" show

  say "wyvernd log (hv1)"
  cat "$d/wyvernd.log"

  say "The pipeline on br-int: ovs-ofctl -O OpenFlow15 dump-flows --no-stats --names br-int"
  "${OFCTL[@]}" dump-flows --no-stats --names "$d/br-int.mgmt"

  say "Table names are on the switch itself: ovs-ofctl dump-table-features br-int | grep name"
  "${OFCTL[@]}" dump-table-features "$d/br-int.mgmt" | grep -E '^  table [0-9]+ \("' | sed 's/:.*$//'

  say "Restart wyvernd: the bridge keeps forwarding state, the new round replaces the old"
  stop_pidfile "$d/wyvernd.pid"
  echo "wyvernd stopped; flows still on br-int: $("${OFCTL[@]}" dump-flows --no-stats "$d/br-int.mgmt" | grep -c cookie)"
  ip netns exec wyv-hv1 bin/wyvernd --node-id hv1 --openflow-addr tcp:127.0.0.1:6653 --data-dir "$d/data" >>"$d/wyvernd.log" 2>&1 &
  echo $! >"$d/wyvernd.pid"
  wait_for 15 "round 2" in_round 2
  grep 'bridge replayed' "$d/wyvernd.log" | tail -1
  "${OFCTL[@]}" dump-flows --no-stats --names "$d/br-int.mgmt" | head -3
  echo "  ..."

  say "Running. Poke at it:"
  echo "  ovs-ofctl -O OpenFlow15 dump-flows --names $d/br-int.mgmt"
  echo "  ovs-vsctl --db=unix:$d/db.sock show"
  echo "  less $d/wyvernd.log"
  echo "Stop it with: make demo-stop"
}

case "${1:-start}" in
  start) start ;;
  stop) stop; echo "demo stopped" ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
