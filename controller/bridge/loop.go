package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/internal/apps"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// maxPuntBatch is how many punts' answers the loop gathers for one
// bundle; a last batch from a punt worker may take it past that.
const maxPuntBatch = 256

// loop is one bridge's loop and everything only it touches.
type loop struct {
	m       *Manager
	sw      Switch
	log     *zap.Logger
	kickCh  chan struct{}
	punts   chan *puntBatch
	pending pendingChanges

	// The view the bridge's desired flows were computed from (the
	// node's, with the local chassis' own bindings laid over it), and
	// the facts they were computed for.
	eff     *view.View
	local   *Local // nil: not the local chassis' bridge (base pipeline only)
	desired *apps.Desired
	// dirty are the keys whose desired flow may differ from the
	// installed one; invalid are reactive flow deletes not yet sent.
	dirty   map[of.FlowKey]bool
	invalid []of.FlowMod

	mu        sync.Mutex // guards what other goroutines read
	round     uint16
	installed of.FlowSet
	synced    bool
	// desiredCount is len(desired), for the metrics' scrape.
	desiredCount int
	rejected     map[of.FlowKey]rejection
	current      *view.View // eff, for the punt path
	curLocal     *Local
	// accepted are the reactive flows the switch took in its last
	// moments (acceptedFor), by key: a punt for the same destination
	// soon after (one on its way up while the flow went in, or a burst)
	// needs its reply only, not the flow again. Emptied whenever the
	// loop changes flows itself (step).
	accepted map[of.FlowKey]acceptedFlow

	meters []uint32 // the meters installed flows punt through
	held   []heldPunt
	// flights are the punt bundles sent and not landed, oldest first.
	flights []*puntFlight
	probed  map[netip.Addr]time.Time
	// solicited is when the next hops' MACs were last asked for.
	solicited time.Time
	// role is this node's role on the bridge and the generation it was
	// asked with (mastership.go); remotePorts the switch's ports by name
	// for a remote chassis' bridge.
	role        ofctl.Role
	roleGen     uint64
	remotePorts map[string]uint32
	reporting   atomic.Bool // a ReportRemote in flight
}

type rejection struct {
	flow   of.Flow
	reason string
}

func newLoop(m *Manager, sw Switch) *loop {
	return &loop{m: m, sw: sw, log: m.log.With(zap.String("dpid", fmt.Sprintf("%016x", sw.DPID()))),
		kickCh: make(chan struct{}, 1), punts: make(chan *puntBatch),
		dirty: map[of.FlowKey]bool{}, rejected: map[of.FlowKey]rejection{}, accepted: map[of.FlowKey]acceptedFlow{}, probed: map[netip.Addr]time.Time{}}
}

func (l *loop) kick() {
	select {
	case l.kickCh <- struct{}{}:
	default:
	}
}

func (l *loop) status() (uint16, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.round, l.synced
}

func (l *loop) rejectedFlows() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]string{}
	for _, r := range l.rejected {
		out[r.flow.Format(pipeline.Names())] = r.reason
	}
	return out
}

// run serves the bridge until ctx ends: replay once the node is ready,
// then apply changes, answer punts and retry held ones, in order.
func (l *loop) run(ctx context.Context) error {
	l.kick()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	probeTick := time.NewTicker(probeRefresh / 5)
	defer probeTick.Stop()
	solicitTick := time.NewTicker(solicitRetry)
	defer solicitTick.Stop()
	// A remote chassis' port list is read again when the switch says a
	// port changed, and every portRefresh in case a change went unsaid.
	var portChanges <-chan struct{}
	if pw, ok := l.sw.(portWatcher); ok {
		portChanges = pw.PortChanges()
	}
	portTick := time.NewTicker(portRefresh)
	defer portTick.Stop()
	delay := l.m.cfg.RetryDelay
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			l.landAll(ctx)
			l.dropHeld()
			return ctx.Err()
		case b := <-l.punts:
			batches, n := []*puntBatch{b}, len(b.reqs)
		more:
			for n < maxPuntBatch {
				select {
				case b := <-l.punts:
					batches, n = append(batches, b), n+len(b.reqs)
				default:
					break more
				}
			}
			l.answerBatch(ctx, batches)
			continue
		case err := <-l.landing():
			l.landFlight(ctx, err)
			continue
		case <-tick.C:
			if len(l.held) > 0 {
				l.expireHeld()
			}
			l.forgetAccepted(time.Now())
			continue
		case <-probeTick.C:
			if !l.slave() {
				l.probe(ctx)
			}
			continue
		case <-solicitTick.C:
			if !l.slave() {
				l.solicit(ctx)
			}
			continue
		case <-portChanges:
			l.refreshRemotePorts(ctx)
			continue
		case <-portTick.C:
			l.refreshRemotePorts(ctx)
			continue
		case <-retry:
			retry = nil
		case <-l.kickCh:
		}
		l.landAll(ctx)
		l.mu.Lock()
		clear(l.accepted) // the step may delete or replace any of them
		l.mu.Unlock()
		err := l.step(ctx)
		switch {
		case err == nil:
			delay = l.m.cfg.RetryDelay
		case ctx.Err() != nil || errors.Is(err, ofctl.ErrDisconnected):
			l.dropHeld()
			return err
		case l.quarantine(err):
			l.kick() // at once, without the flows the switch refused
		default:
			l.log.Error("bridge update failed; retrying", zap.Error(err), zap.Duration("in", delay))
			retry = time.After(delay)
			delay = min(2*delay, 30*time.Second)
		}
	}
}

