package view

// Who claims which address and MAC of a network: the ports' addresses and
// MACs as the pipeline sees them, and the per-network indexes of them.

import (
	"bytes"
	"net"
	"net/netip"
	"slices"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// with is a copy of sorted keys with k in it.
func with(keys []uint32, k uint32) []uint32 {
	i, ok := slices.BinarySearch(keys, k)
	if ok {
		return keys
	}
	return slices.Insert(slices.Clone(keys), i, k)
}

// without is a copy of sorted keys without k.
func without(keys []uint32, k uint32) []uint32 {
	i, ok := slices.BinarySearch(keys, k)
	if !ok {
		return keys
	}
	return slices.Delete(slices.Clone(keys), i, i+1)
}

// Addresses are the addresses a port answers for, each once: its fixed
// IPs and its single-address pairs.
func (p Port) Addresses() []netip.Addr {
	var out []netip.Addr
	for _, f := range p.FixedIPs {
		if !slices.Contains(out, f.Addr) {
			out = append(out, f.Addr)
		}
	}
	for _, ap := range p.Pairs {
		if a := ap.Prefix.Addr(); ap.Single && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// MACs are the MACs a port answers for, each once: its own, then its
// pairs'.
func (p Port) MACs() []net.HardwareAddr {
	out := []net.HardwareAddr{p.MAC}
	for _, ap := range p.Pairs {
		if !slices.ContainsFunc(out, func(m net.HardwareAddr) bool { return bytes.Equal(m, ap.MAC) }) {
			out = append(out, ap.MAC)
		}
	}
	return out
}

// claimedAddrs are the addresses a port claims in its network's index:
// none for a router interface (its gateway is the router's).
func claimedAddrs(p *Port) []netip.Addr {
	if p.DeviceOwner == topology.OwnerRouterInterface {
		return nil
	}
	return p.Addresses()
}

// indexClaims records the addresses and MACs a port claims, each once.
func (v *View) indexClaims(p *Port) {
	macs, addrs := v.macClaims.get(p.NetworkID), v.addrClaims.get(p.NetworkID)
	if macs == nil {
		macs, addrs = map[string][]uint32{}, map[netip.Addr][]uint32{}
		v.macClaims.set(p.NetworkID, macs)
		v.addrClaims.set(p.NetworkID, addrs)
	}
	for _, m := range p.MACs() {
		macs[string(m)] = append(macs[string(m)], p.Key)
	}
	for _, a := range claimedAddrs(p) {
		addrs[a] = append(addrs[a], p.Key)
	}
}

// AddressClaims are the keys of the ports of a network (router interfaces
// aside) that claim an address — a fixed IP or a single-address pair —
// plugged or not, in key order.
func (v *View) AddressClaims(network string, ip netip.Addr) []uint32 {
	return v.addrClaims.get(network)[ip]
}

// MACClaims are the keys of the ports of a network (router interfaces
// included) whose own MAC or a pair's MAC is mac, plugged or not, in key
// order.
func (v *View) MACClaims(network string, mac net.HardwareAddr) []uint32 {
	return v.macClaims.get(network)[string(mac)]
}
