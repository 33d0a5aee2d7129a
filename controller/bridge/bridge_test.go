package bridge

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/wyvern-sdn/wyvern/internal/apps"
	"github.com/wyvern-sdn/wyvern/internal/ovstest"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// fakeSwitch records bundles and packet-outs and applies bundles to an
// in-memory table, the way a switch would (add replaces, strict delete by
// key, delete by cookie mask and match).
type fakeSwitch struct {
	mu      sync.Mutex
	gen     uint64
	flows   of.FlowSet
	bundles [][]of.FlowMod
	outs    []ofctl.PacketOut
	fail    int // fail this many bundles
	meters  map[uint32]ofctl.Meter
	dropped map[uint32]uint64 // packets each meter has dropped
	bad     of.FlowKey        // a flow this switch refuses, naming it
}

func newFakeSwitch(flows ...of.Flow) *fakeSwitch {
	return &fakeSwitch{gen: 1, flows: of.NewFlowSet(flows...), meters: map[uint32]ofctl.Meter{}}
}

func (b *fakeSwitch) DPID() uint64       { return 1 }
func (b *fakeSwitch) Generation() uint64 { return b.gen }

func (b *fakeSwitch) SetMeter(_ context.Context, m ofctl.Meter) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.meters[m.ID] = m
	return nil
}

func (b *fakeSwitch) DeleteMeter(_ context.Context, id uint32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range b.flows.Flows() {
		if slices.Contains(pipeline.Meters([]of.Flow{f}), id) {
			return fmt.Errorf("meter %d deleted while %s uses it", id, f)
		}
	}
	delete(b.meters, id)
	return nil
}

func (b *fakeSwitch) MeterStats(context.Context) ([]ofctl.MeterStats, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []ofctl.MeterStats
	for id := range b.meters {
		out = append(out, ofctl.MeterStats{ID: id, Dropped: b.dropped[id]})
	}
	return out, nil
}

func (b *fakeSwitch) DumpFlows(context.Context) (ofctl.Dump, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return ofctl.Dump{Flows: b.flows.Flows()}, nil
}

func (b *fakeSwitch) PacketOut(_ context.Context, po ofctl.PacketOut) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.outs = append(b.outs, po)
	return nil
}

// covers reports whether a non-strict delete's match selects a flow.
func covers(del, f of.Match) bool {
	for _, c := range del.Conds() {
		g, ok := f.Get(c.Field)
		if !ok || g.Value&c.Mask != c.Value&c.Mask || g.Mask&c.Mask != c.Mask {
			return false
		}
	}
	return true
}

// Apply sets the meters, then bundles, then sends the packet-outs: as
// the switch sees them, in order (none for a refused bundle).
func (b *fakeSwitch) Apply(ctx context.Context, meters []ofctl.Meter, mods []of.FlowMod, then ...ofctl.PacketOut) error {
	for _, m := range meters {
		if err := b.SetMeter(ctx, m); err != nil {
			return err
		}
	}
	if len(mods) > 0 {
		if err := b.Bundle(ctx, mods); err != nil {
			return err
		}
	}
	for _, po := range then {
		if err := b.PacketOut(ctx, po); err != nil {
			return err
		}
	}
	return nil
}

func (b *fakeSwitch) Bundle(_ context.Context, mods []of.FlowMod) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bundles = append(b.bundles, mods)
	if b.fail > 0 {
		b.fail--
		return errors.New("switch said no")
	}
	next := b.flows.Clone()
	for _, m := range mods {
		switch m.Command {
		case of.FlowAdd:
			if m.Flow.Key() == b.bad {
				f := m.Flow
				return &ofctl.OpenFlowError{DPID: 1, Type: 3, Code: 2, Flow: &f, Request: "bundle add"}
			}
			for _, id := range pipeline.Meters([]of.Flow{m.Flow}) {
				if _, ok := b.meters[id]; !ok {
					return fmt.Errorf("flow %s punts through meter %d, which does not exist", m.Flow, id)
				}
			}
			next.Add(m.Flow)
		case of.FlowDeleteStrict:
			next.Remove(m.Flow)
		case of.FlowDelete:
			for _, f := range next.Flows() {
				if (m.Flow.Table == of.TableAll || f.Table == m.Flow.Table) &&
					f.Cookie&m.CookieMask == m.Flow.Cookie&m.CookieMask && covers(m.Flow.Match, f.Match) {
					next.Remove(f)
				}
			}
		}
	}
	b.flows = next
	return nil
}

