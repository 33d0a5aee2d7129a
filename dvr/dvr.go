// Package dvr is distributed virtual routing: east-west traffic between the
// subnets of a router is routed on the chassis of the VM that sent it, by
// that chassis' own bridge, and tunnelled straight to the chassis of the
// destination. No central node is on the path. It is pure: a topology view
// and the facts of one bridge in, flows (and ICMP errors) out.
//
// Table it owns: L3Lookup. A packet reaches it from L2Lookup, which sends
// frames a local VM addressed to a router interface's MAC here with the
// router's key in reg5 (l2pop's flow, as l2pop owns L2Lookup).
//
//	L3Lookup  reg5=<router>,dl_dst=<its MAC on a hosted subnet>,icmp,icmp_type=8,nw_dst=<any gateway of it> →
//	              echo reply built in OVS: MACs and addresses turned around, type 0, TTL 64, out IN_PORT
//	          ip,nw_ttl=0|1                   → punt (meter MeterICMPErrors): ICMP time exceeded
//	          ip,PktLarger=1                  → punt (meter MeterICMPErrors): ICMP fragmentation needed
//	          reg5=<router>,MTUChecked=0,ip,nw_dst=<subnet of a smaller MTU than another of the router's> →
//	              check_pkt_larger(MTU+14)->PktLarger, MTUChecked←1, resubmit(,L3Lookup)
//	          reg5=<router>,ip,nw_dst=<VM IP> → eth_src←…, eth_dst←VM MAC, dec_ttl,
//	                                             reg7←VM port, Routed←1, and
//	              local VM:  eth_src←router MAC on the VM's subnet, metadata←VM network, Delivery
//	              remote VM: eth_src←this chassis' DVR MAC, tun_dst, tun_id←VM network, out the tunnel
//
// A routed packet never leaves a chassis with a router MAC as its source:
// it carries the sending chassis' DVR MAC, unique to that chassis, and the
// receiving chassis puts the router MAC of the destination's subnet back
// before delivery (l2pop's Delivery flows). So the same router MAC is never
// seen on the underlay from two places.
//
// Reactive mode installs a destination's route on the first packet that
// misses (OnMiss); proactive mode installs every route of every router
// with an interface on a network the chassis hosts.
//
// Cookie objects: a port (the routes to its addresses, from every router
// that reaches it), a router (its gateway echoes and MTU checks), and none
// (the TTL and too-big guards).
//
// It is pure and imports only the app contract, pipeline, the flow model,
// the topology view and tunnels (to steer into a tunnel).
package dvr

import (
	"net"
	"net/netip"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
	"github.com/wyvern-sdn/wyvern/tunnels"
)

// Priorities in L3Lookup. A ping to the router itself is answered whatever
// its TTL, as a host would. The MTU check re-enters the table with
// MTUChecked set, where a packet too big meets its answer and any other
// its route.
const (
	PriorityGatewayEcho = 210
	PriorityTTLExpired  = 200
	PriorityTooBig      = 160
	PriorityMTUCheck    = 150
	PriorityRoute       = 100
)

// ethernetHeader is what check_pkt_larger counts beyond an IP MTU.
const ethernetHeader = 14

// ICMP echo types, and the TTL of the router's own answers.
const (
	icmpEchoReply   = 0
	icmpEchoRequest = 8
	routerTTL       = 64
)

// Flows returns the app's flows for one bridge, for every router with an
// interface on a network the chassis hosts: the TTL and too-big guards,
// answers to pings of its gateways from the hosted networks, its MTU
// checks, and a route to every address it reaches (see destinations).
func (App) Flows(v *view.View, br view.Bridge) []of.Flow { return flows(v, br, nil) }

// ObjectFlows implements app.App. Only the networks holding one of the
// port objects have their routes computed.
func (App) ObjectFlows(v *view.View, br view.Bridge, objs app.Objects) []of.Flow {
	return flows(v, br, objs)
}

