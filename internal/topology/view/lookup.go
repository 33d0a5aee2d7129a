package view

import (
	"bytes"
	"cmp"
	"net"
	"net/netip"
	"slices"
)

// Index is the raft index of the last command the view's store applied.
func (v *View) Index() uint64 { return v.index }

// Network returns a network by id.
func (v *View) Network(id string) (Network, bool) {
	n, ok := v.networks[id]
	return n, ok
}

// NetworkByKey returns a network by its key (the pipeline's metadata).
func (v *View) NetworkByKey(key uint32) (Network, bool) {
	n, ok := v.netByKey[key]
	return n, ok
}

// Subnet returns a subnet by id.
func (v *View) Subnet(id string) (Subnet, bool) {
	s, ok := v.subnets[id]
	return s, ok
}

// Chassis returns a chassis by name.
func (v *View) Chassis(name string) (Chassis, bool) {
	c, ok := v.chassis[name]
	return c, ok
}

// Router returns a router by id, up or not.
func (v *View) Router(id string) (Router, bool) {
	r, ok := v.routers[id]
	return r, ok
}

// RouterByKey returns a router by its key (the pipeline's RouterKey).
func (v *View) RouterByKey(key uint32) (Router, bool) {
	r, ok := v.rtrByKey[key]
	return r, ok
}

// PortCount is how many ports the view holds.
func (v *View) PortCount() int { return v.ports.len() }

// Port returns any port by id, located or not.
func (v *View) Port(id string) (Port, bool) {
	if p, ok := v.ports.get(id); ok {
		return *p, true
	}
	return Port{}, false
}

// PortByKey returns any port by its key.
func (v *View) PortByKey(key uint32) (Port, bool) {
	if p, ok := v.ports.getKey(key); ok {
		return *p, true
	}
	return Port{}, false
}

// LocatedPort returns a port plugged into a chassis, by id.
func (v *View) LocatedPort(id string) (Port, bool) {
	if p, ok := v.ports.get(id); ok && p.Located() {
		return *p, true
	}
	return Port{}, false
}

// LocatedPortByKey returns a located port by its key (the pipeline's
// register value).
func (v *View) LocatedPortByKey(key uint32) (Port, bool) {
	if p, ok := v.ports.getKey(key); ok && p.Located() {
		return *p, true
	}
	return Port{}, false
}

// NetworkPorts are the located ports of a network, on every chassis, in
// key order. The Ports are the view's: read them, never change them.
func (v *View) NetworkPorts(network string) []*Port { return v.located.get(network) }

// AllNetworkPorts are every port of a network, located or not, router
// interfaces included, in key order (the view's, read only).
func (v *View) AllNetworkPorts(network string) []*Port { return v.netPorts.get(network) }

// PortWithMAC returns the port of a network whose own MAC is mac, located
// or not.
func (v *View) PortWithMAC(network string, mac net.HardwareAddr) (Port, bool) {
	for _, k := range v.macClaims.get(network)[string(mac)] {
		if p, ok := v.ports.getKey(k); ok && bytes.Equal(p.MAC, mac) {
			return *p, true
		}
	}
	return Port{}, false
}

// HostedNetworks are the networks with a port plugged into the chassis,
// in key order.
func (v *View) HostedNetworks(chassis string) []Network { return v.hosted.get(chassis) }

// NetworkHosts are the chassis with a port of the network, by name.
func (v *View) NetworkHosts(network string) []string { return v.hosts.get(network) }

// Hosts reports whether a chassis hosts a network (has a port of it).
func (v *View) Hosts(chassis, network string) bool {
	_, ok := slices.BinarySearch(v.hosts.get(network), chassis)
	return ok
}

// LocalPorts are the ports plugged into the chassis, by network key then
// port key (the view's, read only).
func (v *View) LocalPorts(chassis string) []*Port {
	var out []*Port
	for _, n := range v.hosted.get(chassis) {
		for _, p := range v.located.get(n.ID) {
			if p.Chassis == chassis {
				out = append(out, p)
			}
		}
	}
	return out
}

// NetworkInterfaces are the interfaces of routers that are up on a
// network, in port key order.
func (v *View) NetworkInterfaces(network string) []RouterInterface { return v.ifacesByNet[network] }

// RouterInterfaces are the interfaces of a router that is up, in port key
// order; none for a router that is down.
func (v *View) RouterInterfaces(router string) []RouterInterface { return v.ifacesByRtr[router] }

// ChassisRouters are the routers that are up with an interface on a
// network the chassis hosts: the routers its bridge routes for, in key
// order.
func (v *View) ChassisRouters(chassis string) []Router {
	seen := map[uint32]bool{}
	var out []Router
	for _, n := range v.ServedNetworks(chassis) {
		for _, ri := range v.ifacesByNet[n.ID] {
			if !seen[ri.Router.Key] {
				seen[ri.Router.Key] = true
				out = append(out, ri.Router)
			}
		}
	}
	slices.SortFunc(out, func(a, b Router) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

// RoutesOn reports whether a router has an interface on a network the
// chassis hosts.
func (v *View) RoutesOn(chassis string, router uint32) bool {
	for _, n := range v.ServedNetworks(chassis) {
		for _, ri := range v.ifacesByNet[n.ID] {
			if ri.Router.Key == router {
				return true
			}
		}
	}
	return false
}

// VIPOwner is the port holding a shared address of a network.
func (v *View) VIPOwner(network string, ip netip.Addr) (string, bool) {
	id, ok := v.vipOwners[network][ip]
	return id, ok
}

// ChassisOfDatapath is the chassis whose integration bridge has this
// datapath id.
func (v *View) ChassisOfDatapath(dpid uint64) (Chassis, bool) {
	for _, c := range v.chassis {
		if c.DatapathID == dpid && dpid != 0 {
			return c, true
		}
	}
	return Chassis{}, false
}
