#!/usr/bin/env bash
# The Wyvern demo: three simulated hypervisors (network namespaces, each
# with its own ovsdb-server and ovs-vswitchd on the userspace datapath),
# joined by an underlay segment; one wyvernd per hypervisor, embedded next
# to its OVS, the three forming one raft cluster; a topology created through
# the API with the wyvern CLI; the named pipeline on every bridge; and the
# cluster riding out the loss of its leader.
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
HVS=(hv1 hv2 hv3)
UNDERLAY=wyv-underlay

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ip_of() { echo "172.31.0.${1#hv}"; }          # hvN's underlay address
in_hv() { local hv=$1; shift; ip netns exec "wyv-$hv" "$@"; }
wyvern() { local hv=$1; shift; in_hv "$hv" bin/wyvern --api "http://$(ip_of "$hv"):9696" "$@"; }

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
  ip netns del "$UNDERLAY" 2>/dev/null || true
  rm -rf "$RUN"
}

wait_for() { # wait_for SECONDS WHAT COMMAND...
  local secs=$1 what=$2; shift 2
  for _ in $(seq $((secs * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "demo: timed out waiting for $what" >&2
  return 1
}

# The underlay: a Linux bridge in a namespace of its own, one veth to each
# hypervisor, 172.31.0.N on hvN.
start_underlay() {
  ip netns add "$UNDERLAY"
  ip -n "$UNDERLAY" link add br0 type bridge
  ip -n "$UNDERLAY" link set br0 up
}

# start_wyvernd HV [ARGS...]: runs wyvernd in HV's namespace. Called directly
# (not through a shell function) so that $! is wyvernd's own pid: ip netns
# exec replaces itself with the program.
start_wyvernd() {
  local hv=$1 d=$RUN/$1; shift
  ip netns exec "wyv-$hv" bin/wyvernd --node-id "$hv" --data-dir "$d/data" \
    --raft-addr "$(ip_of "$hv"):7946" --api-addr "$(ip_of "$hv"):9696" \
    --openflow-addr tcp:127.0.0.1:6653 "$@" >>"$d/wyvernd.log" 2>&1 &
  echo $! >"$d/wyvernd.pid"
}

healthy() { in_hv "$1" bash -c "exec 3<>/dev/tcp/$(ip_of "$1")/9696 && printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3 && head -1 <&3 | grep -q 200"; }

# start_hypervisor NAME: namespace, underlay link, OVS, wyvernd, br-int.
start_hypervisor() {
  local hv=$1 d=$RUN/$1 ns=wyv-$1 n=${1#hv}
  mkdir -p "$d"
  ip netns add "$ns"
  in_hv "$hv" ip link set lo up
  ip link add "u$n" netns "$ns" type veth peer name "p$n" netns "$UNDERLAY"
  ip -n "$UNDERLAY" link set "p$n" master br0 up
  in_hv "$hv" ip addr add "$(ip_of "$hv")/24" dev "u$n"
  in_hv "$hv" ip link set "u$n" up

  ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" --pidfile="$d/db.pid" --detach \
    --log-file="$d/db.log" --unixctl="$d/db.ctl" 2>>"$d/start.log"
  ovs-vsctl --db="unix:$d/db.sock" --no-wait init
  in_hv "$hv" env OVS_RUNDIR="$d" ovs-vswitchd "unix:$d/db.sock" --pidfile="$d/vs.pid" \
    --detach --log-file="$d/vs.log" --unixctl="$d/vs.ctl" 2>>"$d/start.log"

  local join=()
  if [ "$hv" != hv1 ]; then
    join=(--join "http://$(ip_of hv1):9696")
  fi
  start_wyvernd "$hv" "${join[@]}"

  ovs-vsctl --db="unix:$d/db.sock" -- add-br br-int \
    -- set bridge br-int datapath_type=netdev fail_mode=secure protocols=OpenFlow13,OpenFlow15 \
    -- set-controller br-int tcp:127.0.0.1:6653 \
    -- set controller br-int max_backoff=1000 connection_mode=out-of-band
  wait_for 30 "wyvernd on $hv to be ready" healthy "$hv"
}

start() {
  [ "$(id -u)" = 0 ] || { echo "demo: run as root (network namespaces)"; exit 1; }
  [ -x bin/wyvernd ] && [ -x bin/wyvern ] || { echo "demo: build first (make demo does)"; exit 1; }
  stop
  say "Three hypervisors (namespaces wyv-hv1..3) on an underlay 172.31.0.0/24, each with OVS (userspace datapath) and an embedded wyvernd"
  start_underlay
  for hv in "${HVS[@]}"; do start_hypervisor "$hv"; done

  say "wyvern cluster status   (hv1 bootstrapped; hv2 and hv3 joined through hv1's API)"
  wyvern hv3 cluster status

  say "A topology through the API (sent to hv2 and hv3; followers forward writes to the leader)"
  wyvern hv2 network create blue -o json >/dev/null
  wyvern hv3 network create red --type gre -o json >/dev/null
  wyvern hv2 subnet create --network blue --cidr 10.1.0.0/24 --name blue-v4 -o json >/dev/null
  wyvern hv3 subnet create --network red --cidr 10.2.0.0/24 --name red-v4 -o json >/dev/null
  wyvern hv2 port create --network blue --name vm1 --host hv1 -o json >/dev/null
  wyvern hv3 port create --network blue --name vm2 --host hv2 -o json >/dev/null
  wyvern hv2 port create --network red --name vm3 --host hv3 --fixed-ip subnet=red-v4,ip=10.2.0.30 -o json >/dev/null
  wyvern hv3 router create r1 -o json >/dev/null
  wyvern hv2 router add-interface r1 blue-v4 -o json >/dev/null
  wyvern hv3 router add-interface r1 red-v4 -o json >/dev/null
  echo "\$ wyvern network list"; wyvern hv1 network list
  echo "\$ wyvern subnet list"; wyvern hv1 subnet list
  echo "\$ wyvern port list   (every node holds the same replicated topology; this is hv1's copy)"; wyvern hv1 port list

  d=$RUN/hv1
  OFCTL=(ovs-ofctl -O OpenFlow15)
  has_pipeline() { "${OFCTL[@]}" dump-flows --no-stats --names "$RUN/$1/br-int.mgmt" | grep -q 'table=Delivery'; }
  for hv in "${HVS[@]}"; do wait_for 15 "br-int on $hv to take the pipeline" has_pipeline "$hv"; done
  say "The named pipeline on hv1's br-int: ovs-ofctl -O OpenFlow15 dump-flows --no-stats --names br-int"
  "${OFCTL[@]}" dump-flows --no-stats --names "$d/br-int.mgmt"

  say "Kill the leader's wyvernd (SIGKILL): the cluster elects another and keeps taking writes"
  leader=$(wyvern hv2 cluster status -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"])')
  echo "leader is $leader; killing it"
  pid=$(cat "$RUN/$leader/wyvernd.pid")
  [ "$(cat /proc/"$pid"/comm)" = wyvernd ] || { echo "demo: pid $pid is not wyvernd"; exit 1; }
  kill -9 "$pid"
  other=hv2; [ "$leader" = hv2 ] && other=hv3
  t0=$(date +%s.%N)
  until wyvern "$other" port create --network blue --name vm4 -o json >/dev/null 2>&1; do sleep 0.1; done
  printf 'a port created through %s %.1f s after the kill\n' "$other" "$(python3 -c "import time; print(time.time() - $t0)")"
  wyvern "$other" cluster status
  echo "flows on $leader's br-int while its controller is dead: $("${OFCTL[@]}" dump-flows --no-stats "$RUN/$leader/br-int.mgmt" | grep -c cookie) (fail_mode=secure keeps them)"
  start_wyvernd "$leader"
  wait_for 30 "$leader to rejoin" healthy "$leader"
  echo "$leader restarted from its data directory and caught up:"
  wyvern "$leader" port list --filter name=vm4

  say "Running. What is here and what is not yet"
  echo "  Here: the raft cluster, the Neutron-shaped API and CLI, the OpenFlow pipeline on every bridge."
  echo "  Not yet: VM ports bound to chassis, tunnels and L2 population, so no VM traffic; they come next."
  echo "Poke at it:"
  echo "  ip netns exec wyv-hv1 bin/wyvern --api http://172.31.0.1:9696 port list"
  echo "  ovs-ofctl -O OpenFlow15 dump-flows --names $d/br-int.mgmt"
  echo "  less $d/wyvernd.log"
  echo "Stop it with: make demo-stop"
}

case "${1:-start}" in
  start) start ;;
  stop) stop; echo "demo stopped" ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