// App is distributed routing.
type App struct{}

var _ app.App = App{}

// ID implements app.App.
func (App) ID() pipeline.App { return pipeline.AppDVR }

func flows(v *view.View, br view.Bridge, objs app.Objects) []of.Flow {
	routers := v.ChassisRouters(br.Chassis)
	if len(routers) == 0 {
		return nil
	}
	want := func(obj uint64) bool { return objs == nil || objs[obj] }
	var out []of.Flow
	if want(0) {
		out = icmpErrors()
	}
	hosted := map[string]bool{}
	for _, n := range v.HostedNetworks(br.Chassis) {
		hosted[n.ID] = true
	}
	for _, r := range routers {
		if want(pipeline.RouterObject(r.Key)) {
			for _, in := range v.RouterInterfaces(r.ID) {
				if hosted[in.Network.ID] {
					out = append(out, gatewayEchoes(v, in)...)
				}
			}
			out = append(out, mtuChecks(v, r)...)
		}
		if objs != nil {
			continue
		}
		for _, ri := range v.RouterInterfaces(r.ID) {
			for _, nb := range destinations(v, ri) {
				if f, ok := route(v, br, ri, nb); ok {
					out = append(out, f)
				}
			}
		}
	}
	if objs == nil {
		return out
	}
	// Some objects only: the routes to each port's addresses, from every
	// router routing on this chassis with an interface on its subnet.
	routes := map[uint32]bool{}
	for _, r := range routers {
		routes[r.Key] = true
	}
	for obj := range objs {
		if pipeline.Cookie(obj).Kind() != pipeline.KindPort {
			continue
		}
		p, ok := v.LocatedPortByKey(pipeline.ObjectKey(obj))
		if !ok {
			continue
		}
		addrs := p.Addresses()
		for _, ri := range v.NetworkInterfaces(p.NetworkID) {
			if !routes[ri.Router.Key] {
				continue
			}
			for _, ip := range addrs {
				if !ri.Prefix.Contains(ip) {
					continue
				}
				nb, ok := v.Neighbour(ri.Network.ID, ip)
				if !ok || nb.Router || !nb.Located || nb.MAC == nil || nb.Port != p.Key {
					continue
				}
				if f, ok := route(v, br, ri, nb); ok {
					out = append(out, f)
				}
			}
		}
	}
	return out
}

// icmpErrors sends routed packets whose TTL would run out to the
// controller, which answers with ICMP time exceeded from the gateway.
// dec_ttl would drop them too, but silently. It also sends the packets
// the MTU check found too big, to be answered with ICMP fragmentation
// needed.
func icmpErrors() []of.Flow {
	out := []of.Flow{{Table: pipeline.Table(pipeline.L3Lookup), Priority: PriorityTooBig,
		Cookie:  pipeline.NewCookie(0, pipeline.AppDVR, 0),
		Match:   of.Match{}.EthType(of.EthTypeIPv4).Reg(pipeline.PktLarger, 1),
		Actions: []of.Action{pipeline.Punt(pipeline.ReasonTooBig, pipeline.MeterICMPErrors)}}}
	for _, ttl := range []uint64{0, 1} {
		out = append(out, of.Flow{Table: pipeline.Table(pipeline.L3Lookup), Priority: PriorityTTLExpired,
			Cookie:  pipeline.NewCookie(0, pipeline.AppDVR, 0),
			Match:   of.Match{}.EthType(of.EthTypeIPv4).With(of.FieldIPTTL, ttl),
			Actions: []of.Action{pipeline.Punt(pipeline.ReasonTTLExpired, pipeline.MeterICMPErrors)}})
	}
	return out
}

