package apps

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// mutator makes random changes to a topology through the store's own
// API, and reports them as the FSM would publish them.
type mutator struct {
	t     *testing.T
	s     *topology.Store
	rng   *rand.Rand
	index uint64
	next  int    // for new port names
	ofp   uint32 // ofports are never reused, as OVS's
	// external: the fixture is topologytest.External, and north-south
	// changes are made too.
	external bool
}

func (m *mutator) str(s string) *string { return &s }

func (m *mutator) pick(ids []string) string { return ids[m.rng.Intn(len(ids))] }

// vmPorts are the ports that are not router interfaces.
func (m *mutator) vmPorts() []string {
	var out []string
	for _, p := range m.s.Ports() {
		if p.DeviceOwner != topology.OwnerRouterInterface && p.DeviceOwner != topology.OwnerRouterGateway && p.DeviceOwner != topology.OwnerFloatingIP {
			out = append(out, p.ID)
		}
	}
	return out
}

func ch(index uint64, resource, id string) topology.Change {
	return topology.Change{Index: index, Resource: resource, Op: "update", ID: id}
}

// step makes one random change; statusOnly says it changed nothing a
// flow can see.
func (m *mutator) step() (changes []topology.Change, what string, statusOnly bool) {
	m.index++
	i := m.index
	pairs := func() *[]topology.AddressPair {
		vips := []string{"10.0.0.100", "10.0.0.101", "10.1.0.50", "10.0.0.1", "10.0.0.0/28"}
		macs := []string{"", "fa:16:3e:aa:00:01", "fa:16:3e:aa:00:02", "fa:16:3e:00:00:02"}
		var ps []topology.AddressPair
		for range m.rng.Intn(3) {
			ps = append(ps, topology.AddressPair{IPAddress: m.pick(vips), MACAddress: m.pick(macs)})
		}
		return &ps
	}
	ops, networks := 13, []string{"A", "B"}
	if m.external {
		ops, networks = 19, []string{"A", "B", "V"}
	}
	switch op := m.rng.Intn(ops); op {
	case 13: // a floating IP moves to a port, or off it
		port := ""
		if m.rng.Intn(3) > 0 {
			port = m.pick(m.vmPorts())
		}
		if _, err := m.s.UpdateFloatingIP(i, topology.FloatingIPSpec{ID: "F1", PortID: &port}); err != nil {
			return nil, "floating IP (refused)", false
		}
		return []topology.Change{ch(i, topology.ResourceFloatingIP, "F1")}, "floating IP to " + port, false
	case 14: // a chassis is lost or back
		c := m.pick([]string{"hv1", "hv2", "hv3"})
		reachable := m.rng.Intn(2) == 0
		if changed, _ := m.s.SetChassisReachable(i, c, reachable); !changed {
			return nil, "reachability (same)", false
		}
		return []topology.Change{ch(i, topology.ResourceChassis, c)}, fmt.Sprintf("%s reachable=%v", c, reachable), false
	case 15: // the router's gateway goes or comes back
		g := &topology.GatewaySpec{Clear: true}
		if m.rng.Intn(2) == 0 {
			g = &topology.GatewaySpec{NetworkID: "EXT"}
		}
		m.next++
		if _, err := m.s.UpdateRouter(i, topology.RouterSpec{ID: "R", Gateway: g, GatewayPortID: fmt.Sprintf("gw%d", m.next)}); err != nil {
			return nil, "gateway (refused)", false
		}
		return []topology.Change{ch(i, topology.ResourceRouter, "R")}, fmt.Sprintf("gateway clear=%v", g.Clear), false
	case 16: // SNAT on or off
		snat := m.rng.Intn(2) == 0
		if _, err := m.s.UpdateRouter(i, topology.RouterSpec{ID: "R", Gateway: &topology.GatewaySpec{NetworkID: "EXT", EnableSNAT: &snat}}); err != nil {
			return nil, "snat (refused)", false
		}
		return []topology.Change{ch(i, topology.ResourceRouter, "R")}, fmt.Sprintf("snat=%v", snat), false
	case 17: // a neighbour learned, or changed
		nb := m.pick([]string{"EXT|203.0.113.1", "V|10.2.0.100", "EXT|203.0.113.9"})
		n, ip, _ := strings.Cut(nb, "|")
		mac := m.pick([]string{"02:00:00:00:00:01", "02:00:00:00:00:02"})
		if changed, err := m.s.LearnNeighbour(i, topology.Neighbour{NetworkID: n, IP: ip, MAC: mac}); err != nil || !changed {
			return nil, "neighbour (same)", false
		}
		return []topology.Change{ch(i, topology.ResourceNeighbour, n)}, "neighbour " + ip + " at " + mac, false
	case 18: // a port forwarding to a port, or none
		f, _ := m.s.FloatingIP("F1")
		if len(f.PortForwardings) > 0 {
			if err := m.s.DeletePortForwarding(i, "F1", f.PortForwardings[0].ID); err != nil {
				m.t.Fatal(err)
			}
			return []topology.Change{ch(i, topology.ResourceFloatingIP, "F1")}, "port forwarding deleted", false
		}
		port, proto, ext, in := m.pick(m.vmPorts()), "tcp", 2222, 22
		m.next++
		if _, err := m.s.CreatePortForwarding(i, topology.PortForwardingSpec{FloatingIPID: "F1", ID: fmt.Sprintf("pf%d", m.next),
			Protocol: &proto, ExternalPort: &ext, InternalPort: &in, InternalIPAddress: m.str(""), InternalPortID: &port}); err != nil {
			return nil, "port forwarding (refused)", false
		}
		return []topology.Change{ch(i, topology.ResourceFloatingIP, "F1")}, "port forwarding to " + port, false
	case 0, 1: // a new port, plugged or not
		m.next++
		id := fmt.Sprintf("n%d", m.next)
		if _, err := m.s.CreatePorts(i, []topology.PortSpec{{ID: id, NetworkID: m.str(m.pick(networks)),
			AllowedAddressPairs: pairs()}}); err != nil {
			return nil, "create (refused)", false
		}
		return []topology.Change{ch(i, topology.ResourcePort, id)}, "create " + id, false
	case 2, 3, 4: // plug, move or unplug a port
		id := m.pick(m.vmPorts())
		where := m.pick([]string{"", "hv1", "hv2", "hv3"})
		var out []topology.Change
		for _, c := range []string{"hv1", "hv2", "hv3"} {
			var bs []topology.Binding
			for _, p := range m.s.Ports() {
				if p.Located() && p.HostID == c && p.ID != id {
					bs = append(bs, topology.Binding{PortID: p.ID, OFPort: p.OFPort, Active: p.Status == topology.StatusActive})
				}
			}
			if c == where {
				m.ofp++ // bound and, as a chassis reports it, maybe ACTIVE at once
				bs = append(bs, topology.Binding{PortID: id, OFPort: 50 + m.ofp, Active: m.rng.Intn(2) == 0})
			}
			changed, err := m.s.ReportPorts(i, c, bs)
			if err != nil {
				m.t.Fatal(err)
			}
			for _, p := range changed {
				out = append(out, ch(i, topology.ResourcePort, p))
			}
		}
		return out, "bind " + id + " on " + where, false
	case 5: // pairs, addresses, port security
		id := m.pick(m.vmPorts())
		sp := topology.PortSpec{ID: id, AllowedAddressPairs: pairs()}
		if m.rng.Intn(2) == 0 {
			sec := m.rng.Intn(2) == 0
			sp.PortSecurityEnabled = &sec
		}
		if m.rng.Intn(3) == 0 {
			sp.FixedIPs = &[]topology.FixedIPSpec{{IPAddress: m.pick([]string{"10.0.0.7", "10.0.0.8", "10.1.0.7"})}}
		}
		if m.rng.Intn(4) == 0 {
			sp.MACAddress = m.str(m.pick([]string{"fa:16:3e:aa:00:01", "fa:16:3e:aa:00:02", "fa:16:3e:bb:00:09"}))
		}
		if _, err := m.s.UpdatePort(i, sp); err != nil {
			return nil, "update (refused)", false
		}
		return []topology.Change{ch(i, topology.ResourcePort, id)}, "update " + id, false
	case 6: // delete a port
		id := m.pick(m.vmPorts())
		if err := m.s.DeletePort(i, id); err != nil {
			m.t.Fatal(err)
		}
		return []topology.Change{ch(i, topology.ResourcePort, id)}, "delete " + id, false
	case 7: // the router goes down or up
		up := m.rng.Intn(2) == 0
		if _, err := m.s.UpdateRouter(i, topology.RouterSpec{ID: "R", AdminStateUp: &up}); err != nil {
			m.t.Fatal(err)
		}
		return []topology.Change{ch(i, topology.ResourceRouter, "R")}, fmt.Sprintf("router up=%v", up), false
	case 8: // an interface comes or goes
		sn := m.pick([]string{"A4", "B4"})
		if p, err := m.s.RemoveRouterInterface(i, "R", sn); err == nil {
			return []topology.Change{ch(i, topology.ResourcePort, p.ID), ch(i, topology.ResourceRouter, "R")}, "unplug R from " + sn, false
		}
		p, err := m.s.AddRouterInterface(i, "R", sn, "R-"+sn)
		if err != nil {
			return nil, "plug R (refused)", false
		}
		return []topology.Change{ch(i, topology.ResourcePort, p.ID), ch(i, topology.ResourceRouter, "R")}, "plug R into " + sn, false
	case 9: // a network's MTU
		n := m.pick([]string{"A", "B"})
		mtu := 1400 + m.rng.Intn(100)
		if _, err := m.s.UpdateNetwork(i, topology.NetworkSpec{ID: n, MTU: &mtu}); err != nil {
			m.t.Fatal(err)
		}
		return []topology.Change{ch(i, topology.ResourceNetwork, n)}, fmt.Sprintf("mtu %s %d", n, mtu), false
	case 10: // a chassis' endpoint
		c := m.pick([]string{"hv1", "hv2", "hv3"})
		encaps := [][]string{{topology.TypeVXLAN, topology.TypeGRE}, {topology.TypeGRE}, {topology.TypeVXLAN}}[m.rng.Intn(3)]
		ip := fmt.Sprintf("172.31.%d.%s", m.rng.Intn(2), c[2:])
		sp := topology.ChassisSpec{Name: c, EncapIP: ip, Encaps: encaps}
		if m.external {
			sp.BridgeMappings, sp.Gateway = map[string]string{"physnet1": "br-ex"}, c == "hv3" || m.rng.Intn(3) == 0
		}
		if _, err := m.s.RegisterChassis(i, sp); err != nil {
			m.t.Fatal(err)
		}
		return []topology.Change{ch(i, topology.ResourceChassis, c)}, "endpoint " + c + " " + ip, false
	case 11: // a VIP changes hands
		id := m.pick(m.vmPorts())
		ip := m.pick([]string{"10.0.0.100", "10.0.0.101", "10.1.0.50"})
		p, _ := m.s.Port(id)
		prev, err := m.s.SetVIPOwner(i, id, ip)
		if err != nil {
			return nil, "vip (refused)", false
		}
		out := []topology.Change{ch(i, topology.ResourceVIP, id)}
		if prev != "" && prev != id {
			out = append(out, ch(i, topology.ResourceVIP, prev))
		}
		return out, "vip " + ip + " to " + p.ID, false
	default: // status only: each chassis reports its ports, all ACTIVE
		var out []topology.Change
		for _, c := range []string{"hv1", "hv2", "hv3"} {
			var bs []topology.Binding
			for _, p := range m.s.Ports() {
				if p.Located() && p.HostID == c {
					bs = append(bs, topology.Binding{PortID: p.ID, OFPort: p.OFPort, Active: true})
				}
			}
			changed, err := m.s.ReportPorts(i, c, bs)
			if err != nil {
				m.t.Fatal(err)
			}
			for _, id := range changed {
				out = append(out, ch(i, topology.ResourcePort, id))
			}
		}
		return out, "ports ACTIVE", true
	}
}