func (b *fakeSwitch) snapshot() (of.FlowSet, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flows.Clone(), len(b.bundles)
}

// rig is a manager on a fixture, with hv1's bridge as the local one.
type rig struct {
	t    *testing.T
	f    *topologytest.Fixture
	m    *Manager
	sw   *fakeSwitch
	mode pipeline.Mode
	prog chan map[string]uint32
	idx  uint64
}

func newRig(t *testing.T, mode pipeline.Mode, sw *fakeSwitch) *rig {
	return newRigWith(t, mode, sw, nil)
}

// newRigWith is newRig with the manager's metrics registered in reg.
func newRigWith(t *testing.T, mode pipeline.Mode, sw *fakeSwitch, reg prometheus.Registerer) *rig {
	r := &rig{t: t, f: topologytest.ThreeChassis(t), sw: sw, mode: mode, prog: make(chan map[string]uint32, 64), idx: 1000}
	r.m = NewManager(Config{Mode: mode, RetryDelay: 10 * time.Millisecond, HoldFor: 500 * time.Millisecond, Metrics: reg},
		Hooks{Programmed: func(p map[string]uint32) {
			select {
			case r.prog <- p:
			default:
			}
		}}, zaptest.NewLogger(t))
	r.m.Update(r.f.View(), nil, true)
	r.m.SetLocal(Local{DPID: 1, Bridge: topologytest.Bridge("hv1"), Bindings: r.bindings("hv1")})
	return r
}

// bindings are a chassis' plugged ports, as its agent would report them.
func (r *rig) bindings(chassis string) []topology.Binding {
	var out []topology.Binding
	for _, p := range r.f.Store.Ports() {
		if p.Located() && p.HostID == chassis {
			out = append(out, topology.Binding{PortID: p.ID, OFPort: p.OFPort})
		}
	}
	return out
}

func (r *rig) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.m.Run(ctx, r.sw) }()
	r.t.Cleanup(func() { cancel(); <-done })
}

// change applies a store change and hands it to the manager as the feed
// would.
func (r *rig) change(op func(index uint64) ([]string, error), resource string) {
	r.t.Helper()
	r.idx++
	ids, err := op(r.idx)
	if err != nil {
		r.t.Fatal(err)
	}
	var cs []topology.Change
	for _, id := range ids {
		cs = append(cs, topology.Change{Index: r.idx, Resource: resource, Op: "update", ID: id})
	}
	r.m.Update(view.Build(r.f.Store), cs, false)
}

// want is the bridge's whole flow set as a full recompute gives it, in a
// round.
func (r *rig) want(local []topology.Binding, round uint16) of.FlowSet {
	eff := view.Build(r.f.Store).WithChassisPorts("hv1", local)
	set := of.NewFlowSet(pipeline.MissFlows(r.mode, round)...)
	for _, f := range apps.New(r.mode).Flows(eff, topologytest.Bridge("hv1")) {
		set.Add(pipeline.WithRound(f, round))
	}
	return set
}

func (r *rig) loop() *loop {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	return r.m.bridges[1]
}

// settled waits until the bridge holds exactly want.
func (r *rig) settled(what string, want of.FlowSet) {
	r.t.Helper()
	ovstest.Eventually(r.t, 5*time.Second, what, func() bool {
		have, _ := r.sw.snapshot()
		return have.Equal(want)
	})
}

func (r *rig) round() uint16 {
	round, _ := r.m.Synced(1)
	return round
}

