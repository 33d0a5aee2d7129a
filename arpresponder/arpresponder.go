// Package arpresponder answers ARP requests inside Open vSwitch: for an
// address a port of the network owns — plugged or not yet, so a VM is
// reachable the moment it is plugged — and for the gateway address of
// each router interface on it (with that interface's MAC), the bridge
// turns the request around into the reply itself, on the requester's own
// chassis, so the request never crosses the underlay and no VM is woken
// to answer it. It is pure: a topology view and the facts of one bridge
// in, flows out.
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
//	ARPResponder  arp,arp_op=1,metadata=<net>,arp_spa=<VIP>,arp_tpa=<VIP> → punt (vip-announcement), L2Lookup
//
// Cookie objects: a port (the answers for its addresses, or for a
// router's gateway, the interface port's), a network (its VIP learning
// flows), and none (the ServiceClassifier flow).
//
// It is pure and imports only the app contract, pipeline, the flow model
// and the topology view.
package arpresponder

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Priorities of the app's flows.
const (
	PriorityRequests = 100
	PriorityAnswer   = 100
	// PriorityLearn puts the learning flow above the answers: an
	// announcement of a VIP must reach the controller, not be answered.
	PriorityLearn = 110
)

// App is the ARP responder. Its zero value answers punts as New's does,
// building every answer afresh.
type App struct {
	// replies are the answer flows punts asked for: an answer is made of
	// its key alone, so one built for any bridge, from any view, serves
	// them all.
	replies *app.Memo[replyKey, []of.Flow]
}

// replyKey is what an answer flow is made of (answer).
type replyKey struct {
	network uint32
	ip      netip.Addr
	mac     [6]byte
	port    uint32
}

// memoLimit bounds the app's memo: 16,384 answers (about 7 MB)
// are more addresses than the punts of a busy chassis name between two
// idle timeouts.
const memoLimit = 16384

// New is the ARP responder as the controller runs it: answers punts ask
// for again are built once.
func New() App {
	return App{replies: app.NewMemo[replyKey, []of.Flow](memoLimit)}
}

var _ app.App = App{}

// ID implements app.App.
func (App) ID() pipeline.App { return pipeline.AppARPResponder }

// Flows returns the app's flows for one bridge: for every network the
// chassis hosts, a reply for each of its neighbours (view.Neighbours:
// router gateways, fixed IPs, single-address pairs, and shared addresses
// once a holder has announced itself), and a learning flow for each
// shared address.
func (App) Flows(v *view.View, br view.Bridge) []of.Flow { return flows(v, br, nil) }

// ObjectFlows implements app.App. Only the networks holding one of the
// objects have their neighbour tables built.
func (App) ObjectFlows(v *view.View, br view.Bridge, objs app.Objects) []of.Flow {
	return flows(v, br, objs)
}