// TestIncrementalEqualsFullRecompute: over random sequences of changes —
// applied to views derived one from the other, as a node builds them —
// ports created, plugged, moved, unplugged, readdressed and deleted, VIPs
// changing hands, a router going down and losing and regaining
// interfaces, MTUs, chassis endpoints — the desired flows of every bridge
// kept by recomputing only the objects each change affects equal a full
// recompute from scratch, after every step, in both modes. A status-only
// change recomputes nothing.
func TestIncrementalEqualsFullRecompute(t *testing.T) {
	for _, external := range []bool{false, true} {
		for _, mode := range []pipeline.Mode{pipeline.Reactive, pipeline.Proactive} {
			for seed := int64(1); seed <= 8; seed++ {
				incrementalEqualsFull(t, external, mode, seed)
			}
		}
	}
}

// incrementalEqualsFull is one run of TestIncrementalEqualsFullRecompute:
// on the routed fixture, or with external on the external one (provider
// networks, a router gateway, a floating IP) with north-south changes
// among the random ones.
func incrementalEqualsFull(t *testing.T, external bool, mode pipeline.Mode, seed int64) {
	name := fmt.Sprintf("%s/seed%d", mode, seed)
	fixture, bridge := topologytest.Routed, topologytest.Bridge
	if external {
		name = "external/" + name
		fixture, bridge = topologytest.External, topologytest.ExternalBridge
	}
	{
		{
			t.Run(name, func(t *testing.T) {
				f := fixture(t)
				m := &mutator{t: t, s: f.Store, rng: rand.New(rand.NewSource(seed)), index: 1000, external: external}
				p := New(mode)
				bridges := []string{"hv1", "hv2", "hv3"}
				desired := map[string]*Desired{}
				// The incremental path sees the views a builder derives,
				// each from the one before; the full one, fresh views.
				var builder view.Builder
				v := builder.Build(f.Store)
				for _, c := range bridges {
					desired[c] = p.Compute(v, bridge(c))
				}
				var history []string
				unconcerned := 0
				defer func() { t.Logf("%d bridge steps left alone (apps.Concerns)", unconcerned) }()
				for range 150 {
					changes, what, statusOnly := m.step()
					history = append(history, what)
					after := builder.Build(f.Store)
					fresh := view.Build(f.Store)
					for _, c := range bridges {
						br := bridge(c)
						if statusOnly && len(changes) > 0 {
							if s := p.Scope(v, after, br, changes); !s.Empty() {
								t.Fatalf("%s: a status-only change recomputes %v", c, s)
							}
						}
						had := of.NewFlowSet(desired[c].Flows()...)
						p.Update(desired[c], v, after, br, changes)
						want := of.NewFlowSet(p.Compute(fresh, br).Flows()...)
						if !Concerns(v, after, c, changes) {
							unconcerned++
							if !had.Equal(want) {
								d := of.Diff(had, want)
								t.Fatalf("%s after %v: Concerns says no, yet the flows changed:\n%s", c, history[max(0, len(history)-6):], describe(d))
							}
						}
						got := of.NewFlowSet(desired[c].Flows()...)
						if !got.Equal(want) {
							d := of.Diff(want, got)
							t.Fatalf("%s after %v:\nincremental has %d flows the full recompute lacks, lacks %d, differs in %d:\n%s",
								c, history[max(0, len(history)-6):], len(d.Adds), len(d.Deletes), len(d.Modifies), describe(d))
						}
					}
					v = after
				}
			})
		}
	}
}

