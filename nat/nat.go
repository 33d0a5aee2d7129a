// Package nat is the way out of the cloud and back in: routers' gateways
// on external networks with SNAT on a gateway chassis, floating IPs and
// port forwardings translated on the chassis where their port lives, and
// routing to hosts of flat and vlan networks, whose MACs are learned by
// ARP. It is pure: a topology view and the facts of one bridge in, flows
// and the packets to send out.
//
// Tables it owns: Uplink (and the table after it) and SNAT (and the two
// after it); it adds flows to L3Lookup and L2Lookup for routers that
// reach outside.
//
//	Uplink    from a physical network (its VLAN popped, FromPhysical=1):
//	          ARP request for a floating IP served here → reply with this chassis' DVR MAC
//	          ARP request for a router's gateway (its gateway chassis) → reply with the gateway MAC
//	          ARP request for a router interface on a flat/vlan network (its home chassis) → reply
//	          ARP reply to this chassis' DVR MAC or a gateway MAC here → punt (neighbour learned)
//	          to a port forwarding (proto, floating IP, port) → reg5←router, ct(commit, DNAT to the internal address and port)
//	          to a floating IP → reg5←router, ct(commit, DNAT to the fixed IP)
//	          to a gateway address (SNAT on) → reg5←router, ct(un-SNAT); then L3Lookup
//	          to a gateway MAC from a router's own flat/vlan network → reg5←router, SNAT
//	          to a router interface MAC on its home chassis → reg5←router, L3Lookup
//	Uplink+1  after conntrack: to the gateway address still (no connection) → drop; else L3Lookup
//	L3Lookup  reg5=router with a gateway: its own overlay subnets that no route matched → L3Lookup+1 (miss);
//	          flat/vlan subnets: learned hosts → DVR MAC, the host's MAC, out the physical network;
//	          unknown hosts → punt (resolve: ARP from the controller); anything else → SNAT
//	SNAT      from a floating IP's fixed IP or a forwarded port here → ct(commit, SNAT to the floating IP)
//	          on the gateway chassis → ct(commit, SNAT to the gateway address) (or none, SNAT off)
//	          elsewhere → DVR MAC → gateway MAC, to the gateway chassis (tunnel or physical network)
//	SNAT+1    source MAC: this chassis' DVR MAC for a floating IP, the gateway MAC for SNAT
//	SNAT+2    destination MAC: a floating IP or gateway of the external network (hairpin), a static
//	          route's next hop, else the gateway's next hop (learned by ARP; unknown → punt resolve);
//	          dec_ttl, tagged, out the uplink
//
// Floating IPs answer ARP with the DVR MAC of the chassis where their port
// lives — a MAC of that chassis, unique to it — so the physical network
// learns where each floating IP is, and a migration moves it (the new
// chassis announces it with a gratuitous ARP). Conntrack zone: the
// router's (pipeline.RouterZone), on every chassis.
//
// Cookie objects: a router (everything it does here), a network (learning
// the ARP replies of its physical network).
package nat

import (
	"net"
	"net/netip"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
	"github.com/wyvern-sdn/wyvern/tunnels"
)

// Priorities.
const (
	PriorityARPAnswer   = 120
	PriorityLearn       = 110
	PriorityForwarding  = 100
	PriorityFloatingIP  = 90
	PriorityGateway     = 85
	PriorityInterface   = 80
	PriorityOnLink      = 100
	PriorityHostRoute   = 100 // as dvr's routes: one address
	PriorityStaticRoute = 10  // + the prefix length
	PrioritySubnet      = 3   // above the ports' punt flows (1)
	PriorityOutward     = 2
	PriorityDefault     = 10
	PriorityDrop        = 100
)

// Kinds of resolve punt, the punt's data.
const (
	resolveHost    = 1 // a host of a flat/vlan subnet of the router
	resolveNextHop = 2 // the router's next hop outside
)

