package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// fakeBridge records bundles and applies them to an in-memory table, the
// way a switch would (add replaces, strict delete by key, delete by cookie
// mask).
type fakeBridge struct {
	mu      sync.Mutex
	flows   of.FlowSet
	bundles [][]of.FlowMod
	fail    int // fail this many bundles
	meters  map[uint32]ofctl.Meter
}

func (b *fakeBridge) SetMeter(_ context.Context, m ofctl.Meter) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.meters == nil {
		b.meters = map[uint32]ofctl.Meter{}
	}
	b.meters[m.ID] = m
	return nil
}

func (b *fakeBridge) DeleteMeter(_ context.Context, id uint32) error {
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

func (b *fakeBridge) MeterStats(context.Context) ([]ofctl.MeterStats, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []ofctl.MeterStats
	for id := range b.meters {
		out = append(out, ofctl.MeterStats{ID: id})
	}
	return out, nil
}

func (b *fakeBridge) DPID() uint64       { return 1 }
func (b *fakeBridge) Generation() uint64 { return 1 }

func (b *fakeBridge) DumpFlows(context.Context) (ofctl.Dump, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return ofctl.Dump{Flows: b.flows.Flows()}, nil
}

func (b *fakeBridge) Bundle(_ context.Context, mods []of.FlowMod) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bundles = append(b.bundles, mods)
	if b.fail > 0 {
		b.fail--
		return errors.New("switch said no")
	}
	for _, m := range mods {
		switch m.Command {
		case of.FlowAdd:
			for _, id := range pipeline.Meters([]of.Flow{m.Flow}) {
				if _, ok := b.meters[id]; !ok {
					return fmt.Errorf("flow %s punts through meter %d, which does not exist", m.Flow, id)
				}
			}
			b.flows.Add(m.Flow)
		case of.FlowDeleteStrict:
			b.flows.Remove(m.Flow)
		case of.FlowDelete:
			for _, f := range b.flows.Flows() {
				if f.Cookie&m.CookieMask == m.Flow.Cookie&m.CookieMask {
					b.flows.Remove(f)
				}
			}
		}
	}
	return nil
}

func (b *fakeBridge) snapshot() (of.FlowSet, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flows.Clone(), len(b.bundles)
}

func appFlow(port uint32) of.Flow {
	return of.Flow{Table: pipeline.Table(pipeline.Classifier), Priority: 100,
		Cookie: pipeline.NewCookie(0, pipeline.AppTest, uint64(port)), Match: of.Match{}.InPort(port),
		Actions: []of.Action{of.GotoTable{Table: pipeline.Table(pipeline.PortSecurity)}}}
}

func TestReconcilerReplaySweepsStaleRoundsThenDiffs(t *testing.T) {
	stale := pipeline.WithRound(appFlow(99), 3)
	foreign := of.Flow{Table: 5, Priority: 1} // cookie 0: no controller's
	br := &fakeBridge{flows: of.NewFlowSet(stale, foreign, pipeline.WithRound(appFlow(1), 3))}

	var mu sync.Mutex
	ports := []uint32{1, 2}
	r := NewReconciler(ReconcilerConfig{Mode: pipeline.Reactive, RetryDelay: 10 * time.Millisecond,
		Desired: func(uint64) []of.Flow {
			mu.Lock()
			defer mu.Unlock()
			var out []of.Flow
			for _, p := range ports {
				out = append(out, appFlow(p))
			}
			return out
		}}, zaptest.NewLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, br) }()
	defer func() { cancel(); <-done }()

	ovstest.Eventually(t, 5*time.Second, "replay", func() bool { _, _, ok := r.Installed(1); return ok })
	flows, n := br.snapshot()
	installed, round, _ := r.Installed(1)
	if got, ok := r.Round(1); !ok || got != round {
		t.Fatalf("Round says %d (%v), Installed %d", got, ok, round)
	}
	if round != 4 {
		t.Fatalf("round %d, want 4 (one past the highest seen)", round)
	}
	if n != 1 {
		t.Fatalf("replay took %d bundles, want 1", n)
	}
	if !flows.Equal(installed) {
		t.Fatalf("bridge holds %d flows, installed view %d", flows.Len(), installed.Len())
	}
	for _, f := range flows.Flows() {
		if pipeline.Cookie(f.Cookie).Round() != 4 {
			t.Fatalf("flow of round %d survived the replay: %s", pipeline.Cookie(f.Cookie).Round(), f)
		}
	}
	if want := len(pipeline.Stages) + 2; flows.Len() != want {
		t.Fatalf("%d flows after replay, want %d", flows.Len(), want)
	}

	// A change is one minimal bundle; the first attempt fails and the
	// installed view must not move until a bundle commits.
	br.mu.Lock()
	br.fail = 1
	br.mu.Unlock()
	mu.Lock()
	ports = []uint32{2, 3}
	mu.Unlock()
	r.Update(1)
	ovstest.Eventually(t, 5*time.Second, "retry after failure", func() bool { _, n := br.snapshot(); return n >= 3 })
	ovstest.Eventually(t, 5*time.Second, "sync", func() bool {
		inst, _, _ := r.Installed(1)
		_, ok := inst.Get(pipeline.WithRound(appFlow(3), 4).Key())
		return ok
	})
	br.mu.Lock()
	failed, retried := br.bundles[1], br.bundles[2]
	br.mu.Unlock()
	if len(retried) != 2 || retried[0].Command != of.FlowDeleteStrict || retried[1].Command != of.FlowAdd {
		t.Fatalf("sync bundle %+v, want [delete port 1, add port 3]", retried)
	}
	if len(failed) != len(retried) {
		t.Fatalf("the retry must send the same changes as the failed attempt")
	}
	flows, _ = br.snapshot()
	installed, _, _ = r.Installed(1)
	if !flows.Equal(installed) {
		t.Fatal("installed view differs from the bridge after sync")
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

// rejectingBridge refuses any bundle holding one flow, naming it, as OVS
// does for a flow it cannot install.
type rejectingBridge struct {
	*fakeBridge
	bad of.FlowKey
	gen uint64
}

func (b *rejectingBridge) Generation() uint64 { return b.gen }

func (b *rejectingBridge) Bundle(ctx context.Context, mods []of.FlowMod) error {
	for _, m := range mods {
		if m.Flow.Key() == b.bad {
			f := m.Flow
			return &ofctl.OpenFlowError{DPID: 1, Type: 3, Code: 2, Flow: &f, Request: "bundle add"}
		}
	}
	return b.fakeBridge.Bundle(ctx, mods)
}

// TestRejectedFlowIsQuarantined: one flow the switch refuses does not hold
// the bridge hostage; everything else lands, the flow is reported, and a
// flow with timeouts is left out as well.
func TestRejectedFlowIsQuarantined(t *testing.T) {
	bad := appFlow(66)
	timed := appFlow(77)
	timed.IdleTimeout = 10
	br := &rejectingBridge{fakeBridge: &fakeBridge{flows: of.NewFlowSet()}, bad: bad.Key(), gen: 1}
	r := NewReconciler(ReconcilerConfig{RetryDelay: time.Hour, // a retry with the same flow would hang the test
		Desired: func(uint64) []of.Flow { return []of.Flow{appFlow(1), bad, timed} }}, zaptest.NewLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, br) }()
	defer func() { cancel(); <-done }()
	ovstest.Eventually(t, 5*time.Second, "replay without the rejected flow", func() bool { _, _, ok := r.Installed(1); return ok })
	flows, _ := br.snapshot()
	if _, ok := flows.Get(pipeline.WithRound(appFlow(1), 1).Key()); !ok {
		t.Fatal("the good flow did not land")
	}
	if _, ok := flows.Get(bad.Key()); ok {
		t.Fatal("the rejected flow is on the bridge")
	}
	rej := r.Rejected(1)
	if len(rej) != 2 {
		t.Fatalf("rejected flows %v, want the refused one and the one with timeouts", rej)
	}
}