func describe(d of.Changes) string {
	var out []string
	for _, f := range d.Adds {
		out = append(out, "extra   "+f.Format(pipeline.Names()))
	}
	for _, f := range d.Deletes {
		out = append(out, "missing "+f.Format(pipeline.Names()))
	}
	for _, f := range d.Modifies {
		out = append(out, "differs "+f.Format(pipeline.Names()))
	}
	slices.Sort(out)
	if len(out) > 12 {
		out = out[:12]
	}
	return fmt.Sprint(out)
}

// TestObjectFlowsArePartsOfFlows: each flow of each app carries a cookie
// naming its app, and asking an app for one object's flows gives exactly
// the flows of its whole set with that cookie.
func TestObjectFlowsArePartsOfFlows(t *testing.T) {
	f := topologytest.Routed(t)
	v := f.View()
	for _, c := range []string{"hv1", "hv2", "hv3"} {
		br := topologytest.Bridge(c)
		for _, a := range Registered() {
			byObject := map[uint64][]string{}
			for _, fl := range a.Flows(v, br) {
				if pipeline.Cookie(fl.Cookie).App() != a.ID() {
					t.Fatalf("%s: %s returned a flow of %s: %s", c, a.ID(), pipeline.Cookie(fl.Cookie).App(), fl)
				}
				o := pipeline.Cookie(fl.Cookie).Object()
				byObject[o] = append(byObject[o], fl.String())
			}
			for o, want := range byObject {
				var got []string
				for _, fl := range a.ObjectFlows(v, br, map[uint64]bool{o: true}) {
					got = append(got, fl.String())
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("%s: %s object %s: ObjectFlows\n%q\nFlows\n%q", c, a.ID(), pipeline.Cookie(o), got, want)
				}
			}
		}
	}
}