// App is the north-south app.
type App struct{}

var _ app.App = App{}

// ID implements app.App.
func (App) ID() pipeline.App { return pipeline.AppNAT }

// Flows implements app.App.
func (App) Flows(v *view.View, br view.Bridge) []of.Flow { return flows(v, br) }

// ObjectFlows implements app.App.
func (App) ObjectFlows(v *view.View, br view.Bridge, objs app.Objects) []of.Flow {
	return app.OnlyObjects(flows(v, br), objs)
}

// PerDestination implements app.App: none; the app's flows are few, per
// router and per floating IP, and reactive mode installs them too.
func (App) PerDestination(of.Flow) bool { return false }

// Reasons implements app.App.
func (App) Reasons() []pipeline.PuntReason {
	return []pipeline.PuntReason{pipeline.ReasonNeighbour, pipeline.ReasonResolve}
}

// Invalidates implements app.App: the app installs no reactive flow.
func (App) Invalidates(*view.View, *view.View, []topology.Change) []of.FlowMod { return nil }

// Affects implements app.App: every router's flows here, when anything
// they read may have changed — a router, a floating IP, a learned
// neighbour, a chassis (gateway choice, reachability, DVR MAC), a network
// or subnet, or a port that a floating IP or port forwarding names or
// that plugs into a router's network; the networks' learning flows when
// this chassis' hosting changed.
func (App) Affects(before, after *view.View, br view.Bridge, changes []topology.Change) app.Scope {
	for _, ch := range changes {
		switch ch.Resource {
		case topology.ResourceRouter, topology.ResourceFloatingIP, topology.ResourceNeighbour,
			topology.ResourceChassis, topology.ResourceNetwork, topology.ResourceSubnet:
			return app.Everything()
		}
	}
	if len(app.HostingChanged(before, after, br.Chassis)) > 0 || app.ServingChanged(before, after, br.Chassis) {
		return app.Everything()
	}
	for _, pc := range app.Ports(before, after, changes) {
		for _, s := range pc.Sides(before, after) {
			if referenced(s.View, s.Port) || len(s.View.NetworkInterfaces(s.Port.NetworkID)) > 0 {
				return app.Everything()
			}
		}
	}
	return app.Scope{}
}

// referenced reports whether a floating IP or port forwarding names the
// port.
func referenced(v *view.View, p view.Port) bool {
	for _, f := range v.FloatingIPs() {
		if f.Port.ID == p.ID {
			return true
		}
		for _, fw := range f.Forwardings {
			if fw.Port.ID == p.ID {
				return true
			}
		}
	}
	return false
}

// here is what one bridge knows of its own chassis.
type here struct {
	v      *view.View
	br     view.Bridge
	dvrMAC net.HardwareAddr // nil: the chassis has none yet
}

func flows(v *view.View, br view.Bridge) []of.Flow {
	c, ok := v.Chassis(br.Chassis)
	if !ok {
		return nil
	}
	h := here{v: v, br: br, dvrMAC: c.DVRMAC}
	var out []of.Flow
	for _, r := range v.ChassisRouters(br.Chassis) {
		out = append(out, h.router(r)...)
	}
	// Gateway beacons (a gateway chassis telling the physical network
	// where its gateway MAC is) are for the switches: dropped here.
	if len(br.PhysicalPorts) > 0 {
		out = append(out, of.Flow{Table: pipeline.Table(pipeline.Uplink), Priority: PriorityARPAnswer,
			Cookie: pipeline.NewCookie(0, pipeline.AppNAT, 0), Match: of.Match{}.EthType(BeaconEthType)})
	}
	// ARP replies to this chassis' DVR MAC on its physical networks: the
	// answers to the ARP requests it sent for hosts and next hops.
	if h.dvrMAC != nil {
		for _, n := range tunnels.Reachable(v, br.Chassis) {
			if _, ok := br.PhysicalPorts[n.PhysicalNetwork]; ok && n.Provider() {
				out = append(out, learn(n, h.dvrMAC, pipeline.NewCookie(0, pipeline.AppNAT, pipeline.NetworkObject(n.Key))))
			}
		}
	}
	return out
}