// TestReplaySweepsStaleRoundsThenAppliesChanges: a bridge holding an
// earlier controller's flows and one of no controller (cookie 0) is
// replayed in one bundle under the round after the highest it holds,
// which sweeps every other round; then a port plugged on it is one bundle,
// retried unchanged after a failure, after which the bridge equals a full
// recompute.
func TestReplaySweepsStaleRoundsThenAppliesChanges(t *testing.T) {
	stale := of.Flow{Table: pipeline.Table(pipeline.Classifier), Priority: 100, Match: of.Match{}.InPort(99),
		Cookie: pipeline.NewCookie(3, pipeline.AppTunnels, pipeline.PortObject(99))}
	foreign := of.Flow{Table: 5, Priority: 1} // cookie 0: no controller's
	r := newRig(t, pipeline.Reactive, newFakeSwitch(stale, foreign))
	r.m.SetReady()
	r.run()
	want := r.want(r.bindings("hv1"), 4)
	r.settled("replay", want)
	// The loop records its round just after the switch took the bundle.
	ovstest.Eventually(t, 5*time.Second, "round 4, one past the highest seen", func() bool { return r.round() == 4 })
	if _, n := r.sw.snapshot(); n != 1 {
		t.Fatalf("replay took %d bundles, want 1", n)
	}

	r.sw.mu.Lock()
	r.sw.fail = 1
	r.sw.mu.Unlock()
	r.f.AddPorts(t, topologytest.Port{ID: "a4", Network: "A", Chassis: "hv1", OFPort: 7})
	local := r.bindings("hv1")
	r.m.SetLocal(Local{DPID: 1, Bridge: topologytest.Bridge("hv1"), Bindings: local})
	r.m.Update(view.Build(r.f.Store), []topology.Change{{Resource: topology.ResourcePort, ID: "a4"}}, false)
	r.settled("a4's flows", r.want(local, 4))
	r.sw.mu.Lock()
	failed, retried := r.sw.bundles[1], r.sw.bundles[2]
	r.sw.mu.Unlock()
	if fmt.Sprint(failed) != fmt.Sprint(retried) {
		t.Fatalf("the retry sent\n%v\nafter a failed\n%v", retried, failed)
	}
}

func TestNextRound(t *testing.T) {
	c := func(r uint16) uint64 { return pipeline.NewCookie(r, 1, 1) }
	for _, tc := range []struct {
		cookies []uint64
		want    uint16
	}{
		{nil, 1},
		{[]uint64{0}, 1},
		{[]uint64{c(1), c(7)}, 8},
		{[]uint64{c(0xffff)}, 1},
		{[]uint64{c(0xffff), c(1)}, 2},
	} {
		if got := nextRound(tc.cookies); got != tc.want {
			t.Errorf("nextRound(%v) = %d, want %d", tc.cookies, got, tc.want)
		}
	}
}

// TestNoReplayBeforeReady: a node that has not applied the log as far as
// the leader had committed it sends nothing to a bridge that connects —
// a replay from a partial topology would delete the flows of every port
// it has not applied yet.
func TestNoReplayBeforeReady(t *testing.T) {
	r := newRig(t, pipeline.Reactive, newFakeSwitch())
	r.run()
	time.Sleep(300 * time.Millisecond)
	if _, n := r.sw.snapshot(); n != 0 {
		t.Fatalf("%d bundles before the node was ready", n)
	}
	r.m.SetReady()
	r.settled("replay once ready", r.want(r.bindings("hv1"), 1))
}

// TestRejectedFlowIsQuarantined: one flow the switch refuses does not hold
// the bridge hostage; everything else lands, and the flow is reported.
func TestRejectedFlowIsQuarantined(t *testing.T) {
	sw := newFakeSwitch()
	r := newRig(t, pipeline.Proactive, sw)
	want := r.want(r.bindings("hv1"), 1)
	var bad of.Flow
	for _, f := range want.Flows() {
		if pipeline.Cookie(f.Cookie).App() == pipeline.AppL2Pop {
			bad = f
		}
	}
	sw.bad = bad.Key()
	r.m.SetReady()
	r.run()
	want.Remove(bad)
	r.settled("everything but the refused flow", want)
	rej := r.m.Rejected(1)
	if len(rej) != 1 {
		t.Fatalf("rejected flows %v, want the refused one", rej)
	}
}

// TestNewerSessionOwnsTheBridge: a Run of an older session of the same
// datapath (one replaced while it was still starting) does not take the
// bridge from the newer one.
func TestNewerSessionOwnsTheBridge(t *testing.T) {
	newer := newFakeSwitch()
	newer.gen = 2
	r := newRig(t, pipeline.Reactive, newer)
	r.m.SetReady()
	r.run()
	ovstest.Eventually(t, 5*time.Second, "newer session synced", func() bool { _, ok := r.m.Synced(1); return ok })
	if err := r.m.Run(context.Background(), newFakeSwitch()); err == nil {
		t.Fatal("an older session's Run must give way")
	}
	if _, ok := r.m.Synced(1); !ok {
		t.Fatal("the older session unregistered the newer one's bridge")
	}
}

