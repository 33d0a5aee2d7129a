package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Bridge is what the reconciler needs of a switch session (an
// *ofctl.Switch; a fake in unit tests).
type Bridge interface {
	DPID() uint64
	// Generation orders sessions of the same datapath: the newest owns it.
	Generation() uint64
	DumpFlows(ctx context.Context) (ofctl.Dump, error)
	Bundle(ctx context.Context, mods []of.FlowMod) error
	SetMeter(ctx context.Context, m ofctl.Meter) error
	DeleteMeter(ctx context.Context, id uint32) error
	MeterStats(ctx context.Context) ([]ofctl.MeterStats, error)
}

// DesiredFlows returns the flows the apps want on a bridge, beyond the base
// pipeline. Cookie rounds are ignored: the reconciler sets them.
type DesiredFlows func(dpid uint64) []of.Flow

// ReconcilerConfig configures a Reconciler.
type ReconcilerConfig struct {
	Mode    pipeline.Mode
	Desired DesiredFlows // nil: the base pipeline only
	// RetryDelay is the pause after a failed bundle (default 1s).
	RetryDelay time.Duration
	// OnSynced, if set, is called after each bundle a bridge commits.
	OnSynced func(dpid uint64)
	// Meter gives the band of a meter the desired flows punt through
	// (default: 1000 packets/s, burst 1000).
	Meter func(id uint32) ofctl.Meter
}

// Reconciler keeps every connected bridge's flows equal to the desired
// set: one loop per bridge, so changes to a bridge are serialized.
type Reconciler struct {
	cfg ReconcilerConfig
	log *zap.Logger

	mu      sync.Mutex
	bridges map[uint64]*bridgeState
}

type bridgeState struct {
	kick chan struct{}
	gen  uint64
	// rejected are desired flows left out: the switch refused them, or
	// they carry timeouts the reconciler cannot track. Reported, never
	// retried until the desired flow changes.
	rejected map[of.FlowKey]rejection

	mu        sync.Mutex
	round     uint16
	installed of.FlowSet
	meters    []uint32 // the meters installed flows punt through
	synced    bool
}

type rejection struct {
	flow   of.Flow
	reason string
}

// NewReconciler builds a reconciler.
func NewReconciler(cfg ReconcilerConfig, log *zap.Logger) *Reconciler {
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = time.Second
	}
	if cfg.Meter == nil {
		cfg.Meter = func(id uint32) ofctl.Meter { return ofctl.Meter{ID: id, Rate: 1000, Burst: 1000} }
	}
	return &Reconciler{cfg: cfg, log: log.Named("reconciler"), bridges: map[uint64]*bridgeState{}}
}

// Update asks the loops of the given bridges to recompute their desired
// flows; with no dpids, every bridge.
func (r *Reconciler) Update(dpids ...uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	kick := func(b *bridgeState) {
		select {
		case b.kick <- struct{}{}:
		default: // a recompute is already due
		}
	}
	if len(dpids) == 0 {
		for _, b := range r.bridges {
			kick(b)
		}
		return
	}
	for _, d := range dpids {
		if b, ok := r.bridges[d]; ok {
			kick(b)
		}
	}
}