// learn punts the ARP replies of a physical network sent to mac.
func learn(n view.Network, mac net.HardwareAddr, cookie uint64) of.Flow {
	return of.Flow{Table: pipeline.Table(pipeline.Uplink), Priority: PriorityLearn, Cookie: cookie,
		Match:   of.Match{}.Reg(pipeline.NetworkKey, uint64(n.Key)).EthType(of.EthTypeARP).ARPOp(of.ARPReply).EthDst(mac),
		Actions: []of.Action{pipeline.Punt(pipeline.ReasonNeighbour, pipeline.MeterNeighbours)}}
}

// arpAnswer answers, in OVS, an ARP request from a physical network for ip
// with mac, back out the port it came in (tagged again: Classifier popped
// its VLAN).
func arpAnswer(n view.Network, ip netip.Addr, mac net.HardwareAddr, cookie uint64) of.Flow {
	macV, ipV := of.MACValue(mac), of.IPv4Value(ip)
	actions := []of.Action{
		of.Move{Src: of.FieldEthSrc, Dst: of.FieldEthDst},
		of.SetField{Field: of.FieldEthSrc, Value: macV},
		of.SetField{Field: of.FieldARPOp, Value: of.ARPReply},
		of.Move{Src: of.FieldARPSHA, Dst: of.FieldARPTHA},
		of.Move{Src: of.FieldARPSPA, Dst: of.FieldARPTPA},
		of.SetField{Field: of.FieldARPSHA, Value: macV},
		of.SetField{Field: of.FieldARPSPA, Value: ipV},
	}
	actions = append(actions, tunnels.ToPhysical(n, of.PortInPort)...)
	return of.Flow{Table: pipeline.Table(pipeline.Uplink), Priority: PriorityARPAnswer, Cookie: cookie,
		Match: of.Match{}.Reg(pipeline.NetworkKey, uint64(n.Key)).EthType(of.EthTypeARP).
			ARPOp(of.ARPRequest).ARPTPA(ip),
		Actions: actions}
}

