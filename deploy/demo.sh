#!/usr/bin/env bash
# The Wyvern demo: three simulated hypervisors (network namespaces, each
# with its own ovsdb-server and ovs-vswitchd on the userspace datapath),
# joined by an underlay segment; one wyvernd per hypervisor, embedded next
# to its OVS and managing it, the three forming one raft cluster; networks
# created through the API with the wyvern CLI; VMs (namespaces) pinging
# over VXLAN and GRE, and through a distributed router between the two;
# north-south: each hypervisor's br-ex uplinked to a physical network (a
# Linux bridge in a namespace of its own, with an outside router and an
# "internet" host behind it), the router's SNAT on a gateway chassis and
# a floating IP served on its VM's own chassis; and the cluster riding
# out the loss of its leader.
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
PHYS=wyv-phys      # the physical network outside the cloud: one Linux bridge
OUTSIDE=wyv-out    # the outside router: 203.0.113.1 on the physical network
INTERNET=wyv-inet  # the internet behind it: one host, 198.51.100.10
GATEWAY_HV=hv3     # the gateway chassis (--gateway): it hosts routers' SNAT

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
  for vm in vm1 vm2 vm3 vm4; do ip netns del "wyv-$vm" 2>/dev/null || true; done
  for hv in "${HVS[@]}"; do
    d=$RUN/$hv
    stop_pidfile "$d/wyvernd.pid"
    stop_pidfile "$d/vs.pid"
    stop_pidfile "$d/db.pid"
    ip netns del "wyv-$hv" 2>/dev/null || true
  done
  ip netns del "$UNDERLAY" 2>/dev/null || true
  for ns in "$INTERNET" "$OUTSIDE" "$PHYS"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$RUN"
}

