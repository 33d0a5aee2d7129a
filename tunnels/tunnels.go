// Package tunnels is the app that classifies traffic entering an
// integration bridge and steers traffic for remote ports into GRE and
// VXLAN tunnels. It is pure: a topology view and the facts of one bridge
// in, flows out.
//
// Tables it owns: Classifier and Egress.
//
//	Classifier  in_port=<VM>,no VLAN tag      → reg6=port key, metadata=network key, PortSecurity
//	            in_port=<tunnel>,tun_id=<seg> → FromRemote=1, metadata=network key, L2Lookup
//	            in_port=<patch>,dl_vlan=<vid>|no VLAN → pop_vlan, FromRemote=1, FromPhysical=1, metadata, Uplink
//	Egress      reg7=<local port>             → Delivery
//	            reg7=<remote port>,FromRemote=0 → tun_dst=<chassis encap_ip>, tun_id=<seg>, out <tunnel>
//	                                           (flat/vlan: [push_vlan, vlan_vid], out <patch>)
//
// One flow-based tunnel port per encapsulation serves every remote
// chassis: the flow sets tun_dst, so adding a chassis adds flows, not ports.
//
// Cookie objects: a port (its Classifier flow on its own chassis, its
// Egress flow everywhere its network is hosted) and a network (its tunnel
// Classifier flow).
//
// It is pure and imports only the app contract, pipeline, the flow model
// and the topology view.
package tunnels

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Priorities of the app's flows.
const (
	PriorityPort   = 100
	PriorityTunnel = 100
)

// App is the tunnels app.
type App struct{}

var _ app.App = App{}

// ID implements app.App.
func (App) ID() pipeline.App { return pipeline.AppTunnels }

// Flows returns the app's flows for one bridge.
func (App) Flows(v *view.View, br view.Bridge) []of.Flow { return flows(v, br, nil) }

// ObjectFlows implements app.App.
func (App) ObjectFlows(v *view.View, br view.Bridge, objs app.Objects) []of.Flow {
	return flows(v, br, objs)
}

// flows are the app's flows whose objects are in objs (all when nil).
func flows(v *view.View, br view.Bridge, objs app.Objects) []of.Flow {
	var out []of.Flow
	want := func(obj uint64) bool { return objs == nil || objs[obj] }
	// A flat or vlan network comes in from its physical network wherever
	// it is hosted or routed to: a router sending to one of its hosts
	// hears the answers there.
	for _, n := range reachable(v, br.Chassis) {
		if n.Provider() {
			if f, ok := physicalIngress(br, n); ok && want(pipeline.NetworkObject(n.Key)) {
				out = append(out, f)
			}
		}
	}
	for _, n := range v.ServedNetworks(br.Chassis) {
		if n.Provider() {
			continue
		}
		// Without a tunnel port of the network's type the bridge still
		// switches locally; it just carries the network to nobody.
		if tun, ok := br.TunnelPorts[n.Type]; ok && want(pipeline.NetworkObject(n.Key)) {
			out = append(out, of.Flow{
				Table: pipeline.Table(pipeline.Classifier), Priority: PriorityTunnel,
				Cookie: pipeline.NewCookie(0, pipeline.AppTunnels, pipeline.NetworkObject(n.Key)),
				Match:  of.Match{}.InPort(tun).TunID(uint64(n.SegmentationID)),
				Actions: []of.Action{
					of.SetReg(pipeline.FromRemote, 1),
					of.WriteMetadata{Value: uint64(n.Key)},
					of.GotoTable{Table: pipeline.Table(pipeline.L2Lookup)},
				},
			})
		}
	}
	port := func(p view.Port) {
		if p.Chassis == br.Chassis {
			out = append(out, classify(p))
		}
		n, _ := v.Network(p.NetworkID)
		if f, ok := Egress(v, br, n, p); ok {
			out = append(out, f)
		}
	}
	if objs == nil {
		for _, n := range v.HostedNetworks(br.Chassis) {
			for _, p := range v.NetworkPorts(n.ID) {
				port(*p)
			}
		}
		return out
	}
	for obj := range objs {
		if pipeline.Cookie(obj).Kind() != pipeline.KindPort {
			continue
		}
		if p, ok := v.LocatedPortByKey(pipeline.ObjectKey(obj)); ok && v.Hosts(br.Chassis, p.NetworkID) {
			port(p)
		}
	}
	return out
}