// router is everything router r does on this chassis north-south.
func (h here) router(r view.Router) []of.Flow {
	v, br := h.v, h.br
	ck := pipeline.NewCookie(0, pipeline.AppNAT, pipeline.RouterObject(r.Key))
	zone := pipeline.RouterZone(r.Key)
	l3, snat, uplink := pipeline.Table(pipeline.L3Lookup), pipeline.Table(pipeline.SNAT), pipeline.Table(pipeline.Uplink)
	rk := uint64(r.Key)
	inRouter := of.Match{}.Reg(pipeline.RouterKey, rk).EthType(of.EthTypeIPv4)
	var out []of.Flow
	add := func(table, prio uint8, m of.Match, actions ...of.Action) {
		out = append(out, of.Flow{Table: table, Priority: uint16(prio), Cookie: ck, Match: m, Actions: actions})
	}
	g, hasGW := v.RouterGateway(r.ID)
	gwChassis, hasGWC := v.GatewayChassis(r.ID)
	onGW := hasGW && hasGWC && gwChassis == br.Chassis

	// L3Lookup: what the router's own subnets hold that no route matched,
	// and the hosts of its flat and vlan subnets.
	for _, ri := range v.RouterInterfaces(r.ID) {
		if ri.Network.Provider() {
			port, ok := br.PhysicalPorts[ri.Network.PhysicalNetwork]
			if !ok || h.dvrMAC == nil {
				// This chassis cannot reach that network: what is in it
				// is dropped here, never sent outside through SNAT.
				add(l3, PrioritySubnet, inRouter.IPv4Dst(ri.Prefix))
				continue
			}
			add(l3, PrioritySubnet, inRouter.IPv4Dst(ri.Prefix),
				pipeline.Punt(pipeline.ReasonResolve, pipeline.MeterNeighbours, resolveHost))
			for _, ip := range v.ExternalNeighbours(ri.Network.ID) {
				if !ri.Prefix.Contains(ip) || ip == ri.IP {
					continue
				}
				if nb, ok := v.Neighbour(ri.Network.ID, ip); ok && nb.Port != 0 {
					continue // a port's address: dvr routes to the port
				}
				mac, _ := v.ExternalNeighbour(ri.Network.ID, ip)
				add(l3, PriorityHostRoute, inRouter.IPv4Dst(netip.PrefixFrom(ip, 32)),
					append([]of.Action{
						of.SetField{Field: of.FieldEthSrc, Value: of.MACValue(h.dvrMAC)},
						of.SetField{Field: of.FieldEthDst, Value: of.MACValue(mac)},
						of.DecTTL{},
						of.SetReg(pipeline.Routed, 1),
					}, tunnels.ToPhysical(ri.Network, port)...)...)
			}
			// The way in from the physical network: one chassis answers
			// for the router's address there and takes what is sent to
			// its MAC.
			if home, ok := v.ProviderHome(r.ID, ri.Network); ok && home == br.Chassis {
				out = append(out, arpAnswer(ri.Network, ri.IP, ri.MAC, ck))
				add(uplink, PriorityInterface, of.Match{}.Reg(pipeline.NetworkKey, uint64(ri.Network.Key)).
					EthType(of.EthTypeIPv4).EthDst(ri.MAC),
					of.SetReg(pipeline.RouterKey, rk), of.GotoTable{Table: l3})
			}
			continue
		}
		if hasGW {
			add(l3, PrioritySubnet, inRouter.IPv4Dst(ri.Prefix), of.GotoTable{Table: l3 + 1})
		}
	}
	out = append(out, h.staticRoutes(r, ck)...)
	if !hasGW {
		return out
	}
	add(l3, PriorityOutward, inRouter, of.GotoTable{Table: snat})
	// To the gateway address itself from outside with SNAT off: nothing
	// behind it answers (sent on, it would come back until its TTL ran
	// out). From inside, it is the reply to an outside address hairpinned
	// through the SNAT, and goes on.
	add(l3, PrioritySubnet, inRouter.Reg(pipeline.FromPhysical, 1).IPv4Dst(netip.PrefixFrom(g.IP, 32)))

	extPort, hasExt := br.PhysicalPorts[g.Network.PhysicalNetwork]
	ext := g.Network
	extMatch := of.Match{}.Reg(pipeline.NetworkKey, uint64(ext.Key))
	var fips []view.FloatingIP
	for _, f := range v.FloatingIPsOn(br.Chassis) {
		if f.Router.Key == r.Key {
			fips = append(fips, f)
		}
	}
	afterCT := uplink + 1

	// Floating IPs and port forwardings served here.
	if hasExt && h.dvrMAC != nil {
		for _, f := range fips {
			out = append(out, arpAnswer(ext, f.IP, h.dvrMAC, ck))
			to := extMatch.EthType(of.EthTypeIPv4).EthDst(h.dvrMAC).IPv4Dst(netip.PrefixFrom(f.IP, 32))
			for _, fw := range f.Forwardings {
				if fw.Port.Chassis != br.Chassis {
					continue
				}
				add(uplink, PriorityForwarding, withPort(to, fw.Protocol, false, fw.ExternalPort),
					of.SetReg(pipeline.RouterKey, rk),
					of.CT{Commit: true, Zone: zone, Table: afterCT, NAT: of.NAT{Kind: of.NATDst, Addr: fw.InternalIP, Port: fw.InternalPort}})
				add(snat, PriorityForwarding, withPort(inRouter.IPv4Src(netip.PrefixFrom(fw.InternalIP, 32)), fw.Protocol, true, fw.InternalPort),
					of.CT{Commit: true, Zone: zone, Table: snat + 1, NAT: of.NAT{Kind: of.NATSrc, Addr: f.IP, Port: fw.ExternalPort}})
			}
			if f.Port.Key != 0 {
				add(uplink, PriorityFloatingIP, to,
					of.SetReg(pipeline.RouterKey, rk),
					of.CT{Commit: true, Zone: zone, Table: afterCT, NAT: of.NAT{Kind: of.NATDst, Addr: f.FixedIP}})
				add(snat, PriorityFloatingIP, inRouter.IPv4Src(netip.PrefixFrom(f.FixedIP, 32)),
					of.CT{Commit: true, Zone: zone, Table: snat + 1, NAT: of.NAT{Kind: of.NATSrc, Addr: f.IP}})
			} else {
				add(uplink, PriorityInterface, to) // not forwarded: dropped
			}
			add(snat+1, PriorityFloatingIP, inRouter.IPv4Src(netip.PrefixFrom(f.IP, 32)),
				of.SetField{Field: of.FieldEthSrc, Value: of.MACValue(h.dvrMAC)}, of.GotoTable{Table: snat + 2})
		}
	}

	// The gateway: SNAT here, or the way to the chassis that does it.
	switch {
	case onGW && hasExt:
		out = append(out, arpAnswer(ext, g.IP, g.MAC, ck))
		out = append(out, learn(ext, g.MAC, ck))
		if g.SNAT {
			add(uplink, PriorityGateway, extMatch.EthType(of.EthTypeIPv4).EthDst(g.MAC).IPv4Dst(netip.PrefixFrom(g.IP, 32)),
				of.SetReg(pipeline.RouterKey, rk), of.CT{Zone: zone, Table: afterCT, NAT: of.NAT{Kind: of.NATReverse}})
			add(afterCT, PriorityDrop, inRouter.IPv4Dst(netip.PrefixFrom(g.IP, 32))) // no connection: unsolicited
			add(snat, PriorityDefault, inRouter,
				of.CT{Commit: true, Zone: zone, Table: snat + 1, NAT: of.NAT{Kind: of.NATSrc, Addr: g.IP}})
		} else {
			add(uplink, PriorityGateway, extMatch.EthType(of.EthTypeIPv4).EthDst(g.MAC),
				of.SetReg(pipeline.RouterKey, rk), of.GotoTable{Table: l3})
			add(snat, PriorityDefault, inRouter, of.GotoTable{Table: snat + 1})
		}
		add(snat+1, PriorityDefault, inRouter,
			of.SetField{Field: of.FieldEthSrc, Value: of.MACValue(g.MAC)}, of.GotoTable{Table: snat + 2})
		// What other chassis send here to be translated, in the router's
		// own networks, to the gateway MAC.
		for _, ri := range v.RouterInterfaces(r.ID) {
			m := of.Match{}.Reg(pipeline.NetworkKey, uint64(ri.Network.Key)).EthType(of.EthTypeIPv4).EthDst(g.MAC)
			if ri.Network.Provider() {
				add(uplink, PriorityGateway, m, of.SetReg(pipeline.RouterKey, rk), of.GotoTable{Table: snat})
			} else {
				add(pipeline.Table(pipeline.L2Lookup), PriorityGateway, m.Reg(pipeline.FromRemote, 1),
					of.SetReg(pipeline.RouterKey, rk), of.GotoTable{Table: snat})
			}
		}
	case hasGWC && h.dvrMAC != nil:
		// Not the gateway chassis: to it, as if switched in the network
		// the packet came from, addressed to the gateway MAC.
		for _, ri := range v.RouterInterfaces(r.ID) {
			if !v.Hosts(br.Chassis, ri.Network.ID) {
				continue
			}
			steer, ok := tunnels.Steer(v, br, ri.Network, gwChassis)
			if !ok {
				continue
			}
			add(snat, PriorityDefault, inRouter.Reg(pipeline.NetworkKey, uint64(ri.Network.Key)),
				append([]of.Action{
					of.SetField{Field: of.FieldEthSrc, Value: of.MACValue(h.dvrMAC)},
					of.SetField{Field: of.FieldEthDst, Value: of.MACValue(g.MAC)},
				}, steer...)...)
		}
	}
	if (onGW || len(fips) > 0) && hasExt {
		add(afterCT, PriorityDefault, inRouter, of.GotoTable{Table: l3})
		out = append(out, h.nextHops(r, g, extPort, ck)...)
	}
	return out
}