// mtuChecks: a router between networks of different MTUs checks each
// packet to a network with a smaller MTU than one of its others, before
// routing it. Open vSwitch cannot fragment, and a frame larger than the
// destination network's MTU would be lost on the underlay or at the VM;
// the router answers it with ICMP fragmentation needed instead, so the
// sender learns the path MTU.
func mtuChecks(v *view.View, r view.Router) []of.Flow {
	ifaces := v.RouterInterfaces(r.ID)
	largest := 0
	for _, ri := range ifaces {
		largest = max(largest, ri.Network.MTU)
	}
	var out []of.Flow
	for _, to := range ifaces {
		if to.Network.MTU >= largest || to.Network.MTU <= 0 {
			continue
		}
		out = append(out, of.Flow{Table: pipeline.Table(pipeline.L3Lookup), Priority: PriorityMTUCheck,
			Cookie: pipeline.NewCookie(0, pipeline.AppDVR, pipeline.RouterObject(r.Key)),
			Match: of.Match{}.Reg(pipeline.RouterKey, uint64(r.Key)).Reg(pipeline.MTUChecked, 0).
				EthType(of.EthTypeIPv4).IPv4Dst(to.Prefix),
			Actions: []of.Action{
				of.CheckLarger(uint16(to.Network.MTU+ethernetHeader), pipeline.PktLarger),
				of.SetReg(pipeline.MTUChecked, 1),
				of.Resubmit{Table: pipeline.Table(pipeline.L3Lookup)},
			}})
	}
	return out
}

// gatewayEchoes answer, in OVS, pings that arrive at a router through its
// interface in (a VM sent them to in's MAC) for any of the router's
// gateway addresses: "can I reach my gateway" works on every chassis,
// without the controller.
func gatewayEchoes(v *view.View, in view.RouterInterface) []of.Flow {
	var out []of.Flow
	for _, to := range v.RouterInterfaces(in.Router.ID) {
		out = append(out, of.Flow{Table: pipeline.Table(pipeline.L3Lookup), Priority: PriorityGatewayEcho,
			Cookie: pipeline.NewCookie(0, pipeline.AppDVR, pipeline.RouterObject(in.Router.Key)),
			Match: of.Match{}.Reg(pipeline.RouterKey, uint64(in.Router.Key)).EthDst(in.MAC).
				EthType(of.EthTypeIPv4).IPProto(of.IPProtoICMP).With(of.FieldICMPType, icmpEchoRequest).
				IPv4Dst(netip.PrefixFrom(to.IP, 32)),
			Actions: []of.Action{
				of.Move{Src: of.FieldEthSrc, Dst: of.FieldEthDst},
				of.SetField{Field: of.FieldEthSrc, Value: of.MACValue(in.MAC)},
				of.Move{Src: of.FieldIPv4Src, Dst: of.FieldIPv4Dst},
				of.SetField{Field: of.FieldIPv4Src, Value: of.IPv4Value(to.IP)},
				of.SetField{Field: of.FieldICMPType, Value: icmpEchoReply},
				of.SetField{Field: of.FieldIPTTL, Value: routerTTL},
				of.Output{Port: of.PortInPort},
			}})
	}
	return out
}

// destinations are the addresses a router reaches through interface ri:
// the neighbours of ri's network in ri's subnet that a located port holds
// (fixed IPs, allowed address pairs, VIPs at their current holder),
// resolved to a MAC exactly as the ARP responder answers for them.
func destinations(v *view.View, ri view.RouterInterface) []view.Neighbour {
	var out []view.Neighbour
	for _, nb := range v.Neighbours(ri.Network.ID) {
		if !nb.Router && nb.Located && nb.MAC != nil && ri.Prefix.Contains(nb.IP) {
			out = append(out, nb)
		}
	}
	return out
}

