// Package l2pop is L2 population: every bridge learns, from the topology
// rather than from flooding, where each MAC of the networks it hosts lives.
// Known unicast goes straight to the local port or into the right tunnel;
// broadcast and unknown unicast go to the local ports of the network and
// once to each other chassis that hosts it (head-end replication), never
// to a chassis that does not. It is pure: a topology view and the facts of
// one bridge in, flows out.
//
// Tables it owns: PortSecurity, L2Lookup, Flood and Delivery.
//
//	PortSecurity  reg6=<port>,dl_src=<MAC>,ip,nw_src=<IP>         → ServiceClassifier
//	              reg6=<port>,dl_src=<MAC>,arp,arp_spa=<IP>,arp_sha=<MAC> → ServiceClassifier
//	              reg6=<port> (anything else)                     → drop, counted
//	              reg6=<port> with port security off               → ServiceClassifier
//	L2Lookup      metadata=<net>,dl_dst=<port MAC> → reg7=port key, Egress
//	              metadata=<net>,FromRemote=0,dl_dst=<router interface MAC> → reg5=router key, L3Lookup
//	              dl_dst=multicast                 → Flood
//	Flood         metadata=<net>,FromRemote=0      → local ports, one copy per other hosting chassis
//	              metadata=<net>,FromRemote=1      → local ports only
//	Delivery      reg7=<local port>                → out its ofport
//	              reg7=<local port>,FromRemote=1,dl_src=<a DVR MAC>,ip,nw_dst=<its IP> →
//	                  eth_src←router MAC on its subnet, out its ofport
//
// A packet a router routed on another chassis arrives with that chassis'
// DVR MAC as its source (see package dvr); Delivery puts back the MAC of
// the router interface on the destination's subnet, so the VM sees its
// gateway, as it would behind a central router.
//
// Cookie objects: a port (its port security, Delivery and L2Lookup
// flows), a network (its Flood flows), a router (the L2Lookup flows that
// send frames to its MACs to L3Lookup), and none (the multicast flow).
//
// It imports only the app contract, pipeline, the flow model, the
// topology view and tunnels (to steer into a tunnel).
package l2pop

import (
	"bytes"
	"net"
	"net/netip"
	"slices"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
	"github.com/wyvern-sdn/wyvern/tunnels"
)

// Priorities of the app's flows.
const (
	PriorityKnown     = 100
	PriorityMulticast = 50
	PriorityUnknown   = 2 // above a port's punt flow (1): a flat/vlan network's unknown unicast
	PriorityFlood     = 100
	PriorityRouted    = 110 // Delivery of a packet routed on another chassis
)

var multicast = net.HardwareAddr{1, 0, 0, 0, 0, 0}

// App is the l2pop app.
type App struct{}

var _ app.App = App{}

// ID implements app.App.
func (App) ID() pipeline.App { return pipeline.AppL2Pop }

// Flows returns the app's flows for one bridge.
func (App) Flows(v *view.View, br view.Bridge) []of.Flow { return flows(v, br, nil) }

// ObjectFlows implements app.App.
func (App) ObjectFlows(v *view.View, br view.Bridge, objs app.Objects) []of.Flow {
	return flows(v, br, objs)
}