// TestBridgeSeriesGoWithItsSession: a bridge's series (bundles,
// flow-mods, cookie rounds and what is read from its loop; role changes
// go the same way) are scraped while its switch is connected and gone
// once it has disconnected: a node that has served a thousand bridges
// over time does not keep a series for each.
func TestBridgeSeriesGoWithItsSession(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	sw := newFakeSwitch()
	r := newRigWith(t, pipeline.Reactive, sw, reg)
	r.m.SetReady()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.m.Run(ctx, sw) }()
	defer func() { cancel(); <-done }()
	ovstest.Eventually(t, 5*time.Second, "replayed", func() bool { _, ok := r.m.Synced(1); return ok })
	bridgeSeries := func() map[string]int {
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, f := range fams {
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "bridge" && l.GetValue() == bridgeLabel(1) {
						got[f.GetName()]++
					}
				}
			}
		}
		return got
	}
	before := bridgeSeries()
	for _, name := range []string{"wyvern_reconciler_bundles_total", "wyvern_reconciler_flow_mods_total",
		"wyvern_reconciler_cookie_rounds_total", "wyvern_bridge_flows_installed"} {
		if before[name] == 0 {
			t.Errorf("connected: no %s series for the bridge (%v)", name, before)
		}
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	done <- nil // for the deferred wait
	if after := bridgeSeries(); len(after) != 0 {
		t.Errorf("disconnected: the bridge's series remain: %v", after)
	}
}

// TestMeterSeriesOnceDropped: a scrape has a series for each shared
// meter, and for a port's meter only once it has dropped a punt (a node
// serving hundreds of bridges has a meter for every port of each).
func TestMeterSeriesOnceDropped(t *testing.T) {
	sw := newFakeSwitch()
	r := newRig(t, pipeline.Reactive, sw)
	r.m.SetReady()
	r.run()
	a1, _ := r.f.Store.Port("a1")
	a2, _ := r.f.Store.Port("a2")
	ovstest.Eventually(t, 5*time.Second, "replay with meters", func() bool {
		sw.mu.Lock()
		defer sw.mu.Unlock()
		_, ok := sw.meters[a1.Key]
		return ok
	})
	sw.mu.Lock()
	sw.dropped = map[uint32]uint64{a2.Key: 7}
	sw.mu.Unlock()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newCollector(r.m))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != "wyvern_punt_meter_dropped_packets_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "meter" {
					got[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	want := map[string]float64{fmt.Sprintf("port-%d", a2.Key): 7, "from-remotes": 0}
	if !maps.Equal(got, want) {
		t.Errorf("meter series %v, want %v (a1's and b1's meters dropped nothing)", got, want)
	}
}

// TestMeters: the meters punt flows use exist, with the configured band,
// before the flows do (the fake refuses a flow whose meter is missing); a
// meter left over from an earlier controller is deleted after the
// replay; a port's meter goes once its punt flows have.
func TestMeters(t *testing.T) {
	sw := newFakeSwitch()
	sw.meters[99] = ofctl.Meter{ID: 99, Rate: 1}
	r := newRig(t, pipeline.Reactive, sw)
	r.m.cfg.PuntRate, r.m.cfg.PuntBurst = 50, 20
	r.m.SetReady()
	r.run()
	meterIDs := func() []uint32 {
		stats, _ := sw.MeterStats(context.Background())
		var ids []uint32
		for _, s := range stats {
			ids = append(ids, s.ID)
		}
		slices.Sort(ids)
		return ids
	}
	a1, _ := r.f.Store.Port("a1")
	a2, _ := r.f.Store.Port("a2")
	b1, _ := r.f.Store.Port("b1")
	ovstest.Eventually(t, 5*time.Second, "replay with meters", func() bool {
		return slices.Equal(meterIDs(), []uint32{a1.Key, a2.Key, b1.Key, pipeline.MeterFromRemotes})
	})
	sw.mu.Lock()
	if m := sw.meters[a1.Key]; m.Rate != 50 || m.Burst != 20 {
		t.Errorf("a1's meter = %+v, want the configured band", m)
	}
	sw.mu.Unlock()
	r.f.Rebind(t)(topologytest.Port{ID: "a1", Network: "A", Chassis: "hv2", OFPort: 5})
	r.m.SetLocal(Local{DPID: 1, Bridge: topologytest.Bridge("hv1"), Bindings: r.bindings("hv1")})
	r.m.Update(view.Build(r.f.Store), []topology.Change{{Resource: topology.ResourcePort, ID: "a1"}}, false)
	ovstest.Eventually(t, 5*time.Second, "a1's meter gone with it", func() bool {
		return slices.Equal(meterIDs(), []uint32{a2.Key, b1.Key, pipeline.MeterFromRemotes})
	})
}

