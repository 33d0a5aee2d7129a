package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/internal/apps"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// replay programs the bridge from scratch without ever emptying it: dump
// its flows, pick a cookie round one past the highest seen, and send one
// bundle with every desired flow under the new round — an ADD of an
// existing flow replaces it in place — then a delete by cookie mask of
// every other round found, reactive flows included.
func (l *loop) replay(ctx context.Context, eff *view.View, local *Local) error {
	dump, err := l.sw.DumpFlows(ctx)
	if err != nil {
		return fmt.Errorf("bridge: dump: %w", err)
	}
	cookies := dump.Cookies()
	round := nextRound(cookies)
	desired := l.compute(eff, local)
	if local != nil && len(local.Bindings) > 0 && desired.Len() == 0 {
		// Plugged ports and not one flow for them: the facts or the view
		// are not what they must be. A replay would sweep the bridge's
		// flows; keep them and try again.
		return fmt.Errorf("bridge: replay for chassis %s computed no flow for its %d plugged ports; keeping the bridge's flows", local.Bridge.Chassis, len(local.Bindings))
	}
	want := l.withRound(desired, round)
	flows := want.Flows()
	mods := make([]of.FlowMod, 0, len(flows)+4)
	for _, f := range flows {
		mods = append(mods, of.FlowMod{Command: of.FlowAdd, Flow: f})
	}
	stale := map[uint16]bool{}
	for _, c := range cookies {
		if r := pipeline.Cookie(c).Round(); r != round {
			stale[r] = true
		}
	}
	for old := range stale {
		mods = append(mods, of.DeleteByCookie(pipeline.NewCookie(old, 0, 0), pipeline.RoundMask))
	}
	// Meters go ahead of the bundle: a punt flow's meter must exist
	// before the flow does. Every desired meter is set (a controller
	// restart may bring a new rate); meters nothing punts through any
	// more go after the bundle.
	meters := pipeline.Meters(flows)
	existing, err := l.sw.MeterStats(ctx)
	if err != nil {
		return fmt.Errorf("bridge: meter stats: %w", err)
	}
	start := time.Now()
	if err := l.sw.Apply(ctx, l.meterBands(meters), mods); err != nil {
		return fmt.Errorf("bridge: replay bundle: %w", err)
	}
	l.m.metrics.bundle(l.sw.DPID(), kindReplay, len(mods), time.Since(start))
	l.m.metrics.rounds.WithLabelValues(bridgeLabel(l.sw.DPID())).Inc()
	var had []uint32
	for _, m := range existing {
		had = append(had, m.ID)
	}
	l.desired, l.dirty, l.invalid, l.meters = desired, map[of.FlowKey]bool{}, nil, meters
	l.setView(eff, local)
	l.mu.Lock()
	l.round, l.installed, l.synced, l.desiredCount = round, want, true, desired.Len()
	l.mu.Unlock()
	if err := l.deleteMeters(ctx, without(had, meters)); err != nil {
		l.log.Warn("could not delete unused meters", zap.Error(err))
	}
	bindings, chassis := -1, ""
	if local != nil {
		bindings, chassis = len(local.Bindings), local.Bridge.Chassis
	}
	l.log.Info("bridge replayed", zap.Uint16("round", round), zap.Int("flows", want.Len()),
		zap.Int("app-flows", desired.Len()), zap.Uint64("index", eff.Index()), zap.Int("view-ports", eff.PortCount()),
		zap.String("chassis", chassis), zap.Int("bindings", bindings),
		zap.Int("stale-rounds", len(stale)), zap.Duration("took", time.Since(start)))
	return nil
}

// withRound is the base pipeline's miss flows and the given app flows in
// a round, less the flows the switch refused (until their app changes
// them) and any with timeouts, which belong to the punt path.
func (l *loop) withRound(desired *apps.Desired, round uint16) of.FlowSet {
	set := of.NewFlowSet(pipeline.MissFlows(l.m.cfg.Mode, round)...)
	desired.EachShared(func(k of.FlowKey, p *of.Flow) {
		if f, ok := l.admit(k, *p, round); ok {
			set.AddShared(k, p, f.Cookie) // the desired flow and its key, shared
		}
	})
	return set
}