// step brings the bridge up to the newest view: the first time (once the
// node is ready) a replay, then the changed objects' flows and the stale
// reactive flows in one bundle; then held punts, probes and what is now
// programmed. A lost feed or new bridge facts replay again: a new round
// sweeps everything the old one held, reactive flows included.
func (l *loop) step(ctx context.Context) error {
	// Never replay from a partial topology, nor without knowing which
	// bridge is the chassis' (WaitLocal).
	base, local, changes, full, ok := l.m.work(l)
	if !ok {
		return nil
	}
	if master, err := l.takeRole(ctx); err != nil || !master {
		return err // a slave writes nothing; becoming master replays
	}
	if local != nil && local.DPID != l.sw.DPID() {
		local = nil
	}
	if l.unconcerned(base, local, changes, full) {
		return nil
	}
	if local == nil {
		local = l.remoteLocal(ctx, base)
	}
	eff := base
	if local != nil {
		eff = base.WithChassisPorts(local.Bridge.Chassis, local.Bindings)
	}
	l.mu.Lock()
	synced := l.synced
	l.mu.Unlock()
	was := l.local
	before := l.eff
	factsChanged := (was == nil) != (local == nil) || was != nil && local != nil && !was.Bridge.Equal(local.Bridge)
	if !synced || full || factsChanged {
		if err := l.replay(ctx, eff, local); err != nil {
			l.pending.add(nil, true)
			return err
		}
		before = nil // announce everything served
		l.retryHeld(ctx)
	} else {
		if local != nil {
			changes = append(changes, overlayChanges(was.Bindings, local.Bindings)...)
			for _, k := range l.m.pipeline.Update(l.desired, l.eff, eff, local.Bridge, changes) {
				l.dirty[k] = true
			}
			l.invalid = append(l.invalid, l.m.pipeline.Invalidates(l.eff, eff, changes)...)
		}
		l.setView(eff, local)
		start, dirty := time.Now(), len(l.dirty)
		// Held punts the new view answers ride in the same bundle.
		held := l.answerHeld()
		if err := l.sync(ctx, held.mods, held.outs); err != nil {
			return err
		}
		l.deliveredHeld(held)
		if ce := l.log.Check(zap.DebugLevel, "bridge updated"); ce != nil && dirty > 0 {
			ce.Write(zap.Uint64("index", eff.Index()), zap.Int("changes", len(changes)), zap.Int("flows", dirty),
				zap.Int("held-answered", len(held.ready)), zap.Duration("took", time.Since(start)))
		}
	}
	l.probe(ctx)
	l.announce(ctx, before)
	l.solicit(ctx)
	l.reportProgrammed(nil)
	l.reportRemote(ctx, eff, local)
	return nil
}

// unconcerned moves the bridge to the new view without a step when
// nothing in the batch can change its flows (apps.Concerns): same facts,
// same bindings, nothing pending, only changes to ports it neither holds
// nor serves. A node that masters hundreds of bridges then answers a bind
// with the few that host its network.
func (l *loop) unconcerned(base *view.View, local *Local, changes []topology.Change, full bool) bool {
	was := l.local
	if full || len(changes) == 0 || was == nil || len(l.dirty) > 0 || len(l.invalid) > 0 || len(l.held) > 0 {
		return false
	}
	if local != was && !(local == nil && was.Remote) {
		return false // the agent reported the bridge again
	}
	l.mu.Lock()
	synced := l.synced
	l.mu.Unlock()
	if !synced {
		return false
	}
	// A remote bridge's bindings are the topology's (and its taps'); when
	// no port of its chassis changed, the view is already its own.
	eff := base
	if !was.Remote || len(was.named) > 0 {
		eff = base.WithChassisPorts(was.Bridge.Chassis, was.Bindings)
	}
	if apps.Concerns(l.eff, eff, was.Bridge.Chassis, changes) {
		return false
	}
	l.setView(eff, was)
	return true
}

// compute is the whole desired state of the bridge: the apps' flows for
// the local chassis' bridge, none for another (the base pipeline alone).
func (l *loop) compute(eff *view.View, local *Local) *apps.Desired {
	if local == nil {
		return apps.NoFlows()
	}
	return l.m.pipeline.Compute(eff, local.Bridge)
}

func (l *loop) setView(eff *view.View, local *Local) {
	l.eff, l.local = eff, local
	l.mu.Lock()
	l.current, l.curLocal = eff, local
	l.mu.Unlock()
}

// view is the bridge's current view and facts, for the punt path.
func (l *loop) view() (*view.View, *Local) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.current, l.curLocal
}

// overlayChanges are port changes for the ports whose local binding came,
// went or changed its ofport.
func overlayChanges(before, after []topology.Binding) []topology.Change {
	was := map[string]uint32{}
	for _, b := range before {
		was[b.PortID] = b.OFPort
	}
	var out []topology.Change
	for _, b := range after {
		if of, ok := was[b.PortID]; !ok || of != b.OFPort {
			out = append(out, topology.Change{Resource: topology.ResourcePort, Op: "update", ID: b.PortID})
		}
		delete(was, b.PortID)
	}
	ids := make([]string, 0, len(was))
	for id := range was {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		out = append(out, topology.Change{Resource: topology.ResourcePort, Op: "update", ID: id})
	}
	return out
}