// physicalIngress classifies what a flat or vlan network's physical
// network brings in through its patch port: untagged for flat, its VLAN
// (popped) for vlan. The packet came from another chassis or from
// outside: it is never sent back out, to the physical network or into a
// tunnel. Uplink sees it first (floating IPs, router gateways).
func physicalIngress(br view.Bridge, n view.Network) (of.Flow, bool) {
	port, ok := br.PhysicalPorts[n.PhysicalNetwork]
	if !ok {
		return of.Flow{}, false
	}
	m := of.Match{}.InPort(port)
	var actions []of.Action
	if vid := n.VLAN(); vid != 0 {
		m = m.VLAN(vid)
		actions = append(actions, of.PopVLAN{})
	} else {
		m = m.NoVLAN()
	}
	actions = append(actions,
		of.SetReg(pipeline.FromRemote, 1),
		of.SetReg(pipeline.FromPhysical, 1),
		of.WriteMetadata{Value: uint64(n.Key)},
		of.GotoTable{Table: pipeline.Table(pipeline.Uplink)})
	return of.Flow{Table: pipeline.Table(pipeline.Classifier), Priority: PriorityTunnel,
		Cookie: pipeline.NewCookie(0, pipeline.AppTunnels, pipeline.NetworkObject(n.Key)),
		Match:  m, Actions: actions}, true
}

// ToPhysical are the actions that put a packet of a flat or vlan network
// on its physical network through port: tagged with its VLAN, or not.
func ToPhysical(n view.Network, port uint32) []of.Action {
	if vid := n.VLAN(); vid != 0 {
		return []of.Action{of.PushVLAN{}, of.SetField{Field: of.FieldVLANVID, Value: of.VLANPresent | uint64(vid)}, of.Output{Port: port}}
	}
	return []of.Action{of.Output{Port: port}}
}

// classify is the Classifier flow of a local port: untagged frames only.
// A VM's 802.1Q frame would otherwise ride a flat network's uplink with
// its tag and land in whichever vlan network that tag is; it matches no
// flow here and is dropped.
func classify(p view.Port) of.Flow {
	return of.Flow{
		Table: pipeline.Table(pipeline.Classifier), Priority: PriorityPort,
		Cookie: pipeline.NewCookie(0, pipeline.AppTunnels, pipeline.PortObject(p.Key)),
		Match:  of.Match{}.InPort(p.OFPort).NoVLAN(),
		Actions: []of.Action{
			of.SetReg(pipeline.SrcPortKey, uint64(p.Key)),
			of.WriteMetadata{Value: uint64(p.NetworkKey)},
			of.GotoTable{Table: pipeline.Table(pipeline.DHCP)}, // then PortSecurity
		},
	}
}

// Egress is the flow that sends a packet for port p of network n on its
// way: to Delivery when p is local, into the tunnel to p's chassis when
// not. ok is false when no tunnel reaches p's chassis.
func Egress(v *view.View, br view.Bridge, n view.Network, p view.Port) (of.Flow, bool) {
	egress := pipeline.Table(pipeline.Egress)
	ck := pipeline.NewCookie(0, pipeline.AppTunnels, pipeline.PortObject(p.Key))
	if p.Chassis == br.Chassis {
		return of.Flow{Table: egress, Priority: PriorityPort, Cookie: ck,
			Match:   of.Match{}.Reg(pipeline.DstPortKey, uint64(p.Key)),
			Actions: []of.Action{of.GotoTable{Table: pipeline.Table(pipeline.Delivery)}}}, true
	}
	steer, ok := Steer(v, br, n, p.Chassis)
	if !ok {
		return of.Flow{}, false
	}
	// Never send what came from a tunnel back into one.
	return of.Flow{Table: egress, Priority: PriorityPort, Cookie: ck,
		Match:   of.Match{}.Reg(pipeline.DstPortKey, uint64(p.Key)).Reg(pipeline.FromRemote, 0),
		Actions: steer}, true
}

