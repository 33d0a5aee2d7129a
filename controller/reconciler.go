package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Bridge is what the reconciler needs of a switch session (an
// *ofctl.Switch; a fake in unit tests).
type Bridge interface {
	DPID() uint64
	DumpFlows(ctx context.Context) (ofctl.Dump, error)
	Bundle(ctx context.Context, mods []pipeline.FlowMod) error
}

// DesiredFlows returns the flows the apps want on a bridge, beyond the base
// pipeline. Cookie rounds are ignored: the reconciler sets them.
type DesiredFlows func(dpid uint64) []pipeline.Flow

// ReconcilerConfig configures a Reconciler.
type ReconcilerConfig struct {
	Mode    pipeline.Mode
	Desired DesiredFlows // nil: the base pipeline only
	// RetryDelay is the pause after a failed bundle (default 1s).
	RetryDelay time.Duration
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

	mu        sync.Mutex
	round     uint16
	installed pipeline.FlowSet
	synced    bool
}

// NewReconciler builds a reconciler.
func NewReconciler(cfg ReconcilerConfig, log *zap.Logger) *Reconciler {
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = time.Second
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
func (r *Reconciler) Installed(dpid uint64) (flows pipeline.FlowSet, round uint16, ok bool) {
	r.mu.Lock()
	b := r.bridges[dpid]
	r.mu.Unlock()
	if b == nil {
		return pipeline.FlowSet{}, 0, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.installed.Clone(), b.round, b.synced
}

// desired is the base pipeline plus the apps' flows, in a round.
func (r *Reconciler) desired(dpid uint64, round uint16) pipeline.FlowSet {
	set := pipeline.NewFlowSet(pipeline.MissFlows(r.cfg.Mode, round)...)
	if r.cfg.Desired != nil {
		for _, f := range r.cfg.Desired(dpid) {
			set.Add(f.WithRound(round))
		}
	}
	return set
}

// nextRound picks a round no dumped flow uses: one past the highest seen,
// skipping 0 (flows of no controller).
func nextRound(cookies []pipeline.Cookie) uint16 {
	seen := map[uint16]bool{}
	maxRound := uint16(0)
	for _, c := range cookies {
		seen[c.Round()] = true
		maxRound = max(maxRound, c.Round())
	}
	r := maxRound + 1
	for r == 0 || seen[r] {
		r++
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
	st := &bridgeState{kick: make(chan struct{}, 1)}
	r.mu.Lock()
	r.bridges[dpid] = st
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		if r.bridges[dpid] == st {
			delete(r.bridges, dpid)
		}
		r.mu.Unlock()
	}()

	for {
		err := r.replay(ctx, br, st, log)
		if err == nil {
			break
		}
		if ctx.Err() != nil || errors.Is(err, ofctl.ErrDisconnected) {
			return err
		}
		log.Error("replay failed; retrying", zap.Error(err))
		if !sleep(ctx, r.cfg.RetryDelay) {
			return ctx.Err()
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-st.kick:
		}
		if err := r.sync(ctx, br, st); err != nil {
			if ctx.Err() != nil || errors.Is(err, ofctl.ErrDisconnected) {
				return err
			}
			log.Error("sync failed; retrying", zap.Error(err))
			if !sleep(ctx, r.cfg.RetryDelay) {
				return ctx.Err()
			}
			select {
			case st.kick <- struct{}{}:
			default:
			}
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
	want := r.desired(br.DPID(), round)
	flows := want.Flows()
	mods := make([]pipeline.FlowMod, 0, len(flows)+4)
	for _, f := range flows {
		mods = append(mods, pipeline.FlowMod{Command: pipeline.FlowAdd, Flow: f})
	}
	stale := map[uint16]bool{}
	for _, c := range cookies {
		if c.Round() != round {
			stale[c.Round()] = true
		}
	}
	for old := range stale {
		mods = append(mods, pipeline.DeleteByCookie(pipeline.NewCookie(old, 0, 0), pipeline.RoundMask))
	}
	start := time.Now()
	if err := br.Bundle(ctx, mods); err != nil {
		return fmt.Errorf("reconciler: replay bundle: %w", err)
	}
	st.mu.Lock()
	st.round, st.installed, st.synced = round, want, true
	st.mu.Unlock()
	log.Info("bridge replayed", zap.Uint16("round", round), zap.Int("flows", want.Len()),
		zap.Int("stale-rounds", len(stale)), zap.Duration("took", time.Since(start)))
	return nil
}

func (r *Reconciler) sync(ctx context.Context, br Bridge, st *bridgeState) error {
	st.mu.Lock()
	round, installed := st.round, st.installed
	st.mu.Unlock()
	want := r.desired(br.DPID(), round)
	changes := pipeline.Diff(installed, want)
	if changes.Empty() {
		return nil
	}
	if err := br.Bundle(ctx, changes.Ordered()); err != nil {
		return fmt.Errorf("reconciler: %s: %w", changes, err)
	}
	st.mu.Lock()
	st.installed = want
	st.mu.Unlock()
	return nil
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