// route is the flow that routes packets of router ri.Router to neighbour
// nb, in ri's subnet.
func route(v *view.View, br view.Bridge, ri view.RouterInterface, nb view.Neighbour) (of.Flow, bool) {
	p, ok := v.LocatedPortByKey(nb.Port)
	if !ok {
		return of.Flow{}, false
	}
	dst, ip := nb.MAC, nb.IP
	var actions []of.Action
	if p.Chassis == br.Chassis {
		actions = []of.Action{
			of.SetField{Field: of.FieldEthSrc, Value: of.MACValue(ri.MAC)},
			of.SetField{Field: of.FieldEthDst, Value: of.MACValue(dst)},
			of.DecTTL{},
			of.SetReg(pipeline.DstPortKey, uint64(p.Key)),
			of.SetReg(pipeline.Routed, 1),
			of.WriteMetadata{Value: uint64(ri.Network.Key)},
			of.GotoTable{Table: pipeline.Table(pipeline.Delivery)},
		}
	} else {
		own, ok := dvrMAC(v, br.Chassis)
		if !ok {
			return of.Flow{}, false
		}
		steer, ok := tunnels.Steer(v, br, ri.Network, p.Chassis)
		if !ok {
			return of.Flow{}, false
		}
		actions = append([]of.Action{
			of.SetField{Field: of.FieldEthSrc, Value: of.MACValue(own)},
			of.SetField{Field: of.FieldEthDst, Value: of.MACValue(dst)},
			of.DecTTL{},
			of.SetReg(pipeline.DstPortKey, uint64(p.Key)),
			of.SetReg(pipeline.Routed, 1),
		}, steer...)
	}
	return of.Flow{Table: pipeline.Table(pipeline.L3Lookup), Priority: PriorityRoute,
		Cookie: pipeline.NewCookie(0, pipeline.AppDVR, pipeline.PortObject(p.Key)),
		Match: of.Match{}.Reg(pipeline.RouterKey, uint64(ri.Router.Key)).EthType(of.EthTypeIPv4).
			IPv4Dst(netip.PrefixFrom(ip, 32)),
		Actions: actions}, true
}

// dvrMAC is a chassis' DVR MAC.
func dvrMAC(v *view.View, chassis string) (net.HardwareAddr, bool) {
	c, ok := v.Chassis(chassis)
	return c.DVRMAC, ok && c.DVRMAC != nil
}

// PerDestination reports whether a flow routes to one destination port:
// the flows reactive mode installs on demand.
func (App) PerDestination(f of.Flow) bool {
	return f.Table == pipeline.Table(pipeline.L3Lookup) && pipeline.Cookie(f.Cookie).App() == pipeline.AppDVR &&
		pipeline.Cookie(f.Cookie).Kind() == pipeline.KindPort
}

// OnMiss returns the route for a packet that missed L3Lookup, routed by
// the router with the given key to dst: exactly the flow the proactive mode
// would hold, or nothing when no located port in a subnet of that router
// holds dst (or the router does not route on this chassis). The address
// is looked up in one network's neighbours, so a punt costs the ports of
// that network, not of the cloud.
func OnMiss(v *view.View, br view.Bridge, router uint32, dst netip.Addr) []of.Flow {
	flows, _ := onMiss(v, br, router, dst)
	return flows
}

// onMiss is OnMiss, and whether dst is the address of a port that is not
// plugged yet (a packet for it is held, not dropped).
func onMiss(v *view.View, br view.Bridge, router uint32, dst netip.Addr) (flows []of.Flow, unplugged bool) {
	r, ok := v.RouterByKey(router)
	if !ok || !v.RoutesOn(br.Chassis, r.Key) {
		return nil, false
	}
	for _, ri := range v.RouterInterfaces(r.ID) {
		if !ri.Prefix.Contains(dst) {
			continue
		}
		// As destinations would give it, without the whole table.
		nb, ok := v.Neighbour(ri.Network.ID, dst)
		if !ok || nb.Router || nb.MAC == nil {
			continue
		}
		if !nb.Located {
			unplugged = true
			continue
		}
		if f, ok := route(v, br, ri, nb); ok {
			return []of.Flow{f}, false
		}
	}
	return nil, unplugged
}