// Steer returns the actions that send a packet of network n to a remote
// chassis: tunnel destination, key, and the tunnel port of the network's
// encapsulation; for a flat or vlan network, its physical network (whose
// switches deliver it by MAC). ok is false when either end lacks the
// encapsulation or the physical network.
func Steer(v *view.View, br view.Bridge, n view.Network, chassis string) ([]of.Action, bool) {
	if n.Provider() {
		port, ok := br.PhysicalPorts[n.PhysicalNetwork]
		c, ok2 := v.Chassis(chassis)
		if !ok || !ok2 || !c.Reaches(n) {
			return nil, false
		}
		return ToPhysical(n, port), true
	}
	tun, ok := br.TunnelPorts[n.Type]
	if !ok {
		return nil, false
	}
	c, ok := v.Chassis(chassis)
	if !ok || !c.HasEncap(n.Type) || !c.EncapIP.IsValid() {
		return nil, false
	}
	return []of.Action{
		of.SetField{Field: of.FieldTunDst, Value: of.IPv4Value(c.EncapIP)},
		of.SetField{Field: of.FieldTunID, Value: uint64(n.SegmentationID)},
		of.Output{Port: tun},
	}, true
}

// Affects implements app.App: a port's own flows; for a network this
// chassis starts or stops hosting, the network's tunnel flow and every
// port's egress; for a remote chassis whose endpoint changed, the egress
// of its ports. A change to this chassis' own record changes everything.
func (App) Affects(before, after *view.View, br view.Bridge, changes []topology.Change) app.Scope {
	objs := app.Objects{}
	app.AddHosting(objs, before, after, br.Chassis)
	for _, pc := range app.Ports(before, after, changes) {
		for _, s := range pc.Sides(before, after) {
			objs.Add(pipeline.PortObject(s.Port.Key))
		}
	}
	// The networks this chassis hears from other chassis: the overlays
	// it serves (hosts, or serves as a router's gateway chassis) from
	// tunnels, the flat and vlan networks it hosts or routes to from
	// their physical networks. A change of either — a router, its
	// interfaces or gateway, a VM plugged in a network of a router —
	// adds or removes their ingress flows.
	heard := func(v *view.View) map[uint32]bool {
		m := map[uint32]bool{}
		for _, n := range v.ServedNetworks(br.Chassis) {
			if !n.Provider() {
				m[n.Key] = true
			}
		}
		for _, n := range reachable(v, br.Chassis) {
			if n.Provider() {
				m[n.Key] = true
			}
		}
		return m
	}
	hb, ha := heard(before), heard(after)
	for k := range hb {
		if !ha[k] {
			objs.Add(pipeline.NetworkObject(k))
		}
	}
	for k := range ha {
		if !hb[k] {
			objs.Add(pipeline.NetworkObject(k))
		}
	}
	for _, ch := range changes {
		if ch.Resource != topology.ResourceNetwork {
			continue
		}
		for _, v := range []*view.View{before, after} {
			if n, ok := v.Network(ch.ID); ok {
				objs.Add(pipeline.NetworkObject(n.Key))
			}
		}
	}
	// A chassis' own record is in no flow of its bridge; a remote one's
	// endpoint is in the Egress of its ports.
	for _, key := range app.EndpointMoved(before, after, changes, br.Chassis) {
		objs.Add(pipeline.PortObject(key))
	}
	return app.Scope{Objects: objs}
}

// PerDestination reports whether a flow serves one destination port (a
// port's Egress) — installed on demand in reactive mode, but for ports
// plugged here (ReconcilesLocal).
func (App) PerDestination(f of.Flow) bool { return f.Table == pipeline.Table(pipeline.Egress) }

