package l2pop

import (
	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
	"github.com/wyvern-sdn/wyvern/tunnels"
)

// PerDestination reports whether a flow serves one destination port (a
// known MAC in L2Lookup) — installed on demand in reactive mode.
func (App) PerDestination(f of.Flow) bool {
	return f.Table == pipeline.Table(pipeline.L2Lookup) && pipeline.Cookie(f.Cookie).Kind() == pipeline.KindPort
}

// ReconcilesLocal implements app.LocalReconciler: what delivers to a port
// plugged here is reconciled, in reactive mode too.
func (App) ReconcilesLocal() {}

// Reasons implements app.App.
func (App) Reasons() []pipeline.PuntReason { return []pipeline.PuntReason{pipeline.ReasonL2Miss} }

// OnPunt answers a packet that missed L2Lookup: the flows the proactive
// mode would hold for its destination, then the packet back into
// L2Lookup. A destination that is a port not plugged yet is held; an
// unknown one is flooded.
func (App) OnPunt(v *view.View, br view.Bridge, p app.Punt) app.Answer {
	network := uint32(p.Reg(pipeline.NetworkKey))
	flows := OnMiss(v, br, network, p.Packet.EthDst)
	if len(flows) > 0 {
		return app.Answer{Outcome: app.Answered, Flows: flows, Reinject: true, Resubmit: pipeline.Table(pipeline.L2Lookup)}
	}
	if n, ok := v.NetworkByKey(network); ok {
		if q, ok := v.PortWithMAC(n.ID, p.Packet.EthDst); ok && !q.Located() {
			return app.Answer{Outcome: app.Held}
		}
	}
	return app.Answer{Outcome: app.Flooded, Reinject: true, Resubmit: pipeline.Table(pipeline.Flood)}
}

// OnMiss returns the flows that serve a packet that missed L2Lookup in
// network (a network key) towards dst: exactly the per-destination flows
// the proactive mode would install for that port — the L2Lookup flow of
// each of its MACs and its Egress flow, built by the same functions — so
// reactive ⊆ proactive by construction. Empty when no located port of the
// network has dst, or the network is not hosted here. It costs the ports
// of one network, not the bridge's whole flow set.
func OnMiss(v *view.View, br view.Bridge, network uint32, dst []byte) []of.Flow {
	n, ok := v.NetworkByKey(network)
	if !ok || !v.Hosts(br.Chassis, n.ID) {
		return nil
	}
	own := stationsOf(v, n.ID, dst)
	if len(own) == 0 {
		return nil
	}
	port := *own[0].port
	var out []of.Flow
	for _, st := range own {
		out = append(out, lookup(n, st))
	}
	if f, ok := tunnels.Egress(v, br, n, port); ok {
		out = append(out, f)
	}
	return out
}

// Affects implements app.App: a changed port's own flows, its network's
// flood, and the ports sharing a MAC with it (pair MACs are stations only
// while one port claims them); a router's MAC flows and its networks; the
// flood of networks a remote chassis hosts when its endpoint changes; and
// all of a network this chassis starts or stops hosting.
func (App) Affects(before, after *view.View, br view.Bridge, changes []topology.Change) app.Scope {
	objs := app.Objects{}
	if app.AddHosting(objs, before, after, br.Chassis) {
		objs.Add(0) // the multicast flow comes with the first hosted network
	}
	for _, pc := range app.Ports(before, after, changes) {
		for _, s := range pc.Sides(before, after) {
			objs.Add(pipeline.PortObject(s.Port.Key), pipeline.NetworkObject(s.Port.NetworkKey))
			app.AddSharing(objs, s.View, s.Port)
		}
	}
	for _, ch := range changes {
		if ch.Resource != topology.ResourceChassis || ch.ID == br.Chassis || !app.EndpointChanged(before, after, ch.ID) {
			continue // only a remote endpoint is in the flood's flows
		}
		for _, v := range []*view.View{before, after} {
			for _, n := range v.HostedNetworks(ch.ID) {
				objs.Add(pipeline.NetworkObject(n.Key))
			}
		}
	}
	app.AddRouters(objs, before, after, changes)
	return app.Scope{Objects: objs}
}

// Invalidates implements app.App: the L2Lookup flows that switched to a
// changed port, and, by MAC, those that switched any MAC it had or has to
// whoever held it then (a MAC shared or given up changes hands); and
// those of the ports of a chassis whose tunnel endpoint changed.
func (App) Invalidates(before, after *view.View, changes []topology.Change) []of.FlowMod {
	table := pipeline.Table(pipeline.L2Lookup)
	var out []of.FlowMod
	ports := map[uint32]bool{}
	macs := map[[2]uint64]bool{} // network key, MAC
	for _, pc := range app.Ports(before, after, changes) {
		for _, s := range pc.Sides(before, after) {
			if !ports[s.Port.Key] {
				ports[s.Port.Key] = true
				out = append(out, app.DeleteObject(table, pipeline.AppL2Pop, pipeline.PortObject(s.Port.Key)))
			}
			ms := s.Port.MACs()
			for _, m := range ms {
				k := [2]uint64{uint64(s.Port.NetworkKey), of.MACValue(m)}
				if !macs[k] {
					macs[k] = true
					out = append(out, app.DeletePortFlows(table, pipeline.AppL2Pop,
						of.Match{}.Reg(pipeline.NetworkKey, uint64(s.Port.NetworkKey)).EthDst(m)))
				}
			}
		}
	}
	for _, key := range app.EndpointMoved(before, after, changes, "") {
		if !ports[key] {
			ports[key] = true
			out = append(out, app.DeleteObject(table, pipeline.AppL2Pop, pipeline.PortObject(key)))
		}
	}
	return out
}
