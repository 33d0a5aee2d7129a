package app

import (
	"bytes"
	"maps"
	"slices"

	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// What the apps' Affects share: reading a batch of changes against the
// views before and after it.

// PortChange is a port as two views hold it; a side is absent when the
// port did not exist there.
type PortChange struct {
	Before, After     view.Port
	InBefore, InAfter bool
}

// Ports are the ports a batch of changes names (ports and VIP holders),
// each once, leaving out those whose changes no flow can see: status,
// names, revision.
func Ports(before, after *view.View, changes []topology.Change) []PortChange {
	seen := map[string]bool{}
	var out []PortChange
	for _, ch := range changes {
		if ch.Resource != topology.ResourcePort && ch.Resource != topology.ResourceVIP || seen[ch.ID] {
			continue
		}
		seen[ch.ID] = true
		var pc PortChange
		pc.Before, pc.InBefore = before.Port(ch.ID)
		pc.After, pc.InAfter = after.Port(ch.ID)
		if ch.Resource == topology.ResourcePort && pc.InBefore && pc.InAfter && !FlowsSee(pc.Before, pc.After) {
			continue
		}
		if pc.InBefore || pc.InAfter {
			out = append(out, pc)
		}
	}
	return out
}

// FlowsSee reports whether two versions of a port differ in anything a
// flow of any app can depend on.
func FlowsSee(a, b view.Port) bool {
	return a.Chassis != b.Chassis || a.OFPort != b.OFPort || !bytes.Equal(a.MAC, b.MAC) ||
		a.NetworkID != b.NetworkID || a.PortSecurity != b.PortSecurity || a.DeviceOwner != b.DeviceOwner ||
		a.DeviceID != b.DeviceID || !slices.Equal(a.FixedIPs, b.FixedIPs) || !slices.Equal(a.DHCPOpts, b.DHCPOpts) ||
		!slices.EqualFunc(a.Pairs, b.Pairs, func(x, y view.Pair) bool {
			return x.Prefix == y.Prefix && x.Single == y.Single && bytes.Equal(x.MAC, y.MAC)
		}) || !slices.Equal(a.SecurityGroups, b.SecurityGroups)
}

// Sides are the views a change has a side in, with the port as each
// holds it.
func (pc PortChange) Sides(before, after *view.View) []Side {
	var out []Side
	if pc.InBefore {
		out = append(out, Side{before, pc.Before})
	}
	if pc.InAfter {
		out = append(out, Side{after, pc.After})
	}
	return out
}

// Side is one view and a port as that view holds it.
type Side struct {
	View *view.View
	Port view.Port
}

// HostingChanged are the networks a chassis started or stopped hosting
// between two views.
func HostingChanged(before, after *view.View, chassis string) []string {
	b, a := before.HostedNetworks(chassis), after.HostedNetworks(chassis)
	in := func(ns []view.Network, id string) bool {
		return slices.ContainsFunc(ns, func(n view.Network) bool { return n.ID == id })
	}
	var out []string
	for _, n := range b {
		if !in(a, n.ID) {
			out = append(out, n.ID)
		}
	}
	for _, n := range a {
		if !in(b, n.ID) {
			out = append(out, n.ID)
		}
	}
	return out
}

// ServingChanged reports whether the networks a chassis serves
// (view.ServedNetworks: those it hosts, and those it serves north-south)
// differ between two views: what routers it routes for may have changed.
func ServingChanged(before, after *view.View, chassis string) bool {
	return !slices.EqualFunc(before.ServedNetworks(chassis), after.ServedNetworks(chassis),
		func(a, b view.Network) bool { return a.Key == b.Key })
}

// AddNetwork puts in objs every object of a network as a view holds it:
// the network, each of its ports (plugged or not, router interfaces
// included) and each router with an interface on it.
func AddNetwork(objs Objects, v *view.View, network string) {
	if n, ok := v.Network(network); ok {
		objs.Add(pipeline.NetworkObject(n.Key))
	}
	for _, p := range v.AllNetworkPorts(network) {
		objs.Add(pipeline.PortObject(p.Key))
	}
	for _, ri := range v.NetworkInterfaces(network) {
		objs.Add(pipeline.RouterObject(ri.Router.Key))
	}
}

// AddHosting puts in objs, from both views, every object of each network
// a chassis starts or stops hosting (AddNetwork), and reports whether
// there was any: with the first network, an app's base flows may come or
// go too.
func AddHosting(objs Objects, before, after *view.View, chassis string) bool {
	hosting := HostingChanged(before, after, chassis)
	for _, n := range hosting {
		for _, v := range []*view.View{before, after} {
			AddNetwork(objs, v, n)
		}
	}
	return len(hosting) > 0
}

// AddRouter puts in objs, as a view holds them, a router and every
// object of every network it has an interface on.
func AddRouter(objs Objects, v *view.View, router string) {
	if r, ok := v.Router(router); ok {
		objs.Add(pipeline.RouterObject(r.Key))
	}
	for _, ri := range v.RouterInterfaces(router) {
		AddNetwork(objs, v, ri.Network.ID)
	}
}

// AddRouters puts in objs, from both views, each router a batch of
// changes names, with the objects of its networks (AddRouter), and
// reports whether there was any.
func AddRouters(objs Objects, before, after *view.View, changes []topology.Change) bool {
	found := false
	for _, ch := range changes {
		if ch.Resource != topology.ResourceRouter {
			continue
		}
		found = true
		for _, v := range []*view.View{before, after} {
			AddRouter(objs, v, ch.ID)
		}
	}
	return found
}

// AddSharing puts in objs the ports of p's network, as a view holds it,
// that claim any address or MAC p claims: whose flows may change when p's
// claims come or go (an address or MAC shared or given up changes hands).
// Router interfaces count: their MAC and gateway are claims too. It costs
// p's claims, not the network (the view indexes who claims what).
func AddSharing(objs Objects, v *view.View, p view.Port) {
	addrs, macs := p.Addresses(), p.MACs()
	for _, a := range addrs {
		for _, k := range v.AddressClaims(p.NetworkID, a) {
			objs.Add(pipeline.PortObject(k))
		}
	}
	for _, m := range macs {
		for _, k := range v.MACClaims(p.NetworkID, m) {
			objs.Add(pipeline.PortObject(k))
		}
	}
	for _, ri := range v.NetworkInterfaces(p.NetworkID) {
		if slices.Contains(addrs, ri.IP) {
			objs.Add(pipeline.PortObject(ri.Port.Key))
		}
	}
}

// EndpointChanged reports whether a chassis' tunnel endpoint (address or
// encapsulations) differs between two views.
func EndpointChanged(before, after *view.View, chassis string) bool {
	b, _ := before.Chassis(chassis)
	a, _ := after.Chassis(chassis)
	return b.EncapIP != a.EncapIP || !slices.Equal(b.Encaps, a.Encaps) || !maps.Equal(b.Mappings, a.Mappings)
}

// EndpointMoved are the keys of the ports plugged, in either view, into a
// chassis other than skip whose tunnel endpoint (address or
// encapsulations) or physical networks changed: the flows that tunnel
// (or go through a physical network) to them went stale.
func EndpointMoved(before, after *view.View, changes []topology.Change, skip string) []uint32 {
	var out []uint32
	for _, ch := range changes {
		if ch.Resource != topology.ResourceChassis || ch.ID == skip || !EndpointChanged(before, after, ch.ID) {
			continue
		}
		for _, v := range []*view.View{before, after} {
			for _, p := range v.LocalPorts(ch.ID) {
				out = append(out, p.Key)
			}
		}
	}
	return out
}

// RouterChange is a router whose interfaces or state a batch of changes
// altered: its keys and its interfaces in either view.
type RouterChange struct {
	Keys       []uint32
	Interfaces []view.RouterInterface
}

// ChangedRouters are the routers of a batch of changes whose interfaces
// or state changed; a rename changes no flow.
func ChangedRouters(before, after *view.View, changes []topology.Change) []RouterChange {
	var out []RouterChange
	seen := map[string]bool{}
	for _, ch := range changes {
		if ch.Resource != topology.ResourceRouter || seen[ch.ID] {
			continue
		}
		seen[ch.ID] = true
		rb, inBefore := before.Router(ch.ID)
		ra, inAfter := after.Router(ch.ID)
		ib, ia := before.RouterInterfaces(ch.ID), after.RouterInterfaces(ch.ID)
		if inBefore && inAfter && rb.AdminUp == ra.AdminUp && slices.EqualFunc(ib, ia, sameLeg) {
			continue
		}
		var rc RouterChange
		for _, r := range []view.Router{rb, ra} {
			if r.Key != 0 && !slices.Contains(rc.Keys, r.Key) {
				rc.Keys = append(rc.Keys, r.Key)
			}
		}
		rc.Interfaces = append(append(rc.Interfaces, ib...), ia...)
		out = append(out, rc)
	}
	return out
}

func sameLeg(a, b view.RouterInterface) bool {
	return a.Port.ID == b.Port.ID && a.IP == b.IP && bytes.Equal(a.MAC, b.MAC) && a.Network.Key == b.Network.Key
}