// admit puts a desired flow, whose key is k, in a round, unless it is
// quarantined.
func (l *loop) admit(k of.FlowKey, f of.Flow, round uint16) (of.Flow, bool) {
	f = pipeline.WithRound(f, round)
	l.mu.Lock()
	defer l.mu.Unlock()
	if rej, ok := l.rejected[k]; ok && rej.flow.SameContent(f) {
		return f, false
	}
	delete(l.rejected, k) // the app changed it: try again
	if f.IdleTimeout != 0 || f.HardTimeout != 0 {
		l.rejected[k] = rejection{f, "reconciled flows are permanent; flows with timeouts belong to the punt path"}
		l.log.Error("flow left out", zap.Stringer("flow", f), zap.String("reason", l.rejected[k].reason))
		return f, false
	}
	return f, true
}

// sync sends, in one bundle, the reactive flow deletes the newest changes
// made, the difference between the installed and desired flows of every
// dirty key, and then the given on-demand adds (held punts' answers),
// with the answers' packet-outs behind its commit; the installed view
// moves only when the bundle commits. The chassis hears which ports the
// bundle completes as it goes out (see reportProgrammed).
func (l *loop) sync(ctx context.Context, onDemand []of.FlowMod, outs []ofctl.PacketOut) error {
	if len(l.dirty) == 0 && len(l.invalid) == 0 && len(onDemand) == 0 {
		return l.sendOuts(ctx, outs)
	}
	l.mu.Lock()
	round := l.round
	l.mu.Unlock()
	var ch of.Changes
	type wanted struct {
		f      of.Flow  // in the round
		shared *of.Flow // the desired flow, for the installed set to point at
	}
	want := map[of.FlowKey]wanted{}
	for k := range l.dirty {
		if p, ok := l.desired.Shared(k); ok {
			if f, ok := l.admit(k, *p, round); ok {
				want[k] = wanted{f, p}
			}
		}
	}
	l.mu.Lock()
	for k := range l.dirty {
		have, had := l.installed.Get(k)
		if pipeline.Cookie(have.Cookie).App() == pipeline.AppPipeline && pipeline.Cookie(have.Cookie).Kind() == 0 {
			delete(want, k)
			continue // a miss flow of the base pipeline: the replay's
		}
		w, isWanted := want[k]
		f := w.f
		switch {
		case had && !isWanted:
			ch.Deletes = append(ch.Deletes, have)
		case !had && isWanted:
			ch.Adds = append(ch.Adds, f)
		case had && isWanted && !have.SameContent(f):
			ch.Modifies = append(ch.Modifies, f)
		default:
			delete(want, k) // installed as it is
		}
	}
	l.mu.Unlock()
	ch.Sort()
	if ch.Empty() && len(l.invalid) == 0 && len(onDemand) == 0 {
		l.dirty = map[of.FlowKey]bool{}
		return l.sendOuts(ctx, outs)
	}
	// New punt flows' meters go ahead of the flows, in the same write.
	var added []of.Flow
	added = append(append(added, ch.Adds...), ch.Modifies...)
	need := without(pipeline.Meters(added), l.meters)
	mods := append(append(append([]of.FlowMod{}, l.invalid...), ch.Ordered()...), onDemand...)
	l.reportProgrammed(&ch)
	start := time.Now()
	if err := l.sw.Apply(ctx, l.meterBands(need), mods, outs...); err != nil {
		l.reportProgrammed(nil) // what the bridge holds after all
		return fmt.Errorf("bridge: %s: %w", ch, err)
	}
	l.m.metrics.bundle(l.sw.DPID(), kindSync, len(mods), time.Since(start))
	l.meters = append(l.meters, need...)
	var gone []of.Flow // what the changes took away from installed flows
	l.mu.Lock()
	for _, f := range ch.Deletes {
		gone = append(gone, f)
		l.installed.Remove(f)
	}
	for _, f := range ch.Modifies {
		if old, ok := l.installed.Get(f.Key()); ok {
			gone = append(gone, old)
		}
	}
	for k, w := range want { // the adds and the modifies, by the desired flows' keys
		l.installed.AddShared(k, w.shared, w.f.Cookie)
	}
	l.desiredCount = l.desired.Len()
	l.mu.Unlock()
	l.dirty, l.invalid = map[of.FlowKey]bool{}, nil
	if maybe := pipeline.Meters(gone); len(maybe) > 0 {
		// Meters nothing punts through any more.
		l.mu.Lock()
		inUse := pipeline.Meters(l.installed.Flows())
		l.mu.Unlock()
		if unused := without(l.meters, inUse); len(unused) > 0 {
			if err := l.deleteMeters(ctx, unused); err != nil {
				l.log.Warn("could not delete unused meters", zap.Error(err))
			}
		}
		l.meters = inUse
	}
	return nil
}