// withPort narrows a match to a TCP or UDP port, as source or destination.
func withPort(m of.Match, proto uint8, source bool, port uint16) of.Match {
	m = m.IPProto(proto)
	switch {
	case proto == of.IPProtoTCP && source:
		return m.With(of.FieldTCPSrc, uint64(port))
	case proto == of.IPProtoTCP:
		return m.With(of.FieldTCPDst, uint64(port))
	case source:
		return m.With(of.FieldUDPSrc, uint64(port))
	}
	return m.With(of.FieldUDPDst, uint64(port))
}

// nextHops is SNAT+2: the destination MAC of what leaves through the
// router's gateway, then out the uplink. Addresses of the external
// network the cloud itself answers for (floating IPs, other routers'
// gateways) go straight to their chassis: traffic to a floating IP from
// inside hairpins through the NAT without leaving for the outside router.
func (h here) nextHops(r view.Router, g view.Gateway, extPort uint32, ck uint64) []of.Flow {
	v := h.v
	table := pipeline.Table(pipeline.SNAT) + 2
	in := of.Match{}.Reg(pipeline.RouterKey, uint64(r.Key)).EthType(of.EthTypeIPv4)
	var out []of.Flow
	to := func(prio uint16, m of.Match, mac net.HardwareAddr) {
		out = append(out, of.Flow{Table: table, Priority: prio, Cookie: ck, Match: m,
			Actions: append([]of.Action{of.SetField{Field: of.FieldEthDst, Value: of.MACValue(mac)}, of.DecTTL{}},
				tunnels.ToPhysical(g.Network, extPort)...)})
	}
	for _, f := range v.FloatingIPs() {
		if f.Network.ID != g.Network.ID {
			continue
		}
		if c, ok := v.FloatingIPChassis(f); ok {
			if ch, ok := v.Chassis(c); ok && ch.DVRMAC != nil {
				to(PriorityOnLink, in.IPv4Dst(netip.PrefixFrom(f.IP, 32)), ch.DVRMAC)
			}
		}
	}
	for _, other := range v.RoutersWithGateway() {
		og, _ := v.RouterGateway(other.ID)
		// Its own gateway too, unless it is here: the physical network
		// does not send a frame back where it came from.
		if c, ok := v.GatewayChassis(other.ID); ok && og.Network.ID == g.Network.ID && c != h.br.Chassis {
			to(PriorityOnLink, in.IPv4Dst(netip.PrefixFrom(og.IP, 32)), og.MAC)
		}
	}
	for _, rt := range v.StaticRoutes(r.ID) {
		if !g.Prefix.Contains(rt.NextHop) {
			continue
		}
		if mac, ok := v.ExternalNeighbour(g.Network.ID, rt.NextHop); ok {
			to(uint16(PriorityStaticRoute+rt.Dst.Bits()), in.IPv4Dst(rt.Dst), mac)
		}
	}
	if !g.NextHop.IsValid() {
		return out
	}
	if mac, ok := v.ExternalNeighbour(g.Network.ID, g.NextHop); ok {
		to(PriorityDefault-1, in, mac)
	} else {
		out = append(out, of.Flow{Table: table, Priority: PriorityDefault - 1, Cookie: ck, Match: in,
			Actions: []of.Action{pipeline.Punt(pipeline.ReasonResolve, pipeline.MeterNeighbours, resolveNextHop)}})
	}
	return out
}

