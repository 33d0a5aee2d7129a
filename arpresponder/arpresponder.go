// Package arpresponder answers ARP requests inside Open vSwitch: for an
// address a port of the network owns, and for the gateway address of each
// router interface on it (with that interface's MAC), the bridge turns the request around
// into the reply itself, on the requester's own chassis, so the request
// never crosses the underlay and no VM is woken to answer it. It is pure:
// a topology view and the facts of one bridge in, flows out.
//
// Tables it owns: ServiceClassifier and ARPResponder.
//
//	ServiceClassifier  arp,arp_op=1               → ARPResponder
//	ARPResponder       arp,arp_op=1,metadata=<net>,arp_tpa=<IP> →
//	    eth_dst←eth_src, eth_src←MAC, arp_op=2, tha←sha, tpa←spa,
//	    sha←MAC, spa←IP, out IN_PORT
//
// Requests for other addresses miss and continue to L2Lookup, which floods
// them as l2pop says. An address claimed by several ports of a network (a
// shared VIP, as VRRP/keepalived use) is answered with the MAC of the port
// that last announced it with a gratuitous ARP: a learning flow sends such
// announcements to the controller (and on to the flood), which records the
// owner in the replicated store; every chassis then answers with the new
// owner's MAC. Until one is learned, requests for a VIP are flooded.
//
//	ARPResponder  arp,arp_op=1,metadata=<net>,arp_spa=<VIP>,arp_tpa=<VIP> → punt "garp", L2Lookup
package arpresponder

import (
	"net"
	"net/netip"

	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Priorities of the app's flows.
const (
	PriorityRequests = 100
	PriorityAnswer   = 100
)

// Flows returns the app's flows for one bridge: for every network the
// chassis hosts, a reply for each of its neighbours (topology.View's
// Neighbours: router gateways, fixed IPs, single-address pairs, and shared
// addresses once a holder has announced itself), and a learning flow for
// each shared address.
func Flows(v *topology.View, br topology.Bridge) []of.Flow {
	hosted := v.HostedNetworks(br.Chassis)
	if len(hosted) == 0 {
		return nil
	}
	out := []of.Flow{{
		Table: pipeline.Table(pipeline.ServiceClassifier), Priority: PriorityRequests,
		Cookie:  pipeline.NewCookie(0, pipeline.AppARPResponder, 0),
		Match:   of.Match{}.EthType(of.EthTypeARP).ARPOp(of.ARPRequest),
		Actions: []of.Action{of.GotoTable{Table: pipeline.Table(pipeline.ARPResponder)}},
	}}
	for _, n := range hosted {
		for _, nb := range v.Neighbours(n.ID) {
			if nb.Shared {
				out = append(out, learnVIP(n.Key, nb.IP))
			}
			if nb.MAC != nil {
				out = append(out, answer(n, nb))
			}
		}
	}
	return out
}

// GARPUserData marks the punts of the VIP learning flows.
const GARPUserData = "garp"

// PriorityLearn puts the learning flow above the answers: an announcement
// of a VIP must reach the controller, not be answered.
const PriorityLearn = 110

// learnVIP sends gratuitous ARPs for a shared address to the controller
// and on to L2Lookup (which floods them).
func learnVIP(network uint32, ip netip.Addr) of.Flow {
	return of.Flow{
		Table: pipeline.Table(pipeline.ARPResponder), Priority: PriorityLearn,
		Cookie: pipeline.NewCookie(0, pipeline.AppARPResponder, pipeline.NetworkObject(network)),
		Match: of.Match{}.Reg(pipeline.NetworkKey, uint64(network)).EthType(of.EthTypeARP).
			ARPOp(of.ARPRequest).ARPSPA(ip).ARPTPA(ip),
		Actions: []of.Action{of.Punt{UserData: GARPUserData, MeterID: pipeline.MeterAnnouncements}, of.GotoTable{Table: pipeline.Table(pipeline.L2Lookup)}},
	}
}

// Reply is the flow that answers ARP requests for ip in a network with mac,
// turning the request around in the bridge and sending it back out the
// port it came in on.
func Reply(network uint32, ip netip.Addr, mac net.HardwareAddr, cookie uint64) of.Flow {
	macV, ipV := of.MACValue(mac), of.IPv4Value(ip)
	return of.Flow{
		Table: pipeline.Table(pipeline.ARPResponder), Priority: PriorityAnswer, Cookie: cookie,
		Match: of.Match{}.Reg(pipeline.NetworkKey, uint64(network)).EthType(of.EthTypeARP).
			ARPOp(of.ARPRequest).ARPTPA(ip),
		Actions: []of.Action{
			of.Move{Src: of.FieldEthSrc, Dst: of.FieldEthDst},
			of.SetField{Field: of.FieldEthSrc, Value: macV},
			of.SetField{Field: of.FieldARPOp, Value: of.ARPReply},
			of.Move{Src: of.FieldARPSHA, Dst: of.FieldARPTHA},
			of.Move{Src: of.FieldARPSPA, Dst: of.FieldARPTPA},
			of.SetField{Field: of.FieldARPSHA, Value: macV},
			of.SetField{Field: of.FieldARPSPA, Value: ipV},
			of.Output{Port: of.PortInPort},
		},
	}
}

// PerDestination reports whether a flow answers for one address: the
// flows reactive mode installs on demand.
func PerDestination(f of.Flow) bool {
	return f.Table == pipeline.Table(pipeline.ARPResponder) && pipeline.Cookie(f.Cookie).Kind() == pipeline.KindPort
}

// OnMiss returns the reply flow for an ARP request that missed
// ARPResponder: exactly the flow the proactive mode would hold for that
// address in that network (built by the same function from the same
// neighbour), or nothing when no single port owns it, no holder of a
// shared address has announced itself, or the network is not hosted here.
// It costs the ports of one network.
func OnMiss(v *topology.View, br topology.Bridge, network uint32, target netip.Addr) []of.Flow {
	n, ok := v.NetworkByKey(network)
	if !ok || !v.Hosts(br.Chassis, n.ID) {
		return nil
	}
	if nb, ok := v.Neighbour(n.ID, target); ok && nb.MAC != nil {
		return []of.Flow{answer(n, nb)}
	}
	return nil
}

// answer is the reply flow for a neighbour of network n.
func answer(n topology.Network, nb topology.Neighbour) of.Flow {
	return Reply(n.Key, nb.IP, nb.MAC, pipeline.NewCookie(0, pipeline.AppARPResponder, pipeline.PortObject(nb.Port)))
}