// ReconcilesLocal implements app.LocalReconciler: what delivers to a port
// plugged here is reconciled, in reactive mode too.
func (App) ReconcilesLocal() {}

// Reasons implements app.App: tunnels answers no punt (l2pop and dvr
// install its Egress flows with theirs).
func (App) Reasons() []pipeline.PuntReason { return nil }

// OnPunt implements app.App.
func (App) OnPunt(*view.View, view.Bridge, app.Punt) app.Answer {
	return app.Answer{Outcome: app.Unanswered}
}

// Invalidates implements app.App: a port whose location or network
// changed loses its reactive Egress flows, and so do the ports of a
// chassis whose tunnel endpoint changed.
func (App) Invalidates(before, after *view.View, changes []topology.Change) []of.FlowMod {
	ports := map[uint32]bool{}
	for _, pc := range app.Ports(before, after, changes) {
		for _, s := range pc.Sides(before, after) {
			if pc.InBefore && pc.InAfter && pc.Before.Chassis == pc.After.Chassis && pc.Before.NetworkID == pc.After.NetworkID {
				continue // addresses only: the egress stands
			}
			ports[s.Port.Key] = true
		}
	}
	for _, k := range app.EndpointMoved(before, after, changes, "") {
		ports[k] = true
	}
	keys := make([]uint32, 0, len(ports))
	for k := range ports {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]of.FlowMod, 0, len(keys))
	for _, k := range keys {
		out = append(out, app.DeleteObject(pipeline.Table(pipeline.Egress), pipeline.AppTunnels, pipeline.PortObject(k)))
	}
	return out
}

// Probe is a packet-out that makes the bridge resolve the underlay next
// hop of one remote chassis before the first real packet needs it.
type Probe struct {
	Remote  netip.Addr
	Actions []of.Action
}

// Probes returns one probe per remote chassis the bridge tunnels to (it
// shares a network with it, or routes to one of its networks), sorted by
// address. A userspace datapath
// tunnels natively: with no neighbour entry for the remote it sends an ARP
// and drops the packet that needed it, so without probes the first packet
// to a chassis just seen would be lost. The probe carries tunnel key 0,
// which no network uses (segmentation ids start at 1): the remote's
// Classifier drops it.
func Probes(v *view.View, br view.Bridge) []Probe {
	seen := map[netip.Addr]bool{}
	var out []Probe
	for _, n := range reachable(v, br.Chassis) {
		if n.Provider() {
			continue // no tunnel: the physical network's switches carry it
		}
		for _, host := range v.NetworkHosts(n.ID) {
			if host == br.Chassis {
				continue
			}
			steer, ok := Steer(v, br, n, host)
			if !ok {
				continue
			}
			c, _ := v.Chassis(host)
			if seen[c.EncapIP] {
				continue
			}
			seen[c.EncapIP] = true
			steer[1] = of.SetField{Field: of.FieldTunID, Value: 0}
			out = append(out, Probe{Remote: c.EncapIP, Actions: steer})
		}
	}
	slices.SortFunc(out, func(a, b Probe) int { return a.Remote.Compare(b.Remote) })
	return out
}

// Reachable are the networks a chassis sends into (reachable).
func Reachable(v *view.View, chassis string) []view.Network { return reachable(v, chassis) }

// reachable are the networks a chassis sends into: those it hosts, and
// those its routers route to (a router with an interface on a hosted
// network reaches all of its networks). In network key order, each once.
func reachable(v *view.View, chassis string) []view.Network {
	out := append([]view.Network{}, v.ServedNetworks(chassis)...)
	seen := map[string]bool{}
	for _, n := range out {
		seen[n.ID] = true
	}
	for _, r := range v.ChassisRouters(chassis) {
		for _, ri := range v.RouterInterfaces(r.ID) {
			if !seen[ri.Network.ID] {
				seen[ri.Network.ID] = true
				out = append(out, ri.Network)
			}
		}
	}
	slices.SortFunc(out, func(a, b view.Network) int { return cmp.Compare(a.Key, b.Key) })
	return out
}