// flows are the app's flows whose objects are in objs (all when nil).
func flows(v *view.View, br view.Bridge, objs app.Objects) []of.Flow {
	want := func(obj uint64) bool { return objs == nil || objs[obj] }
	var out []of.Flow
	for _, p := range v.LocalPorts(br.Chassis) {
		if !want(pipeline.PortObject(p.Key)) {
			continue
		}
		out = append(out, portSecurity(*p)...)
		deliver := of.Match{}.Reg(pipeline.DstPortKey, uint64(p.Key))
		if p.Filtered() {
			// A filtered port gets ARP, and IPv4 through its firewall;
			// nothing else (IPv6, other ethertypes) is let in.
			deliver = deliver.EthType(of.EthTypeARP)
		}
		out = append(out, of.Flow{Table: pipeline.Table(pipeline.Delivery), Priority: PriorityKnown,
			Cookie:  pipeline.NewCookie(0, pipeline.AppL2Pop, pipeline.PortObject(p.Key)),
			Match:   deliver,
			Actions: []of.Action{of.Output{Port: p.OFPort}}})
		if p.Filtered() {
			// IPv4 to a filtered port goes through its security groups.
			out = append(out, of.Flow{Table: pipeline.Table(pipeline.Delivery), Priority: PriorityKnown + 1,
				Cookie:  pipeline.NewCookie(0, pipeline.AppL2Pop, pipeline.PortObject(p.Key)),
				Match:   of.Match{}.Reg(pipeline.DstPortKey, uint64(p.Key)).EthType(of.EthTypeIPv4),
				Actions: deliverIP(*p)})
		}
		out = append(out, routedDelivery(v, *p)...)
	}
	hosted := v.HostedNetworks(br.Chassis)
	if len(hosted) > 0 && want(0) {
		out = append(out, of.Flow{Table: pipeline.Table(pipeline.L2Lookup), Priority: PriorityMulticast,
			Cookie:  pipeline.NewCookie(0, pipeline.AppL2Pop, 0),
			Match:   of.Match{}.EthDstMasked(multicast, multicast),
			Actions: []of.Action{of.GotoTable{Table: pipeline.Table(pipeline.Flood)}}})
	}
	for _, n := range hosted {
		for _, ri := range v.NetworkInterfaces(n.ID) {
			if !want(pipeline.RouterObject(ri.Router.Key)) {
				continue
			}
			// Only what a local VM sends is routed here; a routed packet
			// from a tunnel was routed by the chassis that sent it.
			out = append(out, of.Flow{Table: pipeline.Table(pipeline.L2Lookup), Priority: PriorityKnown,
				Cookie: pipeline.NewCookie(0, pipeline.AppL2Pop, pipeline.RouterObject(ri.Router.Key)),
				Match:  of.Match{}.Reg(pipeline.NetworkKey, uint64(n.Key)).Reg(pipeline.FromRemote, 0).EthDst(ri.MAC),
				Actions: []of.Action{of.SetReg(pipeline.RouterKey, uint64(ri.Router.Key)),
					of.GotoTable{Table: pipeline.Table(pipeline.L3Lookup)}}})
		}
		for _, st := range stations(v, n.ID, objs) {
			out = append(out, lookup(n, st))
		}
		if want(pipeline.NetworkObject(n.Key)) {
			out = append(out, flood(v, br, n)...)
			out = append(out, unknownUnicast(br, n)...)
		}
	}
	return out
}

// deliverIP are the actions that deliver an IPv4 packet to a local port:
// out the port, or, to a filtered one, through conntrack in its zone to
// its security groups (SGIngress), which send it out.
func deliverIP(p view.Port) []of.Action {
	if p.Filtered() {
		return []of.Action{of.CT{Zone: pipeline.PortZone(p.Key), Table: pipeline.Table(pipeline.SGIngress)}}
	}
	return []of.Action{of.Output{Port: p.OFPort}}
}

// unknownUnicast: on a flat or vlan network, a unicast MAC that is no
// port's here (a physical router, a server) is the physical network's to
// find, as a switch port would leave it to the switches: what a local VM
// sends to one goes out the uplink alone, never punted or flooded to the
// other VMs here; what arrives from the physical network for one (the
// switches flooding a MAC they have not learned) is dropped. Every local
// port's MAC has its own flow, above these.
func unknownUnicast(br view.Bridge, n view.Network) []of.Flow {
	port, ok := br.PhysicalPorts[n.PhysicalNetwork]
	if !n.Provider() || !ok {
		return nil
	}
	ck := pipeline.NewCookie(0, pipeline.AppL2Pop, pipeline.NetworkObject(n.Key))
	m := of.Match{}.Reg(pipeline.NetworkKey, uint64(n.Key))
	return []of.Flow{
		{Table: pipeline.Table(pipeline.L2Lookup), Priority: PriorityUnknown, Cookie: ck, Match: m.Reg(pipeline.FromRemote, 0),
			Actions: tunnels.ToPhysical(n, port)},
		{Table: pipeline.Table(pipeline.L2Lookup), Priority: PriorityUnknown, Cookie: ck, Match: m.Reg(pipeline.FromRemote, 1)},
	}
}