wait_for() { # wait_for SECONDS WHAT COMMAND...
  local secs=$1 what=$2; shift 2
  for _ in $(seq $((secs * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "demo: timed out waiting for $what" >&2
  return 1
}

# The underlay: a Linux bridge in a namespace of its own, one veth to each
# hypervisor's br-phy (an OVS bridge, as userspace tunnelling wants the
# endpoint address on one), 172.31.0.N on hvN.
start_underlay() {
  ip netns add "$UNDERLAY"
  ip -n "$UNDERLAY" link add br0 type bridge
  ip -n "$UNDERLAY" link set br0 up
}

# The physical network: a Linux bridge in a namespace of its own (the
# external network is flat, untagged, so no VLAN-aware switch is needed),
# which each hypervisor's br-ex joins by a veth uplink. IPv6 is off in
# every namespace of the physical world, so that captures there show only
# what the demo sends (no router solicitations, MLD or DAD).
start_physical() {
  ip netns add "$PHYS"
  ip netns exec "$PHYS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$PHYS" link add br0 type bridge
  ip -n "$PHYS" link set br0 up
}

# veth_ready NS IF: a veth end up, with transmit checksum offload off (a
# veth leaves checksums to the receiver, and packets that cross OVS's
# userspace datapath arrive with them unfilled: TCP would fail).
veth_ready() {
  ip netns exec "$1" ethtool -K "$2" tx off >/dev/null
  ip -n "$1" link set "$2" up
}

# start_outside: the outside router, one leg (eth0) on the physical
# network at 203.0.113.1, the next hop out of the external network, the
# other (up0) towards the internet host at 198.51.100.10, whose default
# route it is. It knows no route to the cloud's private networks: what
# reaches the internet from a VM must come out of the cloud already
# translated to an address of 203.0.113.0/24.
start_outside() {
  local ns
  for ns in "$OUTSIDE" "$INTERNET"; do
    ip netns add "$ns"
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
  done
  ip link add eth0 netns "$OUTSIDE" type veth peer name out netns "$PHYS"
  ip -n "$PHYS" link set out master br0
  veth_ready "$PHYS" out
  veth_ready "$OUTSIDE" eth0
  ip -n "$OUTSIDE" addr add 203.0.113.1/24 dev eth0
  ip link add up0 netns "$OUTSIDE" type veth peer name eth0 netns "$INTERNET"
  veth_ready "$OUTSIDE" up0
  ip -n "$OUTSIDE" addr add 198.51.100.1/24 dev up0
  ip netns exec "$OUTSIDE" sysctl -qw net.ipv4.ip_forward=1
  veth_ready "$INTERNET" eth0
  ip -n "$INTERNET" addr add 198.51.100.10/24 dev eth0
  ip -n "$INTERNET" route add default via 198.51.100.1
}

# start_wyvernd HV [ARGS...]: runs wyvernd in HV's namespace, managing the
# hypervisor's OVS through OVSDB. Called directly (not through a shell
# function) so that $! is wyvernd's own pid: ip netns exec replaces itself.
# Every chassis maps physnet1 to its br-ex; the gateway chassis also has
# --gateway. The flags live here, not at the callers, so that the leader
# restarted after the kill below comes back as the same chassis.
start_wyvernd() {
  local hv=$1 d=$RUN/$1; shift
  local chassis=(--bridge-mappings physnet1:br-ex)
  if [ "$hv" = "$GATEWAY_HV" ]; then chassis+=(--gateway); fi
  ip netns exec "wyv-$hv" bin/wyvernd --node-id "$hv" --data-dir "$d/data" \
    --raft-addr "$(ip_of "$hv"):7946" --api-addr "$(ip_of "$hv"):9696" \
    --openflow-addr tcp:127.0.0.1:6653 --ovsdb "unix:$d/db.sock" --encap-ip "$(ip_of "$hv")" \
    --datapath-type netdev "${chassis[@]}" "$@" >>"$d/wyvernd.log" 2>&1 &
  echo $! >"$d/wyvernd.pid"
}

# json FIELD...: a field of the JSON object on stdin (nested by the path).
json() { python3 -c 'import json,sys
v=json.load(sys.stdin)
for k in sys.argv[1:]: v=v[int(k)] if isinstance(v,list) else v[k]
print(v if isinstance(v,str) else json.dumps(v))' "$@"; }

# learned_on MAC: the port of wyv-phys's bridge that MAC was learned on
# (upN is hvN's uplink): which hypervisor put the frame on the wire.
learned_on() { ip netns exec "$PHYS" bridge fdb show br br0 | awk -v m="$1" '$1 == m && $2 == "dev" {print $3; exit}'; }

# capture_outside FILE: tcpdump -e -nn of ICMP on the outside router's
# leg on the physical network, into FILE, until six packets (three pings
# and their answers) or 8 s; its pid in tcpdump_pid. Printed afterwards
# rather than live, so that it does not interleave with ping's output.
capture_outside() {
  timeout 8 ip netns exec "$OUTSIDE" tcpdump -i eth0 -e -nn -l -c 6 icmp >"$1" 2>/dev/null &
  tcpdump_pid=$!
  sleep 1
}

# neighbour_mac IP: the MAC the outside router has for IP.
neighbour_mac() { ip -n "$OUTSIDE" neigh show to "$1" dev eth0 | awk '{for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1)}'; }

healthy() { in_hv "$1" bash -c "exec 3<>/dev/tcp/$(ip_of "$1")/9696 && printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3 && head -1 <&3 | grep -q 200"; }

# start_hypervisor NAME: namespace, OVS with br-phy on the underlay and
# br-ex on the physical network, wyvernd. wyvernd creates br-int, its
# controller and tunnel ports itself, and patches br-int to br-ex; br-ex,
# like a real hypervisor's, is the operator's and must exist first (else
# wyvernd retries every few seconds until it does).
start_hypervisor() {
  local hv=$1 d=$RUN/$1 ns=wyv-$1 n=${1#hv}
  mkdir -p "$d"
  ip netns add "$ns"
  in_hv "$hv" ip link set lo up
  ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" --pidfile="$d/db.pid" --detach \
    --log-file="$d/db.log" --unixctl="$d/db.ctl" 2>>"$d/start.log"
  ovs-vsctl --db="unix:$d/db.sock" --no-wait init
  in_hv "$hv" env OVS_RUNDIR="$d" ovs-vswitchd "unix:$d/db.sock" --pidfile="$d/vs.pid" \
    --detach --log-file="$d/vs.log" --unixctl="$d/vs.ctl" 2>>"$d/start.log"

  ip link add "u$n" netns "$ns" type veth peer name "p$n" netns "$UNDERLAY"
  ip -n "$UNDERLAY" link set "p$n" master br0 up
  in_hv "$hv" ip link set "u$n" arp off up   # br-phy owns the uplink; the kernel must not answer ARP on it
  ovs-vsctl --db="unix:$d/db.sock" add-br br-phy -- set bridge br-phy datapath_type=netdev -- add-port br-phy "u$n"
  in_hv "$hv" ip addr add "$(ip_of "$hv")/24" dev br-phy
  in_hv "$hv" ip link set br-phy up

  # br-ex: standalone (forwarding NORMAL, as an operator's bridge does),
  # its uplink exN a port of the physical network's bridge (upN there).
  ip link add "ex$n" netns "$ns" type veth peer name "up$n" netns "$PHYS"
  ip -n "$PHYS" link set "up$n" master br0
  veth_ready "$PHYS" "up$n"
  in_hv "$hv" sysctl -qw "net.ipv6.conf.ex$n.disable_ipv6=1"
  in_hv "$hv" ip link set "ex$n" arp off     # br-ex owns the uplink, as br-phy does u$n
  veth_ready "$ns" "ex$n"
  ovs-vsctl --db="unix:$d/db.sock" add-br br-ex -- set bridge br-ex datapath_type=netdev fail_mode=standalone \
    -- add-port br-ex "ex$n"

  local join=()
  if [ "$hv" != hv1 ]; then
    join=(--join "http://$(ip_of hv1):9696")
  fi
  start_wyvernd "$hv" "${join[@]}"
  wait_for 30 "wyvernd on $hv to be ready" healthy "$hv"
}

# plug_vm VM HV PORT: a VM namespace whose eth0 is plugged into HV's br-int
# as the logical port PORT (external_ids:iface-id), with the port's MAC;
# its address, mask, MTU and routes come from Wyvern's DHCP, asked by
# busybox udhcpc.
plug_vm() {
  local vm=$1 hv=$2 port=$3 d=$RUN/$2 n=${1#vm}
  local json mac id
  json=$(wyvern hv1 port show "$port" -o json)
  mac=$(echo "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["mac_address"])')
  id=$(echo "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  ip netns add "wyv-$vm"
  ip link add "tap$n" netns "wyv-$hv" type veth peer name eth0 netns "wyv-$vm"
  ip -n "wyv-$vm" link set lo up
  ip -n "wyv-$vm" link set eth0 address "$mac"
  ip -n "wyv-$vm" link set eth0 up
  ip netns exec "wyv-$vm" ethtool -K eth0 tx off >/dev/null 2>&1 || true
  in_hv "$hv" ip link set "tap$n" up
  ovs-vsctl --db="unix:$d/db.sock" add-port br-int "tap$n" -- set interface "tap$n" "external_ids:iface-id=$id"
  cat > "$RUN/udhcpc.sh" <<'SCRIPT'
#!/bin/sh
case "$1" in
bound|renew)
  ip addr flush dev "$interface"
  ip addr add "$ip/$mask" dev "$interface"
  [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
  set -- $staticroutes
  while [ $# -ge 2 ]; do ip route replace "$1" via "$2" dev "$interface"; shift 2; done
  echo "  lease: $ip/$mask, mtu $mtu, routes: $staticroutes, dns: $dns"
  ;;
esac
SCRIPT
  chmod +x "$RUN/udhcpc.sh"
  echo "$vm ($mac) plugged into $hv; DHCP:"
  ip netns exec "wyv-$vm" busybox udhcpc -i eth0 -q -n -t 10 -T 1 -s "$RUN/udhcpc.sh" 2>&1 | sed 's/^/  /'
}

start() {
  [ "$(id -u)" = 0 ] || { echo "demo: run as root (network namespaces)"; exit 1; }
  [ -x bin/wyvernd ] && [ -x bin/wyvern ] || { echo "demo: build first (make demo does)"; exit 1; }
  stop
  say "Three hypervisors (namespaces wyv-hv1..3) on an underlay 172.31.0.0/24, each with OVS (userspace datapath) and an embedded wyvernd; each br-ex uplinked to a physical network (wyv-phys), $GATEWAY_HV the gateway chassis"
  start_underlay
  start_physical
  for hv in "${HVS[@]}"; do start_hypervisor "$hv"; done

  say "wyvern cluster status   (hv1 bootstrapped; hv2 and hv3 joined through hv1's API)"
  wyvern hv3 cluster status

  say "A topology through the API (sent to hv2 and hv3; followers forward writes to the leader)"
  wyvern hv2 network create blue -o json >/dev/null
  wyvern hv3 network create red --type gre -o json >/dev/null
  wyvern hv2 subnet create --network blue --cidr 10.1.0.0/24 --name blue-v4 -o json >/dev/null
  wyvern hv3 subnet create --network red --cidr 10.2.0.0/24 --name red-v4 -o json >/dev/null
  wyvern hv2 port create --network blue --name vm1 -o json >/dev/null
  wyvern hv3 port create --network blue --name vm2 -o json >/dev/null
  wyvern hv2 port create --network red --name vm3 -o json >/dev/null
  wyvern hv3 port create --network red --name vm4 --fixed-ip subnet=red-v4,ip=10.2.0.40 -o json >/dev/null
  echo "\$ wyvern network list"; wyvern hv1 network list

  say "VMs: namespaces plugged into br-int with external_ids:iface-id (vm1, vm3 on hv1; vm2 on hv2; vm4 on hv3); each asks DHCP, answered by its own chassis"
  plug_vm vm1 hv1 vm1; plug_vm vm2 hv2 vm2; plug_vm vm3 hv1 vm3; plug_vm vm4 hv3 vm4
  all_active() { [ "$(wyvern hv1 port list --filter status=ACTIVE -o json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 4 ]; }
  wait_for 30 "the four ports to turn ACTIVE" all_active
  echo "\$ wyvern port list   (bound by the chassis agents; ACTIVE once their bridge holds the flows)"; wyvern hv1 port list

  say "vm1 (hv1) pings vm2 (hv2) over VXLAN"
  ip netns exec wyv-vm1 ping -c 3 -i 0.3 "$(wyvern hv1 port show vm2 -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fixed_ips"][0]["ip_address"])')"
  say "vm3 (hv1) pings vm4 (hv3) over GRE"
  ip netns exec wyv-vm3 ping -c 3 -i 0.3 10.2.0.40

  d=$RUN/hv1
  OFCTL=(ovs-ofctl -O OpenFlow15)
  say "A distributed router r1 between blue (VXLAN) and red (GRE); its interfaces hold the gateways"
  wyvern hv2 router create r1 -o json >/dev/null
  wyvern hv2 router add-interface r1 blue-v4 >/dev/null
  wyvern hv3 router add-interface r1 red-v4 >/dev/null
  echo "\$ wyvern port list --filter device_owner=network:router_interface_distributed"
  wyvern hv1 port list --filter device_owner=network:router_interface_distributed
  echo "\$ wyvern chassis list   (each chassis has a DVR MAC of its own)"
  wyvern hv1 chassis list
  routes_on_hv1() { "${OFCTL[@]}" dump-flows --no-stats --names "$d/br-int.mgmt" | grep -q 'goto_table:L3Lookup'; }
  wait_for 20 "r1's MACs on hv1's bridge" routes_on_hv1

  say "vm1 (blue, hv1) pings vm4 (red, hv3) through r1: routed on hv1 itself, tunnelled straight to hv3"
  echo "tcpdump on hv3's uplink: the inner source is the sending chassis' DVR MAC, never r1's MAC"
  timeout 5 ip netns exec "$UNDERLAY" tcpdump -i p3 -e -nn -l -c 2 'proto gre or udp port 4789' 2>/dev/null &
  tcpdump_pid=$!
  sleep 1
  ip netns exec wyv-vm1 ping -c 3 -i 0.3 10.2.0.40
  wait "$tcpdump_pid" || true
  say "TTL 1 through r1 is answered by the router (ICMP time exceeded from blue's gateway)"
  ip netns exec wyv-vm1 ping -c 1 -W 2 -t 1 10.2.0.40 || true
  say "vm4 (red: GRE, MTU 1458) sends vm1 (blue: VXLAN, MTU 1450) a 1458-byte packet: r1 answers fragmentation needed"
  ip netns exec wyv-vm4 ping -c 1 -W 2 -M do -s 1430 "$(wyvern hv1 port show vm1 -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fixed_ips"][0]["ip_address"])')" || true

  say "North-south. The physical world: hvN's br-ex uplinked (upN) to a Linux bridge in wyv-phys; on it the outside router (wyv-out: 203.0.113.1, and 198.51.100.1 towards wyv-inet, the internet host 198.51.100.10)"
  start_outside
  echo "\$ ip -n wyv-phys link show master br0"
  ip -n "$PHYS" -br link show master br0
  # Patched: br-ex holds a port besides its uplink exN (wyvernd's patch).
  patched() { local h; for h in "${HVS[@]}"; do ovs-vsctl --db="unix:$RUN/$h/db.sock" list-ports br-ex | grep -qv "^ex${h#hv}\$" || return 1; done; }
  wait_for 20 "br-int patched to br-ex on every hypervisor" patched
  echo "\$ wyvern chassis list -o json   (bridge mappings and the gateway chassis, as each wyvernd registered them)"
  wyvern hv1 chassis list -o json | python3 -c 'import json,sys
for c in json.load(sys.stdin): print("  %s  dvr_mac %s  bridge_mappings %s  gateway %s" % (c["node_id"], c["dvr_mac"],
  ",".join("%s:%s" % m for m in (c.get("bridge_mappings") or {}).items()), str(c.get("gateway", False)).lower()))'

  say "An external flat network 'public' on physnet1, its subnet 203.0.113.0/24 (the outside router its gateway, no DHCP), and r1's gateway on it"
  echo "\$ wyvern network create public --type flat --physical-network physnet1 --external"
  wyvern hv1 network create public --type flat --physical-network physnet1 --external
  # Nothing on the external network asks Wyvern for DHCP.
  echo "\$ wyvern subnet create --network public --cidr 203.0.113.0/24 --gateway 203.0.113.1 --dhcp=false --name public-v4"
  wyvern hv1 subnet create --network public --cidr 203.0.113.0/24 --gateway 203.0.113.1 --dhcp=false --name public-v4
  echo "\$ wyvern router set-gateway r1 public"
  wyvern hv1 router set-gateway r1 public -o json >/dev/null
  echo "\$ wyvern router show r1 -o json   (its external_gateway_info)"
  gateway_info=$(wyvern hv1 router show r1 -o json | json external_gateway_info)
  echo "$gateway_info" | python3 -m json.tool
  gw_ip=$(echo "$gateway_info" | json external_fixed_ips 0 ip_address)

  say "vm1 (blue, hv1; no floating IP) pings the internet host: SNAT to r1's gateway address $gw_ip, on the gateway chassis $GATEWAY_HV"
  vm1_ip=$(wyvern hv1 port show vm1 -o json | json fixed_ips 0 ip_address)
  capture_outside "$RUN/snat.txt"
  ip netns exec wyv-vm1 ping -c 3 -i 0.3 198.51.100.10
  wait "$tcpdump_pid" || true
  echo "tcpdump -e -nn in wyv-out on eth0 (its leg on the physical network): the source is $gw_ip, not vm1's $vm1_ip"
  cat "$RUN/snat.txt"
  snat_mac=$(awk -v ip="$gw_ip" '$0 ~ ip" > 198.51.100.10" {print $2; exit}' "$RUN/snat.txt")
  [ -n "$snat_mac" ] || { echo "demo: no translated packet seen in wyv-out"; exit 1; }
  echo "\$ wyvern port list --filter device_owner=network:router_gateway   ($snat_mac is r1's gateway port)"
  wyvern hv1 port list --filter device_owner=network:router_gateway
  echo "\$ ip netns exec wyv-phys bridge fdb show br br0 | grep $snat_mac   (learned on up${GATEWAY_HV#hv}: $GATEWAY_HV's uplink put it on the wire)"
  ip netns exec "$PHYS" bridge fdb show br br0 | grep "^$snat_mac "
  [ "$(learned_on "$snat_mac")" = "up${GATEWAY_HV#hv}" ] || { echo "demo: the translated frames did not come from $GATEWAY_HV"; exit 1; }

  say "A floating IP for vm2 (blue, hv2): served on hv2 itself, not on the gateway chassis"
  echo "\$ wyvern floatingip create public --port vm2"
  wyvern hv1 floatingip create public --port vm2
  fip=$(wyvern hv1 floatingip list -o json | json 0 floating_ip_address)
  hv2_mac=$(wyvern hv1 chassis list -o json | python3 -c 'import json,sys; print([c["dvr_mac"] for c in json.load(sys.stdin) if c["node_id"] == "hv2"][0])')
  echo "vm2's port is in its project's default security group, which admits its own members only: the outside is let in to ping it"
  echo "\$ wyvern security-group add-rule default --protocol icmp --remote-ip 0.0.0.0/0"
  wyvern hv1 security-group add-rule default --protocol icmp --remote-ip 0.0.0.0/0 -o json >/dev/null
  wait_for 10 "the rule on hv2's bridge" ip netns exec "$INTERNET" ping -c 1 -W 1 "$fip"
  echo "the internet host (wyv-inet) pings the floating IP $fip"
  capture_outside "$RUN/fip.txt"
  ip netns exec "$INTERNET" ping -c 3 -i 0.3 "$fip"
  wait "$tcpdump_pid" || true
  echo "tcpdump -e -nn in wyv-out on eth0: to and from hv2's DVR MAC $hv2_mac; vm2's own $(wyvern hv1 port show vm2 -o json | json fixed_ips 0 ip_address) never on the wire"
  cat "$RUN/fip.txt"
  echo "\$ ip -n wyv-out neigh   ($fip at hv2's DVR MAC: hv2 answered the ARP for it; $gw_ip, r1's SNAT address, at its gateway port on $GATEWAY_HV)"
  ip -n "$OUTSIDE" neigh show dev eth0
  echo "\$ wyvern chassis list"
  wyvern hv1 chassis list
  [ "$(neighbour_mac "$fip")" = "$hv2_mac" ] || { echo "demo: wyv-out does not have $fip at hv2's DVR MAC $hv2_mac"; exit 1; }

  say "ovs-vsctl show on hv1: br-int made by wyvernd, one flow-based tunnel port per encapsulation, patched to the operator's br-ex"
  ovs-vsctl --db="unix:$d/db.sock" show
  say "The pipeline on hv1's br-int, tables by name; idle_timeout flows were installed by punts: ovs-ofctl -O OpenFlow15 dump-flows --no-stats --names br-int"
  "${OFCTL[@]}" dump-flows --no-stats --names "$d/br-int.mgmt"

  say "Metrics after that traffic: hv1's debug listener (127.0.0.1:9697 in wyv-hv1), Prometheus' format; deploy/grafana/wyvern-dashboard.json charts them"
  echo "\$ curl -s http://127.0.0.1:9697/metrics | grep -E '^wyvern_(raft_term|raft_commit_index|raft_leader_changes|api_requests_total|reconciler_bundles_total|bridge_flows|punt_received_total|punt_answer_seconds_count|ovsdb_monitors)'"
  in_hv hv1 curl -s http://127.0.0.1:9697/metrics >"$RUN/metrics.txt"
  grep -E '^wyvern_(raft_term|raft_commit_index|raft_leader_changes|api_requests_total\{route="POST|reconciler_bundles_total|bridge_flows|punt_received_total|punt_answer_seconds_count|ovsdb_monitors)' "$RUN/metrics.txt" | head -40
  for family in wyvern_raft_term wyvern_api_requests_total wyvern_reconciler_bundles_total wyvern_punt_received_total wyvern_ovsdb_monitors; do
    awk -v f="$family" '$1 ~ "^"f"([{]|$)" && $NF > 0 {found=1} END {exit !found}' "$RUN/metrics.txt" || { echo "demo: $family has no non-zero sample"; exit 1; }
  done

  say "Kill the leader's wyvernd (SIGKILL): the cluster elects another and keeps taking writes"
  leader=$(wyvern hv2 cluster status -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"])')
  echo "leader is $leader; killing it"
  pid=$(cat "$RUN/$leader/wyvernd.pid")
  [ "$(cat /proc/"$pid"/comm)" = wyvernd ] || { echo "demo: pid $pid is not wyvernd"; exit 1; }
  kill -9 "$pid"
  other=hv2; [ "$leader" = hv2 ] && other=hv3
  t0=$(date +%s.%N)
  until wyvern "$other" port create --network blue --name vm5 -o json >/dev/null 2>&1; do sleep 0.1; done
  printf 'a port created through %s %.1f s after the kill\n' "$other" "$(python3 -c "import time; print(time.time() - $t0)")"
  wyvern "$other" cluster status
  echo "flows on $leader's br-int while its controller is dead: $("${OFCTL[@]}" dump-flows --no-stats "$RUN/$leader/br-int.mgmt" | grep -c cookie) (fail_mode=secure keeps them)"
  start_wyvernd "$leader"
  wait_for 30 "$leader to rejoin" healthy "$leader"
  echo "$leader restarted from its data directory and caught up; vm1 still reaches vm2:"
  ip netns exec wyv-vm1 ping -c 2 -i 0.3 "$(wyvern hv1 port show vm2 -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fixed_ips"][0]["ip_address"])')"
  echo "and the internet host still reaches vm2 at its floating IP:"
  ip netns exec "$INTERNET" ping -c 2 -i 0.3 "$fip"

  say "Running. What is here and what is not yet"
  echo "  Here: the raft cluster, the API and CLI, chassis agents, VXLAN/GRE steering, L2 population,"
  echo "  reactive forwarding (first packets punted, answered, re-injected), ARP answered by OVS, port"
  echo "  security, VIPs that follow gratuitous ARP, punts metered per port in OVS, distributed east-west"
  echo "  routing with per-chassis DVR MACs; native DHCP and internal DNS answered on each VM's own chassis;"
  echo "  north-south: flat and vlan provider networks on bridge mappings, routers' SNAT on a gateway chassis,"
  echo "  floating IPs (and port forwardings) served on their VM's own chassis; security groups, a stateful"
  echo "  firewall per port in conntrack (every VM here is in its project's default group);"
  echo "  Keystone tokens and project scope, TLS on the API, raft and"
  echo "  OpenFlow, a cluster secret (this lab runs --auth none without them: docs/operations.md,"
  echo "  \"Securing a cluster\")."
  echo "Poke at it:"
  echo "  ip netns exec wyv-hv1 bin/wyvern --api http://172.31.0.1:9696 port list"
  echo "  ip netns exec wyv-inet ping $fip   (vm2's floating IP)"
  echo "  ovs-ofctl -O OpenFlow15 dump-flows --names $d/br-int.mgmt"
  echo "  less $d/wyvernd.log"
  echo "Stop it with: make demo-stop"
}

case "${1:-start}" in
  start) start ;;
  stop) stop; echo "demo stopped" ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
