package dvr

import (
	"bytes"
	"net/netip"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
	"github.com/wyvern-sdn/wyvern/tunnels"
)

// Reasons implements app.App.
func (App) Reasons() []pipeline.PuntReason {
	return []pipeline.PuntReason{pipeline.ReasonRouteMiss, pipeline.ReasonTTLExpired, pipeline.ReasonTooBig}
}

// OnPunt answers a routed packet: one that missed L3Lookup gets the route
// to its destination and goes back into L3Lookup (held while the
// destination is a port not plugged yet, dropped when the router has no
// such destination); one whose TTL ran out, or too big for the network it
// is routed to, gets an ICMP error from the gateway, sent back out the
// port it came in on (routing happens on the sender's chassis, so that
// is the sender's).
func (App) OnPunt(v *view.View, br view.Bridge, p app.Punt) app.Answer {
	router, network := uint32(p.Reg(pipeline.RouterKey)), uint32(p.Reg(pipeline.NetworkKey))
	switch p.Reason {
	case pipeline.ReasonTTLExpired, pipeline.ReasonTooBig:
		build, outcome := TimeExceeded, app.TTLExpired
		if p.Reason == pipeline.ReasonTooBig {
			build, outcome = FragmentationNeeded, app.TooBig
		}
		reply, err := build(v, router, network, p.Frame)
		if err != nil {
			return app.Answer{Outcome: outcome}
		}
		back := []of.Action{of.Output{Port: p.InPort}}
		if p.Reg(pipeline.FromPhysical) == 1 {
			// It came in from a physical network, its VLAN popped: the
			// answer goes back tagged.
			if n, ok := v.NetworkByKey(network); ok {
				back = tunnels.ToPhysical(n, p.InPort)
			}
		}
		return app.Answer{Outcome: outcome, Send: []app.PacketOut{{Actions: back, Frame: reply}}}
	}
	if p.Packet.EthType != of.EthTypeIPv4 {
		return app.Answer{Outcome: app.Unroutable}
	}
	flows, unplugged := onMiss(v, br, router, p.Packet.IPDst)
	switch {
	case len(flows) > 0:
		return app.Answer{Outcome: app.Answered, Flows: flows, Reinject: true, Resubmit: pipeline.Table(pipeline.L3Lookup)}
	case unplugged:
		return app.Answer{Outcome: app.Held}
	}
	return app.Answer{Outcome: app.Unroutable} // a router has nowhere to flood to
}

// Affects implements app.App: the routes to a changed port and to the
// ports sharing an address with it; everything of a router whose
// interfaces or state changed, and of the routers of a network this
// chassis starts or stops hosting (its routers come and go with it); a
// network's routers' MTU checks; and the routes into a remote chassis
// whose tunnel endpoint changed.
func (App) Affects(before, after *view.View, br view.Bridge, changes []topology.Change) app.Scope {
	objs := app.Objects{}
	// Serving a router's networks as its gateway chassis (or no longer)
	// changes which routers route here, not which networks are hosted.
	if app.ServingChanged(before, after, br.Chassis) {
		return app.Everything()
	}
	for _, n := range app.HostingChanged(before, after, br.Chassis) {
		objs.Add(0)
		for _, v := range []*view.View{before, after} {
			for _, w := range []*view.View{before, after} {
				for _, ri := range w.NetworkInterfaces(n) {
					app.AddRouter(objs, v, ri.Router.ID)
				}
			}
		}
	}
	for _, pc := range app.Ports(before, after, changes) {
		for _, s := range pc.Sides(before, after) {
			objs.Add(pipeline.PortObject(s.Port.Key))
			app.AddSharing(objs, s.View, s.Port)
		}
	}
	for _, k := range app.EndpointMoved(before, after, changes, br.Chassis) {
		objs.Add(pipeline.PortObject(k))
	}
	for _, ch := range changes {
		switch ch.Resource {
		case topology.ResourceChassis:
			b, _ := before.Chassis(ch.ID)
			a, _ := after.Chassis(ch.ID)
			if ch.ID == br.Chassis && !bytes.Equal(b.DVRMAC, a.DVRMAC) {
				return app.Everything() // every route to a remote port carries it
			}
		case topology.ResourceNetwork:
			for _, v := range []*view.View{before, after} {
				for _, ri := range v.NetworkInterfaces(ch.ID) {
					objs.Add(pipeline.RouterObject(ri.Router.Key))
				}
			}
		}
	}
	if app.AddRouters(objs, before, after, changes) {
		objs.Add(0)
	}
	return app.Scope{Objects: objs}
}

// Invalidates implements app.App: the routes to a changed port, and, by
// address, the routes to every address it had or has — whoever they
// named; the routes of a router whose interfaces or state changed (by its
// key) and those to its gateways; and the routes into a chassis whose
// tunnel endpoint changed.
func (App) Invalidates(before, after *view.View, changes []topology.Change) []of.FlowMod {
	table := pipeline.Table(pipeline.L3Lookup)
	var out []of.FlowMod
	ports := map[uint32]bool{}
	addrs := map[netip.Addr]bool{}
	byAddress := func(ip netip.Addr) {
		if !addrs[ip] {
			addrs[ip] = true
			out = append(out, app.DeletePortFlows(table, pipeline.AppDVR, of.Match{}.EthType(of.EthTypeIPv4).IPv4Dst(netip.PrefixFrom(ip, 32))))
		}
	}
	byObject := func(key uint32) {
		if !ports[key] {
			ports[key] = true
			out = append(out, app.DeleteObject(table, pipeline.AppDVR, pipeline.PortObject(key)))
		}
	}
	for _, pc := range app.Ports(before, after, changes) {
		for _, s := range pc.Sides(before, after) {
			byObject(s.Port.Key)
			as := s.Port.Addresses()
			for _, ip := range as {
				byAddress(ip)
			}
		}
	}
	for _, rc := range app.ChangedRouters(before, after, changes) {
		for _, k := range rc.Keys {
			out = append(out, app.DeletePortFlows(table, pipeline.AppDVR, of.Match{}.Reg(pipeline.RouterKey, uint64(k))))
		}
		for _, ri := range rc.Interfaces {
			byAddress(ri.IP)
		}
	}
	for _, k := range app.EndpointMoved(before, after, changes, "") {
		byObject(k)
	}
	return out
}