// flood is head-end replication in a network: to its local ports, and one
// copy to each other chassis hosting it (a flat or vlan network: one copy
// out its physical network).
func flood(v *view.View, br view.Bridge, n view.Network) []of.Flow {
	// toLocalIP: IPv4 broadcast and multicast go to unfiltered ports only;
	// a filtered port's firewall admits only unicast connections, and a
	// flooded copy would reach it around its filter.
	var toLocal, toLocalIP []of.Action
	for _, p := range v.NetworkPorts(n.ID) {
		if p.Chassis == br.Chassis {
			toLocal = append(toLocal, of.Output{Port: p.OFPort})
			if !p.Filtered() {
				toLocalIP = append(toLocalIP, of.Output{Port: p.OFPort})
			}
		}
	}
	var toRemote []of.Action
	if n.Provider() {
		// One copy, out the physical network, whose switches flood it to
		// every chassis and host on it; never through tunnels.
		if port, ok := br.PhysicalPorts[n.PhysicalNetwork]; ok {
			toRemote = tunnels.ToPhysical(n, port)
		}
	} else {
		for _, c := range v.NetworkHosts(n.ID) {
			if c == br.Chassis {
				continue
			}
			if steer, ok := tunnels.Steer(v, br, n, c); ok {
				toRemote = append(toRemote, steer...)
			}
		}
	}
	ck := pipeline.NewCookie(0, pipeline.AppL2Pop, pipeline.NetworkObject(n.Key))
	m := of.Match{}.Reg(pipeline.NetworkKey, uint64(n.Key))
	out := []of.Flow{
		{Table: pipeline.Table(pipeline.Flood), Priority: PriorityFlood, Cookie: ck,
			Match:   m.Reg(pipeline.FromRemote, 0),
			Actions: append(append([]of.Action{}, toLocal...), toRemote...)},
		{Table: pipeline.Table(pipeline.Flood), Priority: PriorityFlood, Cookie: ck,
			Match:   m.Reg(pipeline.FromRemote, 1),
			Actions: toLocal},
	}
	if len(toLocalIP) != len(toLocal) {
		ip := m.EthType(of.EthTypeIPv4)
		out = append(out,
			of.Flow{Table: pipeline.Table(pipeline.Flood), Priority: PriorityFlood + 1, Cookie: ck,
				Match:   ip.Reg(pipeline.FromRemote, 0),
				Actions: append(append([]of.Action{}, toLocalIP...), toRemote...)},
			of.Flow{Table: pipeline.Table(pipeline.Flood), Priority: PriorityFlood + 1, Cookie: ck,
				Match:   ip.Reg(pipeline.FromRemote, 1),
				Actions: toLocalIP})
	}
	return out
}

// lookup is the L2Lookup flow that sends a station's MAC to its port.
func lookup(n view.Network, st station) of.Flow {
	return of.Flow{Table: pipeline.Table(pipeline.L2Lookup), Priority: PriorityKnown,
		Cookie: pipeline.NewCookie(0, pipeline.AppL2Pop, pipeline.PortObject(st.port.Key)),
		Match:  of.Match{}.Reg(pipeline.NetworkKey, uint64(n.Key)).EthDst(st.mac),
		Actions: []of.Action{of.SetReg(pipeline.DstPortKey, uint64(st.port.Key)),
			of.GotoTable{Table: pipeline.Table(pipeline.Egress)}}}
}

// station is a MAC of a network and the located port that receives it.
type station struct {
	mac  net.HardwareAddr
	port *view.Port // in the View, read only
}