// staticRoutes are a router's static routes whose next hop is a port of
// one of its subnets (a VM routing for others): L3Lookup sends the
// destination prefix to that port, as dvr routes to the port itself.
// Routes via the external network are SNAT+2's.
func (h here) staticRoutes(r view.Router, ck uint64) []of.Flow {
	v, br := h.v, h.br
	var out []of.Flow
	for _, rt := range v.StaticRoutes(r.ID) {
		for _, ri := range v.RouterInterfaces(r.ID) {
			if !ri.Prefix.Contains(rt.NextHop) {
				continue
			}
			nb, ok := v.Neighbour(ri.Network.ID, rt.NextHop)
			if !ok && ri.Network.Provider() {
				// A physical router of a flat/vlan subnet: by its
				// learned MAC (Solicitations asks for it).
				mac, known := v.ExternalNeighbour(ri.Network.ID, rt.NextHop)
				port, reach := br.PhysicalPorts[ri.Network.PhysicalNetwork]
				if known && reach && h.dvrMAC != nil {
					out = append(out, of.Flow{Table: pipeline.Table(pipeline.L3Lookup), Priority: uint16(PriorityStaticRoute + rt.Dst.Bits()),
						Cookie: ck, Match: of.Match{}.Reg(pipeline.RouterKey, uint64(r.Key)).EthType(of.EthTypeIPv4).IPv4Dst(rt.Dst),
						Actions: append([]of.Action{of.SetField{Field: of.FieldEthSrc, Value: of.MACValue(h.dvrMAC)},
							of.SetField{Field: of.FieldEthDst, Value: of.MACValue(mac)}, of.DecTTL{}, of.SetReg(pipeline.Routed, 1)},
							tunnels.ToPhysical(ri.Network, port)...)})
				}
				break
			}
			if !ok || nb.Router || !nb.Located || nb.MAC == nil {
				continue
			}
			p, ok := v.LocatedPortByKey(nb.Port)
			if !ok {
				continue
			}
			var tail []of.Action
			if p.Chassis == br.Chassis {
				tail = []of.Action{of.SetField{Field: of.FieldEthSrc, Value: of.MACValue(ri.MAC)},
					of.WriteMetadata{Value: uint64(ri.Network.Key)}, of.GotoTable{Table: pipeline.Table(pipeline.Delivery)}}
			} else {
				steer, ok := tunnels.Steer(v, br, ri.Network, p.Chassis)
				if !ok || h.dvrMAC == nil {
					continue
				}
				tail = append([]of.Action{of.SetField{Field: of.FieldEthSrc, Value: of.MACValue(h.dvrMAC)}}, steer...)
			}
			actions := []of.Action{of.SetField{Field: of.FieldEthDst, Value: of.MACValue(nb.MAC)}, of.DecTTL{},
				of.SetReg(pipeline.DstPortKey, uint64(p.Key)), of.SetReg(pipeline.Routed, 1)}
			// The local case's eth_src comes first in the list, before the
			// instructions that end it.
			if p.Chassis == br.Chassis {
				actions = append([]of.Action{tail[0]}, append(actions, tail[1:]...)...)
			} else {
				actions = append(actions, tail...)
			}
			out = append(out, of.Flow{Table: pipeline.Table(pipeline.L3Lookup), Priority: uint16(PriorityStaticRoute + rt.Dst.Bits()),
				Cookie: ck, Match: of.Match{}.Reg(pipeline.RouterKey, uint64(r.Key)).EthType(of.EthTypeIPv4).IPv4Dst(rt.Dst),
				Actions: actions})
			break
		}
	}
	return out
}
