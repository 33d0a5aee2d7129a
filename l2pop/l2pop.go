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
package l2pop

import (
	"bytes"
	"net"
	"net/netip"

	"github.com/wyvern-sdn/wyvern/internal/topology"
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

// Flows returns the app's flows for one bridge.
func Flows(v *topology.View, br topology.Bridge) []of.Flow {
	var out []of.Flow
	local := v.LocalPorts(br.Chassis)
	for _, p := range local {
		ck := pipeline.NewCookie(0, pipeline.AppL2Pop, pipeline.PortObject(p.Key))
		out = append(out, portSecurity(p)...)
		out = append(out,
			of.Flow{Table: pipeline.Table(pipeline.Delivery), Priority: PriorityKnown, Cookie: ck,
				Match:   of.Match{}.Reg(pipeline.DstPortKey, uint64(p.Key)),
				Actions: []of.Action{of.Output{Port: p.OFPort}}})
		out = append(out, routedDelivery(v, p)...)
	}
	hosted := v.HostedNetworks(br.Chassis)
	if len(hosted) > 0 {
		out = append(out, of.Flow{Table: pipeline.Table(pipeline.L2Lookup), Priority: PriorityMulticast,
			Cookie:  pipeline.NewCookie(0, pipeline.AppL2Pop, 0),
			Match:   of.Match{}.EthDstMasked(multicast, multicast),
			Actions: []of.Action{of.GotoTable{Table: pipeline.Table(pipeline.Flood)}}})
	}
	for _, n := range hosted {
		netCookie := pipeline.NewCookie(0, pipeline.AppL2Pop, pipeline.NetworkObject(n.Key))
		for _, ri := range v.NetworkInterfaces(n.ID) {
			// Only what a local VM sends is routed here; a routed packet
			// from a tunnel was routed by the chassis that sent it.
			out = append(out, of.Flow{Table: pipeline.Table(pipeline.L2Lookup), Priority: PriorityKnown,
				Cookie: pipeline.NewCookie(0, pipeline.AppL2Pop, pipeline.RouterObject(ri.Router.Key)),
				Match:  of.Match{}.Reg(pipeline.NetworkKey, uint64(n.Key)).Reg(pipeline.FromTunnel, 0).EthDst(ri.MAC),
				Actions: []of.Action{of.SetReg(pipeline.RouterKey, uint64(ri.Router.Key)),
					of.GotoTable{Table: pipeline.Table(pipeline.L3Lookup)}}})
		}
		for _, st := range stations(v, n.ID) {
			out = append(out, lookup(n, st))
		}
		var toLocal []of.Action
		for _, p := range v.NetworkPorts(n.ID) {
			if p.HostID == br.Chassis {
				toLocal = append(toLocal, of.Output{Port: p.OFPort})
			}
		}
		// Head-end replication: one copy per other chassis hosting n.
		var toRemote []of.Action
		for _, c := range v.NetworkHosts(n.ID) {
			if c == br.Chassis {
				continue
			}
			if steer, ok := tunnels.Steer(v, br, n, c); ok {
				toRemote = append(toRemote, steer...)
			}
		}
		out = append(out,
			of.Flow{Table: pipeline.Table(pipeline.Flood), Priority: PriorityFlood, Cookie: netCookie,
				Match:   of.Match{}.Reg(pipeline.NetworkKey, uint64(n.Key)).Reg(pipeline.FromTunnel, 0),
				Actions: append(append([]of.Action{}, toLocal...), toRemote...)},
			of.Flow{Table: pipeline.Table(pipeline.Flood), Priority: PriorityFlood, Cookie: netCookie,
				Match:   of.Match{}.Reg(pipeline.NetworkKey, uint64(n.Key)).Reg(pipeline.FromTunnel, 1),
				Actions: toLocal})
	}
	return out
}

// lookup is the L2Lookup flow that sends a station's MAC to its port.
func lookup(n topology.Network, st station) of.Flow {
	return of.Flow{Table: pipeline.Table(pipeline.L2Lookup), Priority: PriorityKnown,
		Cookie: pipeline.NewCookie(0, pipeline.AppL2Pop, pipeline.PortObject(st.port.Key)),
		Match:  of.Match{}.Reg(pipeline.NetworkKey, uint64(n.Key)).EthDst(st.mac),
		Actions: []of.Action{of.SetReg(pipeline.DstPortKey, uint64(st.port.Key)),
			of.GotoTable{Table: pipeline.Table(pipeline.Egress)}}}
}

// station is a MAC of a network and the located port that receives it.
type station struct {
	mac  net.HardwareAddr
	port *topology.Port // in the View, read only
}

// stations are the MACs of a network's located ports: each port's own,
// and the MACs of its allowed address pairs that are no port's or
// router's own and that no other port claims (a MAC several ports share,
// as a VRRP virtual MAC is, is left to the flood). In port key order.
func stations(v *topology.View, network string) []station {
	ports := v.NetworkPorts(network)
	out := make([]station, 0, len(ports))
	var own map[string]bool                   // ports' own MACs, and routers': no pair takes them
	var pairOwners map[string]map[uint32]bool // built only when some port has pairs
	for i := range ports {
		if len(ports[i].AllowedAddressPairs) > 0 {
			own, pairOwners = map[string]bool{}, map[string]map[uint32]bool{}
			for _, ri := range v.NetworkInterfaces(network) {
				own[ri.MAC.String()] = true
			}
			for _, p := range ports {
				own[p.MACAddress] = true
				for _, ap := range p.AllowedAddressPairs {
					if pairOwners[ap.MACAddress] == nil {
						pairOwners[ap.MACAddress] = map[uint32]bool{}
					}
					pairOwners[ap.MACAddress][p.Key] = true
				}
			}
			break
		}
	}
	for i := range ports {
		p := &ports[i]
		if mac, err := net.ParseMAC(p.MACAddress); err == nil {
			out = append(out, station{mac, p})
		}
		for j, ap := range p.AllowedAddressPairs {
			if own[ap.MACAddress] || len(pairOwners[ap.MACAddress]) != 1 || pairedBefore(p, j) {
				continue
			}
			if mac, err := net.ParseMAC(ap.MACAddress); err == nil {
				out = append(out, station{mac, p})
			}
		}
	}
	return out
}

// pairedBefore reports whether an earlier pair of the port has the MAC of
// its pair j.
func pairedBefore(p *topology.Port, j int) bool {
	for _, ap := range p.AllowedAddressPairs[:j] {
		if ap.MACAddress == p.AllowedAddressPairs[j].MACAddress {
			return true
		}
	}
	return false
}

// stationsOf are the stations of the port that receives dst in a network,
// as stations gives them, found without building the network's: a port's
// own MAC first, else the one port whose pair has it (unless a router
// has it). Empty when no port receives dst.
func stationsOf(v *topology.View, network string, dst net.HardwareAddr) []station {
	want := dst.String()
	ports := v.NetworkPorts(network)
	var holder *topology.Port
	holders := 0
	for i := range ports {
		if ports[i].MACAddress == want {
			holder, holders = &ports[i], 1
			break
		}
		for _, ap := range ports[i].AllowedAddressPairs {
			if ap.MACAddress == want {
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
	var out []station
	if mac, err := net.ParseMAC(holder.MACAddress); err == nil {
		out = append(out, station{mac, holder})
	}
	for j, ap := range holder.AllowedAddressPairs {
		if pairedBefore(holder, j) || !soleClaim(v, network, holder, ap.MACAddress) {
			continue
		}
		if mac, err := net.ParseMAC(ap.MACAddress); err == nil {
			out = append(out, station{mac, holder})
		}
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
func soleClaim(v *topology.View, network string, p *topology.Port, mac string) bool {
	for _, ri := range v.NetworkInterfaces(network) {
		if ri.MAC.String() == mac {
			return false
		}
	}
	for _, q := range v.NetworkPorts(network) {
		if q.MACAddress == mac {
			return false
		}
		if q.Key == p.Key {
			continue
		}
		for _, ap := range q.AllowedAddressPairs {
			if ap.MACAddress == mac {
				return false
			}
		}
	}
	return true
}

// routedDelivery restores, for each address of a local port (fixed IPs
// and single-address allowed pairs) in a subnet with a router, the router's MAC
// on that subnet as the source of packets routed to it on another chassis
// (which arrive with that chassis' DVR MAC).
func routedDelivery(v *topology.View, p topology.Port) []of.Flow {
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