// TestDesiredObjectFlowsHoldEveryApp: what the bridge asks of a port's
// desired flows (to say the port is programmed) is every desired flow
// with that port's cookie object, whichever app made it.
func TestDesiredObjectFlowsHoldEveryApp(t *testing.T) {
	f := topologytest.Routed(t)
	v := f.View()
	for _, mode := range []pipeline.Mode{pipeline.Reactive, pipeline.Proactive} {
		for _, c := range []string{"hv1", "hv2", "hv3"} {
			d := New(mode).Compute(v, topologytest.Bridge(c))
			want := of.NewFlowSet()
			apps := map[pipeline.App]bool{}
			for _, fl := range d.Flows() {
				if pipeline.Cookie(fl.Cookie).Kind() == pipeline.KindPort {
					want.Add(fl)
					apps[pipeline.Cookie(fl.Cookie).App()] = true
				}
			}
			got := of.NewFlowSet()
			for _, p := range f.Store.Ports() {
				for _, fl := range d.ObjectFlows(pipeline.PortObject(p.Key)) {
					got.Add(fl)
				}
			}
			if !got.Equal(want) {
				t.Errorf("%s %s: ObjectFlows over every port misses flows: %s", mode, c, of.Diff(want, got))
			}
			if len(apps) < 3 {
				t.Errorf("%s %s: port flows from only %d apps; the fixture should exercise more", mode, c, len(apps))
			}
		}
	}
}