// sendOuts sends packet-outs with no bundle to ride behind.
func (l *loop) sendOuts(ctx context.Context, outs []ofctl.PacketOut) error {
	for _, po := range outs {
		if err := l.sw.PacketOut(ctx, po); err != nil {
			if errors.Is(err, ofctl.ErrDisconnected) {
				return err
			}
			l.log.Debug("sending a punt's packet-out failed", zap.Error(err))
		}
	}
	return nil
}

// openFlowErrors collects every *ofctl.OpenFlowError in an error tree.
func openFlowErrors(err error) []*ofctl.OpenFlowError {
	var out []*ofctl.OpenFlowError
	var walk func(error)
	walk = func(e error) {
		if oe, ok := e.(*ofctl.OpenFlowError); ok {
			out = append(out, oe)
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			if x := u.Unwrap(); x != nil {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}

// quarantine leaves out the flows a failed bundle names; it reports
// whether there were any, so the caller can retry at once without them.
func (l *loop) quarantine(err error) bool {
	found := false
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, oe := range openFlowErrors(err) {
		if oe.Flow == nil || pipeline.Cookie(oe.Flow.Cookie).App() == pipeline.AppPipeline && pipeline.Cookie(oe.Flow.Cookie).Kind() == 0 {
			continue // the base pipeline is not optional
		}
		k := oe.Flow.Key()
		l.rejected[k] = rejection{*oe.Flow, oe.Error()}
		l.dirty[k] = true
		l.log.Error("switch rejected a flow; left out until its app changes it", zap.Stringer("flow", *oe.Flow), zap.Error(oe))
		found = true
	}
	return found
}

// nextRound picks a round no dumped flow uses: one past the highest seen,
// skipping 0 (flows of no controller).
func nextRound(cookies []uint64) uint16 {
	seen := map[uint16]bool{}
	maxRound := uint16(0)
	for _, c := range cookies {
		r := pipeline.Cookie(c).Round()
		seen[r] = true
		maxRound = max(maxRound, r)
	}
	r := maxRound + 1
	for i := 0; i < 1<<16 && (r == 0 || seen[r]); i++ {
		r++ // bounded: a switch holding every round cannot hang us
	}
	return r
}

// meter is the band of a punt-path meter: a port's own, or a shared one.
func (l *loop) meter(id uint32) ofctl.Meter {
	c := l.m.cfg
	if id == pipeline.MeterFromRemotes {
		// Packets from tunnels were metered at their source chassis
		// already; this meter serves every remote port at once.
		return ofctl.Meter{ID: id, Rate: 10 * c.PuntRate, Burst: 10 * c.PuntBurst}
	}
	return ofctl.Meter{ID: id, Rate: c.PuntRate, Burst: c.PuntBurst}
}

// meterBands are the meters with their configured bands.
func (l *loop) meterBands(ids []uint32) []ofctl.Meter {
	out := make([]ofctl.Meter, len(ids))
	for i, id := range ids {
		out[i] = l.meter(id)
	}
	return out
}

// deleteMeters removes meters no installed flow punts through.
func (l *loop) deleteMeters(ctx context.Context, ids []uint32) error {
	var errs []error
	for _, id := range ids {
		if err := l.sw.DeleteMeter(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("meter %d: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// without returns the ids of a that are not in b, in a's order.
func without(a, b []uint32) []uint32 {
	drop := make(map[uint32]bool, len(b))
	for _, id := range b {
		drop[id] = true
	}
	var out []uint32
	for _, id := range a {
		if !drop[id] {
			out = append(out, id)
		}
	}
	return out
}