func flows(v *view.View, br view.Bridge, objs app.Objects) []of.Flow {
	hosted := v.HostedNetworks(br.Chassis)
	if len(hosted) == 0 {
		return nil
	}
	want := func(obj uint64) bool { return objs == nil || objs[obj] }
	var out []of.Flow
	if want(0) {
		out = append(out, of.Flow{
			Table: pipeline.Table(pipeline.ServiceClassifier), Priority: PriorityRequests,
			Cookie:  pipeline.NewCookie(0, pipeline.AppARPResponder, 0),
			Match:   of.Match{}.EthType(of.EthTypeARP).ARPOp(of.ARPRequest),
			Actions: []of.Action{of.GotoTable{Table: pipeline.Table(pipeline.ARPResponder)}},
		})
	}
	if objs == nil {
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
	// Some objects only: a network's learning flows; a port's answers —
	// those for each address it claims (or, for a router interface, its
	// gateway) whose neighbour it is.
	for _, n := range hosted {
		if objs[pipeline.NetworkObject(n.Key)] {
			for _, ip := range v.SharedAddresses(n.ID) {
				out = append(out, learnVIP(n.Key, ip))
			}
		}
	}
	type key struct {
		network uint32
		ip      netip.Addr
	}
	answered := map[key]bool{}
	for obj := range objs {
		if pipeline.Cookie(obj).Kind() != pipeline.KindPort {
			continue
		}
		p, ok := v.PortByKey(pipeline.ObjectKey(obj))
		if !ok || !v.Hosts(br.Chassis, p.NetworkID) {
			continue
		}
		n, _ := v.Network(p.NetworkID)
		addrs := p.Addresses()
		for _, ri := range v.NetworkInterfaces(p.NetworkID) {
			if ri.Port.Key == p.Key {
				addrs = append(addrs, ri.IP)
			}
		}
		for _, ip := range addrs {
			if answered[key{n.Key, ip}] {
				continue
			}
			if nb, ok := v.Neighbour(n.ID, ip); ok && nb.MAC != nil && nb.Port == p.Key {
				answered[key{n.Key, ip}] = true
				out = append(out, answer(n, nb))
			}
		}
	}
	return out
}

// learnVIP sends gratuitous ARPs for a shared address to the controller
// and on to L2Lookup (which floods them).
func learnVIP(network uint32, ip netip.Addr) of.Flow {
	return of.Flow{
		Table: pipeline.Table(pipeline.ARPResponder), Priority: PriorityLearn,
		Cookie: pipeline.NewCookie(0, pipeline.AppARPResponder, pipeline.NetworkObject(network)),
		Match: of.Match{}.Reg(pipeline.NetworkKey, uint64(network)).EthType(of.EthTypeARP).
			ARPOp(of.ARPRequest).ARPSPA(ip).ARPTPA(ip),
		Actions: []of.Action{pipeline.Punt(pipeline.ReasonVIPAnnouncement, pipeline.MeterAnnouncements),
			of.GotoTable{Table: pipeline.Table(pipeline.L2Lookup)}},
	}
}

// Reply is the flow that answers ARP requests for ip in a network with mac,
// turning the request around in the bridge and sending it back out the
// port it came in on.
func Reply(network uint32, ip netip.Addr, mac net.HardwareAddr, cookie uint64) of.Flow {
	macV, ipV := of.MACValue(mac), of.IPv4Value(ip)
	return of.Flow{
		Table: pipeline.Table(pipeline.ARPResponder), Priority: PriorityAnswer, Cookie: cookie,
		Match: of.MatchOf(pipeline.NetworkKey.Cond(uint64(network)), of.Exact(of.FieldEthType, of.EthTypeARP),
			of.Exact(of.FieldARPOp, of.ARPRequest), of.Exact(of.FieldARPTPA, ipV)),
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

// answer is the reply flow for a neighbour of network n.
func answer(n view.Network, nb view.Neighbour) of.Flow {
	return Reply(n.Key, nb.IP, nb.MAC, pipeline.NewCookie(0, pipeline.AppARPResponder, pipeline.PortObject(nb.Port)))
}

// PerDestination reports whether a flow answers for one address: the
// flows reactive mode installs on demand.
func (App) PerDestination(f of.Flow) bool {
	return f.Table == pipeline.Table(pipeline.ARPResponder) && pipeline.Cookie(f.Cookie).Kind() == pipeline.KindPort
}

// Reasons implements app.App.
func (App) Reasons() []pipeline.PuntReason {
	return []pipeline.PuntReason{pipeline.ReasonARPMiss, pipeline.ReasonVIPAnnouncement}
}

// OnPunt answers an ARP request that missed ARPResponder — with the
// answer flow for its target, then the request back into ARPResponder,
// which now answers it; or, for an address nobody answers for, on to
// L2Lookup, which floods it — and records the sender of a gratuitous ARP
// for a shared address as its holder.
func (a App) OnPunt(v *view.View, br view.Bridge, p app.Punt) app.Answer {
	pkt := p.Packet
	if pkt.EthType != of.EthTypeARP || pkt.ARPOp != of.ARPRequest {
		return app.Answer{Outcome: app.Malformed}
	}
	if p.Reason == pipeline.ReasonVIPAnnouncement {
		return announced(v, p)
	}
	network := uint32(p.Reg(pipeline.NetworkKey))
	if n, nb, ok := neighbour(v, br, network, pkt.ARPTPA); ok && len(nb.MAC) == 6 {
		flows := a.replies.Get(replyKey{network: n.Key, ip: nb.IP, mac: [6]byte(nb.MAC), port: nb.Port},
			func() []of.Flow { return []of.Flow{answer(n, nb)} })
		ans := app.Answer{Outcome: app.Answered, Flows: flows, Reinject: true,
			Resubmit: pipeline.Table(pipeline.ARPResponder)}
		if p.Reg(pipeline.SrcPortKey) != 0 { // from a local port: the flow's output:in_port is that port
			if frame, ok := ReplyFrame(p.Frame, nb.MAC, nb.IP); ok {
				ans.Reply = &app.PacketOut{Actions: []of.Action{of.Output{Port: p.InPort}}, Frame: frame}
			}
		}
		return ans
	}
	return app.Answer{Outcome: app.Flooded, Reinject: true, Resubmit: pipeline.Table(pipeline.L2Lookup)}
}

// announced: a port sent a gratuitous ARP for a shared address; it holds
// it now, unless it already did. The learning flow sent the announcement
// on itself.
func announced(v *view.View, p app.Punt) app.Answer {
	if p.Packet.ARPSPA != p.Packet.ARPTPA {
		return app.Answer{Outcome: app.Malformed}
	}
	port, ok := v.LocatedPortByKey(uint32(p.Reg(pipeline.SrcPortKey)))
	if !ok {
		return app.Answer{Outcome: app.Unanswered}
	}
	if id, held := v.VIPOwner(port.NetworkID, p.Packet.ARPSPA); held && id == port.ID {
		return app.Answer{Outcome: app.VIPAnnounced}
	}
	return app.Answer{Outcome: app.VIPAnnounced, Claim: &app.VIPClaim{PortID: port.ID, IP: p.Packet.ARPSPA}}
}

// OnMiss returns the reply flow for an ARP request that missed
// ARPResponder: exactly the flow the proactive mode would hold for that
// address in that network (built by the same function from the same
// neighbour), or nothing when no single port owns it, no holder of a
// shared address has announced itself, or the network is not hosted here.
// It costs the ports of one network.
func OnMiss(v *view.View, br view.Bridge, network uint32, target netip.Addr) []of.Flow {
	if n, nb, ok := neighbour(v, br, network, target); ok {
		return []of.Flow{answer(n, nb)}
	}
	return nil
}

// neighbour is the port OnMiss answers for, if any.
func neighbour(v *view.View, br view.Bridge, network uint32, target netip.Addr) (view.Network, view.Neighbour, bool) {
	n, ok := v.NetworkByKey(network)
	if !ok || !v.Hosts(br.Chassis, n.ID) {
		return view.Network{}, view.Neighbour{}, false
	}
	if nb, ok := v.Neighbour(n.ID, target); ok && nb.MAC != nil {
		return n, nb, true
	}
	return view.Network{}, view.Neighbour{}, false
}

// ReplyFrame is the ARP reply Reply's flow makes of an untagged
// Ethernet/IPv4 ARP request for ip, answered with mac: the request's
// frame with the same rewrites, in the same order (its padding kept), so
// that sending it out of the request's port is what re-injecting the
// request does once the flow is in. False for any other frame.
func ReplyFrame(req []byte, mac net.HardwareAddr, ip netip.Addr) ([]byte, bool) {
	const arp = 14 // untagged: the flow's moves would act on the same fields of a tagged one, but keep it simple
	if len(req) < arp+28 || len(mac) != 6 || !ip.Is4() ||
		binary.BigEndian.Uint16(req[12:]) != of.EthTypeARP ||
		binary.BigEndian.Uint16(req[arp:]) != 1 || binary.BigEndian.Uint16(req[arp+2:]) != of.EthTypeIPv4 ||
		req[arp+4] != 6 || req[arp+5] != 4 || binary.BigEndian.Uint16(req[arp+6:]) != of.ARPRequest {
		return nil, false
	}
	b := append([]byte(nil), req...)
	copy(b[0:6], req[6:12])                            // move eth_src -> eth_dst
	copy(b[6:12], mac)                                 // eth_src = mac
	binary.BigEndian.PutUint16(b[arp+6:], of.ARPReply) // arp_op = 2
	copy(b[arp+18:arp+24], req[arp+8:arp+14])          // move arp_sha -> arp_tha
	copy(b[arp+24:arp+28], req[arp+14:arp+18])         // move arp_spa -> arp_tpa
	copy(b[arp+8:arp+14], mac)                         // arp_sha = mac
	a4 := ip.As4()
	copy(b[arp+14:arp+18], a4[:]) // arp_spa = ip
	return b, true
}

// Affects implements app.App: a changed port's answers, those of the
// ports sharing an address with it (an address shared is a VIP, answered
// by its holder), and its network's learning flows; a router's gateways
// and its networks; and all of a network this chassis starts or stops
// hosting.
func (App) Affects(before, after *view.View, br view.Bridge, changes []topology.Change) app.Scope {
	objs := app.Objects{}
	if app.AddHosting(objs, before, after, br.Chassis) {
		objs.Add(0)
	}
	for _, pc := range app.Ports(before, after, changes) {
		for _, s := range pc.Sides(before, after) {
			objs.Add(pipeline.PortObject(s.Port.Key), pipeline.NetworkObject(s.Port.NetworkKey))
			app.AddSharing(objs, s.View, s.Port)
		}
	}
	app.AddRouters(objs, before, after, changes)
	return app.Scope{Objects: objs}
}

// Invalidates implements app.App: a changed port's answers, and, by
// address, the answers for every address it had or has — whoever they
// named, since an address shared or given up changes hands; and the
// answers for the gateways of a router whose interfaces or state changed
// (a port's pair may have held one while the router was away).
func (App) Invalidates(before, after *view.View, changes []topology.Change) []of.FlowMod {
	table := pipeline.Table(pipeline.ARPResponder)
	var out []of.FlowMod
	ports := map[uint32]bool{}
	addrs := map[[2]uint64]bool{}
	byAddress := func(network uint32, ip netip.Addr) {
		k := [2]uint64{uint64(network), of.IPv4Value(ip)}
		if !addrs[k] {
			addrs[k] = true
			out = append(out, app.DeletePortFlows(table, pipeline.AppARPResponder,
				of.Match{}.Reg(pipeline.NetworkKey, uint64(network)).EthType(of.EthTypeARP).ARPTPA(ip)))
		}
	}
	for _, pc := range app.Ports(before, after, changes) {
		for _, s := range pc.Sides(before, after) {
			if !ports[s.Port.Key] {
				ports[s.Port.Key] = true
				out = append(out, app.DeleteObject(table, pipeline.AppARPResponder, pipeline.PortObject(s.Port.Key)))
			}
			as := s.Port.Addresses()
			for _, ip := range as {
				byAddress(s.Port.NetworkKey, ip)
			}
		}
	}
	for _, rc := range app.ChangedRouters(before, after, changes) {
		for _, ri := range rc.Interfaces {
			byAddress(ri.Network.Key, ri.IP)
		}
	}
	return out
}
