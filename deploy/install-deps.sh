#!/usr/bin/env bash
# Installs what building, testing and the demo need on a fresh Debian
# machine, as root: Open vSwitch, OVN (the peer the benchmarks measure
# against), network tools, and Keystone with the openstack CLI (the tests
# of --auth keystone run them; python3-keystone, not keystone, which
# brings Apache and starts services) and tempest (make conformance) from
# Debian's packages,
# and the Go modules of go.mod. Does nothing that is already there.
set -euo pipefail

need=()
for pair in ovs-vswitchd:openvswitch-switch ovs-ofctl:openvswitch-common ip:iproute2 \
            ping:iputils-ping tcpdump:tcpdump ethtool:ethtool arping:arping \
            ovn-controller:ovn-host ovn-northd:ovn-central \
            keystone-manage:python3-keystone openstack:python3-openstackclient \
            tempest:python3-tempest \
            busybox:busybox dhclient:isc-dhcp-client dig:dnsutils ss:iproute2 \
            ovs-testcontroller:openvswitch-testcontroller; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing ${need[*]}; run as root or: apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  echo "install-deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    export PATH=$PATH:/usr/local/go/bin
  else
    echo "install-deps: Go 1.26 is required (go.mod); install it to /usr/local/go" >&2
    exit 1
  fi
fi
go mod download