// TestNewerSessionOwnsTheBridge: a Run of an older session of the same
// datapath (one replaced while it was still starting) does not take the
// bridge from the newer one.
func TestNewerSessionOwnsTheBridge(t *testing.T) {
	r := NewReconciler(ReconcilerConfig{}, zaptest.NewLogger(t))
	newer := &rejectingBridge{fakeBridge: &fakeBridge{flows: of.NewFlowSet()}, gen: 2}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, newer) }()
	defer func() { cancel(); <-done }()
	ovstest.Eventually(t, 5*time.Second, "newer session synced", func() bool { _, _, ok := r.Installed(1); return ok })
	older := &rejectingBridge{fakeBridge: &fakeBridge{flows: of.NewFlowSet()}, gen: 1}
	if err := r.Run(context.Background(), older); err == nil {
		t.Fatal("an older session's Run must give way")
	}
	if _, _, ok := r.Installed(1); !ok {
		t.Fatal("the older session unregistered the newer one's bridge")
	}
}

// TestReconcilerMeters: the meters punt flows use exist, with the
// configured band, before the flows do; a meter left over from an earlier
// controller is deleted after the replay; a port's meter goes once its
// punt flows have.
func TestReconcilerMeters(t *testing.T) {
	br := &fakeBridge{flows: of.NewFlowSet(), meters: map[uint32]ofctl.Meter{99: {ID: 99, Rate: 1}}}
	var mu sync.Mutex
	ports := []uint32{5, 6}
	r := NewReconciler(ReconcilerConfig{Mode: pipeline.Reactive, RetryDelay: 10 * time.Millisecond,
		Meter: func(id uint32) ofctl.Meter { return ofctl.Meter{ID: id, Rate: 50, Burst: 20} },
		Desired: func(uint64) []of.Flow {
			mu.Lock()
			defer mu.Unlock()
			var out []of.Flow
			for _, p := range ports {
				out = append(out, pipeline.PortPuntFlows(pipeline.Reactive, p)...)
			}
			return out
		}}, zaptest.NewLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, br) }()
	defer func() { cancel(); <-done }()
	meterIDs := func() []uint32 {
		stats, _ := br.MeterStats(ctx)
		var ids []uint32
		for _, s := range stats {
			ids = append(ids, s.ID)
		}
		slices.Sort(ids)
		return ids
	}
	ovstest.Eventually(t, 5*time.Second, "replay with meters", func() bool {
		return slices.Equal(meterIDs(), []uint32{5, 6, pipeline.MeterFromTunnels})
	})
	br.mu.Lock()
	if m := br.meters[5]; m.Rate != 50 || m.Burst != 20 {
		t.Errorf("meter 5 = %+v, want the configured band", m)
	}
	br.mu.Unlock()
	mu.Lock()
	ports = []uint32{6, 7}
	mu.Unlock()
	r.Update(1)
	ovstest.Eventually(t, 5*time.Second, "port 5's meter replaced by port 7's", func() bool {
		return slices.Equal(meterIDs(), []uint32{6, 7, pipeline.MeterFromTunnels})
	})
}