// stations are the MACs of a network's located ports (those whose
// objects are in objs, all when nil), in port key order: see
// appendStations.
func stations(v *view.View, network string, objs app.Objects) []station {
	var out []station
	if objs == nil {
		ports := v.NetworkPorts(network)
		out = make([]station, 0, len(ports))
		for i := range ports {
			out = appendStations(out, v, network, ports[i])
		}
		return out
	}
	var keys []uint32
	for obj := range objs {
		if pipeline.Cookie(obj).Kind() == pipeline.KindPort {
			keys = append(keys, pipeline.ObjectKey(obj))
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if p, ok := v.LocatedPortByKey(k); ok && p.NetworkID == network {
			out = appendStations(out, v, network, &p)
		}
	}
	return out
}

// appendStations appends the MACs a located port receives: its own, and
// each MAC of its allowed address pairs that no other port — plugged or
// not, router interfaces included — claims as its own or in a pair (a
// MAC several ports share, as a VRRP virtual MAC is, is left to the
// flood).
func appendStations(out []station, v *view.View, network string, p *view.Port) []station {
	out = append(out, station{p.MAC, p})
	for j, ap := range p.Pairs {
		if bytes.Equal(ap.MAC, p.MAC) || pairedBefore(p, j) {
			continue
		}
		if claims := v.MACClaims(network, ap.MAC); len(claims) == 1 && claims[0] == p.Key {
			out = append(out, station{ap.MAC, p})
		}
	}
	return out
}

// pairedBefore reports whether an earlier pair of the port has the MAC of
// its pair j.
func pairedBefore(p *view.Port, j int) bool {
	for _, ap := range p.Pairs[:j] {
		if bytes.Equal(ap.MAC, p.Pairs[j].MAC) {
			return true
		}
	}
	return false
}

// stationsOf are the stations of the port that receives dst in a network,
// as stations gives them, found from the index of who claims what: the
// located port whose own MAC dst is, else the one port whose pair has it
// as a station. Empty when no located port receives dst.
func stationsOf(v *view.View, network string, dst net.HardwareAddr) []station {
	claims := v.MACClaims(network, dst)
	for _, k := range claims {
		if q, ok := v.LocatedPortByKey(k); ok && bytes.Equal(q.MAC, dst) {
			return appendStations(nil, v, network, &q)
		}
	}
	if len(claims) != 1 {
		return nil
	}
	q, ok := v.LocatedPortByKey(claims[0])
	if !ok {
		return nil
	}
	out := appendStations(nil, v, network, &q)
	for _, st := range out {
		if bytes.Equal(st.mac, dst) {
			return out
		}
	}
	return nil // dst is q's pair MAC, but not a station: flooded
}

// routedDelivery restores, for each address of a local port (fixed IPs
// and single-address allowed pairs) in a subnet with a router, the
// router's MAC on that subnet as the source of packets routed to it on
// another chassis (which arrive with that chassis' DVR MAC).
func routedDelivery(v *view.View, p view.Port) []of.Flow {
	ifaces := v.NetworkInterfaces(p.NetworkID)
	if len(ifaces) == 0 {
		return nil
	}
	var out []of.Flow
	seen := map[netip.Prefix]bool{}
	for _, s := range sources(p) {
		if seen[s.prefix] || !s.prefix.IsSingleIP() { // no route targets a CIDR pair
			continue
		}
		seen[s.prefix] = true
		for _, ri := range ifaces {
			if !ri.Prefix.Contains(s.prefix.Addr()) || ri.Prefix.Bits() > s.prefix.Bits() {
				continue
			}
			out = append(out, of.Flow{Table: pipeline.Table(pipeline.Delivery), Priority: PriorityRouted,
				Cookie: pipeline.NewCookie(0, pipeline.AppL2Pop, pipeline.PortObject(p.Key)),
				Match: of.Match{}.Reg(pipeline.DstPortKey, uint64(p.Key)).Reg(pipeline.FromRemote, 1).
					WithMasked(of.FieldEthSrc, of.MACValue(topology.DVRMACPrefix), of.MACValue(topology.DVRMACMask)).
					EthType(of.EthTypeIPv4).IPv4Dst(s.prefix),
				Actions: append([]of.Action{of.SetField{Field: of.FieldEthSrc, Value: of.MACValue(ri.MAC)}}, deliverIP(p)...)})
			break
		}
	}
	return out
}