// Installed returns the flows the reconciler knows to be on a bridge and
// the bridge's cookie round; ok is false until the first sync committed.
func (r *Reconciler) Installed(dpid uint64) (flows of.FlowSet, round uint16, ok bool) {
	r.mu.Lock()
	b := r.bridges[dpid]
	r.mu.Unlock()
	if b == nil {
		return of.FlowSet{}, 0, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.installed.Clone(), b.round, b.synced
}

// Round is the bridge's current cookie round, without copying its flows:
// what the punt path needs for every flow it installs.
func (r *Reconciler) Round(dpid uint64) (uint16, bool) {
	r.mu.Lock()
	b := r.bridges[dpid]
	r.mu.Unlock()
	if b == nil {
		return 0, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.round, b.synced
}

// desired is the base pipeline plus the apps' flows, in a round, less the
// rejected flows.
func (r *Reconciler) desired(dpid uint64, round uint16, st *bridgeState) of.FlowSet {
	set := of.NewFlowSet(pipeline.MissFlows(r.cfg.Mode, round)...)
	if r.cfg.Desired == nil {
		return set
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, f := range r.cfg.Desired(dpid) {
		f = pipeline.WithRound(f, round)
		k := f.Key()
		if rej, ok := st.rejected[k]; ok && rej.flow.SameContent(f) {
			continue
		}
		delete(st.rejected, k) // the app changed it: try again
		if f.IdleTimeout != 0 || f.HardTimeout != 0 {
			st.rejected[k] = rejection{f, "reconciled flows are permanent; flows with timeouts belong to the punt path"}
			r.log.Error("flow left out", zap.Stringer("flow", f), zap.String("reason", st.rejected[k].reason))
			continue
		}
		set.Add(f)
	}
	return set
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
func (r *Reconciler) quarantine(st *bridgeState, err error, log *zap.Logger) bool {
	found := false
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, oe := range openFlowErrors(err) {
		if oe.Flow == nil || pipeline.Cookie(oe.Flow.Cookie).App() == pipeline.AppPipeline {
			continue // the base pipeline is not optional
		}
		st.rejected[oe.Flow.Key()] = rejection{*oe.Flow, oe.Error()}
		log.Error("switch rejected a flow; left out until its app changes it", zap.Stringer("flow", *oe.Flow), zap.Error(oe))
		found = true
	}
	return found
}

// Rejected returns the flows left out of a bridge, with why.
func (r *Reconciler) Rejected(dpid uint64) map[string]string {
	r.mu.Lock()
	b := r.bridges[dpid]
	r.mu.Unlock()
	out := map[string]string{}
	if b == nil {
		return out
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, rej := range b.rejected {
		out[rej.flow.String()] = rej.reason
	}
	return out
}

// nextRound picks a round no dumped flow uses: one past the highest seen,
// skipping 0 (flows of no controller).
func nextRound(cookies []uint64) uint16 {
	seen := map[uint16]bool{}
	maxRound := uint16(0)
	for _, c := range cookies {
		seen[pipeline.Cookie(c).Round()] = true
		maxRound = max(maxRound, pipeline.Cookie(c).Round())
	}
	r := maxRound + 1
	for i := 0; i < 1<<16 && (r == 0 || seen[r]); i++ {
		r++ // bounded: a switch holding every round cannot hang us
	}
	return r
}

// Run reconciles one bridge until ctx ends (the switch disconnects). It
// first replays everything under a new cookie round and, in the same
// bundle, deletes every other round by cookie mask: the bridge is never
// empty and keeps no stale flow. Then it applies diffs as Update asks.
func (r *Reconciler) Run(ctx context.Context, br Bridge) error {
	dpid := br.DPID()
	log := r.log.With(zap.String("dpid", fmt.Sprintf("%016x", dpid)))
	st := &bridgeState{kick: make(chan struct{}, 1), gen: br.Generation(), rejected: map[of.FlowKey]rejection{}}
	r.mu.Lock()
	if cur := r.bridges[dpid]; cur != nil && cur.gen > st.gen {
		r.mu.Unlock()
		return fmt.Errorf("reconciler: a newer session owns bridge %016x", dpid)
	}
	r.bridges[dpid] = st
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		if r.bridges[dpid] == st {
			delete(r.bridges, dpid)
		}
		r.mu.Unlock()
	}()

	delay := r.cfg.RetryDelay
	for {
		err := r.replay(ctx, br, st, log)
		if err == nil {
			break
		}
		if ctx.Err() != nil || errors.Is(err, ofctl.ErrDisconnected) {
			return err
		}
		if r.quarantine(st, err, log) {
			continue
		}
		log.Error("replay failed; retrying", zap.Error(err), zap.Duration("in", delay))
		if !sleep(ctx, delay) {
			return ctx.Err()
		}
		delay = min(2*delay, 30*time.Second)
	}
	delay = r.cfg.RetryDelay
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-st.kick:
		}
		err := r.sync(ctx, br, st)
		if err == nil {
			delay = r.cfg.RetryDelay
			continue
		}
		if ctx.Err() != nil || errors.Is(err, ofctl.ErrDisconnected) {
			return err
		}
		if !r.quarantine(st, err, log) {
			log.Error("sync failed; retrying", zap.Error(err), zap.Duration("in", delay))
			if !sleep(ctx, delay) {
				return ctx.Err()
			}
			delay = min(2*delay, 30*time.Second)
		}
		select {
		case st.kick <- struct{}{}:
		default:
		}
	}
}

func (r *Reconciler) replay(ctx context.Context, br Bridge, st *bridgeState, log *zap.Logger) error {
	dump, err := br.DumpFlows(ctx)
	if err != nil {
		return fmt.Errorf("reconciler: dump: %w", err)
	}
	cookies := dump.Cookies()
	round := nextRound(cookies)
	want := r.desired(br.DPID(), round, st)
	flows := want.Flows()
	mods := make([]of.FlowMod, 0, len(flows)+4)
	for _, f := range flows {
		mods = append(mods, of.FlowMod{Command: of.FlowAdd, Flow: f})
	}
	stale := map[uint16]bool{}
	for _, c := range cookies {
		if pipeline.Cookie(c).Round() != round {
			stale[pipeline.Cookie(c).Round()] = true
		}
	}
	for old := range stale {
		mods = append(mods, of.DeleteByCookie(pipeline.NewCookie(old, 0, 0), pipeline.RoundMask))
	}
	// Meters first: a punt flow's meter must exist before the flow does.
	// Every desired meter is set (a controller restart may bring a new
	// rate); meters nothing punts through any more go after the bundle.
	meters := pipeline.Meters(flows)
	existing, err := br.MeterStats(ctx)
	if err != nil {
		return fmt.Errorf("reconciler: meter stats: %w", err)
	}
	if err := r.setMeters(ctx, br, meters); err != nil {
		return err
	}
	start := time.Now()
	if err := br.Bundle(ctx, mods); err != nil {
		return fmt.Errorf("reconciler: replay bundle: %w", err)
	}
	var had []uint32
	for _, m := range existing {
		had = append(had, m.ID)
	}
	unused := without(had, meters)
	st.mu.Lock()
	st.round, st.installed, st.meters, st.synced = round, want, meters, true
	st.mu.Unlock()
	if err := r.deleteMeters(ctx, br, unused); err != nil {
		log.Warn("could not delete unused meters", zap.Error(err))
	}
	if r.cfg.OnSynced != nil {
		r.cfg.OnSynced(br.DPID())
	}
	log.Info("bridge replayed", zap.Uint16("round", round), zap.Int("flows", want.Len()),
		zap.Int("stale-rounds", len(stale)), zap.Duration("took", time.Since(start)))
	return nil
}

func (r *Reconciler) sync(ctx context.Context, br Bridge, st *bridgeState) error {
	st.mu.Lock()
	round, installed, had := st.round, st.installed, st.meters
	st.mu.Unlock()
	want := r.desired(br.DPID(), round, st)
	changes := of.Diff(installed, want)
	if changes.Empty() {
		return nil
	}
	meters := pipeline.Meters(want.Flows())
	if err := r.setMeters(ctx, br, without(meters, had)); err != nil {
		return err
	}
	if err := br.Bundle(ctx, changes.Ordered()); err != nil {
		return fmt.Errorf("reconciler: %s: %w", changes, err)
	}
	st.mu.Lock()
	st.installed, st.meters = want, meters
	st.mu.Unlock()
	if err := r.deleteMeters(ctx, br, without(had, meters)); err != nil {
		r.log.Warn("could not delete unused meters", zap.Error(err))
	}
	if r.cfg.OnSynced != nil {
		r.cfg.OnSynced(br.DPID())
	}
	return nil
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

// setMeters makes the meters exist with their configured bands.
func (r *Reconciler) setMeters(ctx context.Context, br Bridge, ids []uint32) error {
	for _, id := range ids {
		if err := br.SetMeter(ctx, r.cfg.Meter(id)); err != nil {
			return fmt.Errorf("reconciler: meter %d: %w", id, err)
		}
	}
	return nil
}

// deleteMeters removes meters no installed flow punts through.
func (r *Reconciler) deleteMeters(ctx context.Context, br Bridge, ids []uint32) error {
	var errs []error
	for _, id := range ids {
		if err := br.DeleteMeter(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("meter %d: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