// TestLocalBindingProgramsAtOnce: a VM plugged on the chassis gets its
// flows from the chassis' own report of its ports, before raft has
// recorded the binding, and the chassis hears it is programmed.
func TestLocalBindingProgramsAtOnce(t *testing.T) {
	r := newRig(t, pipeline.Reactive, newFakeSwitch())
	r.m.SetReady()
	r.run()
	r.settled("replay", r.want(r.bindings("hv1"), 1))
	local := append(r.bindings("hv1"), topology.Binding{PortID: "a1x", OFPort: 9})
	r.m.SetLocal(Local{DPID: 1, Bridge: topologytest.Bridge("hv1"), Bindings: local})
	r.settled("a1x's flows, from the local binding alone", r.want(local, 1))
	if p, _ := r.f.Store.Port("a1x"); p.Located() {
		t.Fatal("the fixture bound a1x")
	}
	ovstest.Eventually(t, 5*time.Second, "a1x reported programmed", func() bool {
		for {
			select {
			case p := <-r.prog:
				if p["a1x"] == 9 {
					return true
				}
			default:
				return false
			}
		}
	})
}

// TestStatusOnlyChangeSendsNothing: ports going ACTIVE recompute nothing
// and send the bridge nothing.
func TestStatusOnlyChangeSendsNothing(t *testing.T) {
	r := newRig(t, pipeline.Reactive, newFakeSwitch())
	r.m.SetReady()
	r.run()
	r.settled("replay", r.want(r.bindings("hv1"), 1))
	_, before := r.sw.snapshot()
	r.change(func(i uint64) ([]string, error) {
		bs := r.bindings("hv1") // the same ports, as the chassis reports them once programmed
		for j := range bs {
			bs[j].Active = true
		}
		ids, err := r.f.Store.ReportPorts(i, "hv1", bs)
		if err == nil && len(ids) != 3 {
			err = fmt.Errorf("the report changed %v, want a1, a2 and b1 going ACTIVE", ids)
		}
		return ids, err
	}, topology.ResourcePort)
	time.Sleep(200 * time.Millisecond)
	if _, after := r.sw.snapshot(); after != before {
		t.Fatalf("%d bundles for a status-only change", after-before)
	}
}

// TestNoReplayBeforeTheChassisSpeaks: on a node that manages a chassis, no
// bridge is replayed before the agent has said which bridge is the
// chassis' and what is plugged into it: replayed earlier, the chassis'
// bridge would get the base pipeline alone and lose its ports' flows.
func TestNoReplayBeforeTheChassisSpeaks(t *testing.T) {
	f := topologytest.ThreeChassis(t)
	sw := newFakeSwitch()
	m := NewManager(Config{Mode: pipeline.Reactive, RetryDelay: 10 * time.Millisecond, WaitLocal: true}, Hooks{}, zaptest.NewLogger(t))
	m.Update(f.View(), nil, true)
	m.SetReady()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, sw) }()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(300 * time.Millisecond)
	if _, n := sw.snapshot(); n != 0 {
		t.Fatalf("%d bundles before the chassis said which bridge is its own", n)
	}
	m.SetLocal(Local{DPID: 1, Bridge: topologytest.Bridge("hv1")})
	ovstest.Eventually(t, 5*time.Second, "replay", func() bool { _, n := sw.snapshot(); return n == 1 })
}
