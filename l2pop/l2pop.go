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
//	              metadata=<net>,FromTunnel=0,dl_dst=<router interface MAC> → reg5=router key, L3Lookup
//	              dl_dst=multicast                 → Flood
//	Flood         metadata=<net>,FromTunnel=0      → local ports, one copy per other hosting chassis
//	              metadata=<net>,FromTunnel=1      → local ports only
//	Delivery      reg7=<local port>                → out its ofport
//	              reg7=<local port>,FromTunnel=1,dl_src=<a DVR MAC>,ip,nw_dst=<its IP> →
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
package l2pop

import (
	"bytes"
	"net"
	"net/netip"

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
		out = append(out, portSecurity(p)...)
		out = append(out, of.Flow{Table: pipeline.Table(pipeline.Delivery), Priority: PriorityKnown,
			Cookie:  pipeline.NewCookie(0, pipeline.AppL2Pop, pipeline.PortObject(p.Key)),
			Match:   of.Match{}.Reg(pipeline.DstPortKey, uint64(p.Key)),
			Actions: []of.Action{of.Output{Port: p.OFPort}}})
		out = append(out, routedDelivery(v, p)...)
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
				Match:  of.Match{}.Reg(pipeline.NetworkKey, uint64(n.Key)).Reg(pipeline.FromTunnel, 0).EthDst(ri.MAC),
				Actions: []of.Action{of.SetReg(pipeline.RouterKey, uint64(ri.Router.Key)),
					of.GotoTable{Table: pipeline.Table(pipeline.L3Lookup)}}})
		}
		for _, st := range stations(v, n.ID, objs) {
			out = append(out, lookup(n, st))
		}
		if want(pipeline.NetworkObject(n.Key)) {
			out = append(out, flood(v, br, n)...)
		}
	}
	return out
}

// flood is head-end replication in a network: to its local ports, and one
// copy to each other chassis hosting it.
func flood(v *view.View, br view.Bridge, n view.Network) []of.Flow {
	var toLocal []of.Action
	for _, p := range v.NetworkPorts(n.ID) {
		if p.Chassis == br.Chassis {
			toLocal = append(toLocal, of.Output{Port: p.OFPort})
		}
	}
	var toRemote []of.Action
	for _, c := range v.NetworkHosts(n.ID) {
		if c == br.Chassis {
			continue
		}
		if steer, ok := tunnels.Steer(v, br, n, c); ok {
			toRemote = append(toRemote, steer...)
		}
	}
	ck := pipeline.NewCookie(0, pipeline.AppL2Pop, pipeline.NetworkObject(n.Key))
	return []of.Flow{
		{Table: pipeline.Table(pipeline.Flood), Priority: PriorityFlood, Cookie: ck,
			Match:   of.Match{}.Reg(pipeline.NetworkKey, uint64(n.Key)).Reg(pipeline.FromTunnel, 0),
			Actions: append(append([]of.Action{}, toLocal...), toRemote...)},
		{Table: pipeline.Table(pipeline.Flood), Priority: PriorityFlood, Cookie: ck,
			Match:   of.Match{}.Reg(pipeline.NetworkKey, uint64(n.Key)).Reg(pipeline.FromTunnel, 1),
			Actions: toLocal},
	}
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
// objects are in objs, all when nil): each port's own, and the MACs of
// its allowed address pairs that are no port's or router's own and that
// no other port claims (a MAC several ports share, as a VRRP virtual MAC
// is, is left to the flood). In port key order.
func stations(v *view.View, network string, objs app.Objects) []station {
	ports := v.NetworkPorts(network)
	out := make([]station, 0, len(ports))
	var own map[string]bool                   // ports' own MACs, and routers': no pair takes them
	var pairOwners map[string]map[uint32]bool // built only when some port has pairs
	for i := range ports {
		if len(ports[i].Pairs) > 0 {
			own, pairOwners = map[string]bool{}, map[string]map[uint32]bool{}
			for _, ri := range v.NetworkInterfaces(network) {
				own[string(ri.MAC)] = true
			}
			for _, p := range ports {
				own[string(p.MAC)] = true
				for _, ap := range p.Pairs {
					if pairOwners[string(ap.MAC)] == nil {
						pairOwners[string(ap.MAC)] = map[uint32]bool{}
					}
					pairOwners[string(ap.MAC)][p.Key] = true
				}
			}
			break
		}
	}
	for i := range ports {
		p := &ports[i]
		if objs != nil && !objs[pipeline.PortObject(p.Key)] {
			continue
		}
		out = append(out, station{p.MAC, p})
		for j, ap := range p.Pairs {
			if own[string(ap.MAC)] || len(pairOwners[string(ap.MAC)]) != 1 || pairedBefore(p, j) {
				continue
			}
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
// as stations gives them, found without building the network's: a port's
// own MAC first, else the one port whose pair has it (unless a router
// has it). Empty when no port receives dst.
func stationsOf(v *view.View, network string, dst net.HardwareAddr) []station {
	ports := v.NetworkPorts(network)
	var holder *view.Port
	holders := 0
	for i := range ports {
		if bytes.Equal(ports[i].MAC, dst) {
			holder, holders = &ports[i], 1
			break
		}
		for _, ap := range ports[i].Pairs {
			if bytes.Equal(ap.MAC, dst) {
				if holder != &ports[i] {
					holder, holders = &ports[i], holders+1
				}
				break
			}
		}
	}
	if holder == nil || holders != 1 {
		return nil
	}
	// The holder's stations: its own MAC, and each pair MAC no router, no
	// port's own and no other port's pair has.
	out := []station{{holder.MAC, holder}}
	for j, ap := range holder.Pairs {
		if pairedBefore(holder, j) || !soleClaim(v, network, holder, ap.MAC) {
			continue
		}
		out = append(out, station{ap.MAC, holder})
	}
	for _, st := range out {
		if bytes.Equal(st.mac, dst) {
			return out
		}
	}
	return nil // dst is holder's pair MAC, but not a station: flooded
}

// soleClaim reports whether a pair MAC of port p is a station: no router's
// or port's own MAC, and no other port's pair.
func soleClaim(v *view.View, network string, p *view.Port, mac net.HardwareAddr) bool {
	for _, ri := range v.NetworkInterfaces(network) {
		if bytes.Equal(ri.MAC, mac) {
			return false
		}
	}
	for _, q := range v.NetworkPorts(network) {
		if bytes.Equal(q.MAC, mac) {
			return false
		}
		if q.Key == p.Key {
			continue
		}
		for _, ap := range q.Pairs {
			if bytes.Equal(ap.MAC, mac) {
				return false
			}
		}
	}
	return true
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
				Match: of.Match{}.Reg(pipeline.DstPortKey, uint64(p.Key)).Reg(pipeline.FromTunnel, 1).
					WithMasked(of.FieldEthSrc, of.MACValue(topology.DVRMACPrefix), of.MACValue(topology.DVRMACMask)).
					EthType(of.EthTypeIPv4).IPv4Dst(s.prefix),
				Actions: []of.Action{of.SetField{Field: of.FieldEthSrc, Value: of.MACValue(ri.MAC)},
					of.Output{Port: p.OFPort}}})
			break
		}
	}
	return out
}
