// Package bridge keeps each connected OpenFlow bridge programmed: one loop
// per bridge, the only writer to it. The loop replays the bridge when it
// connects (a new cookie round, then the old rounds swept), applies the
// desired flows the registered apps recompute for each batch of committed
// changes (only the objects the batch affects), deletes the reactive
// flows the batch made stale, and answers punts — all in order, so an
// answer computed from an older view than the bridge's is recomputed
// before anything of it is installed. Punts for a port that exists but is
// plugged nowhere yet are held (bounded) and answered in the bundle that
// brings its binding. The chassis hears which of its ports a bundle
// completes as the bundle goes out.
//
// It imports the app registry (internal/apps), the topology view, pipeline
// and ofctl — and tunnels, for the probes a userspace datapath needs
// before its first packet to a remote chassis.
package bridge

import (
	"context"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/internal/apps"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Switch is what a bridge loop needs of an OpenFlow session (an
// *ofctl.Switch; a fake in unit tests).
type Switch interface {
	DPID() uint64
	// Generation orders sessions of the same datapath: the newest owns it.
	Generation() uint64
	DumpFlows(ctx context.Context) (ofctl.Dump, error)
	Bundle(ctx context.Context, mods []of.FlowMod) error
	// Apply sets meters and bundles flow-mods in two round trips, then
	// packet-outs right behind the commit. It keeps none of then once it
	// returns (the caller reuses the slice).
	Apply(ctx context.Context, meters []ofctl.Meter, mods []of.FlowMod, then ...ofctl.PacketOut) error
	PacketOut(ctx context.Context, po ofctl.PacketOut) error
	DeleteMeter(ctx context.Context, id uint32) error
	MeterStats(ctx context.Context) ([]ofctl.MeterStats, error)
}

// Config configures the bridges of a node.
type Config struct {
	Mode pipeline.Mode
	// IdleTimeout is how long, in seconds, a reactive flow lives without
	// traffic (default 60).
	IdleTimeout uint16
	// PuntRate and PuntBurst bound, in packets/s and packets, what each
	// local port may punt (an OVS meter; default 100 and 100). Punts of
	// packets from tunnels share one meter with ten times the rate.
	PuntRate, PuntBurst uint32
	// RetryDelay is the pause after a failed bundle (default 1 s).
	RetryDelay time.Duration
	// HoldFor bounds how long a punt for a port that is not plugged yet
	// waits for its binding (default 2 s); HoldMax bounds how many wait
	// on one bridge (default 256), HoldPerDestination how many for one
	// destination (default 8: a connection's first packets, a SYN and
	// its retransmits, not a whole stream). Beyond any, the packet is
	// dropped.
	HoldFor            time.Duration
	HoldMax            int
	HoldPerDestination int
	// ProbeTunnels makes the local bridge probe every remote chassis it
	// tunnels to (a userspace datapath drops the first packet to a remote
	// it has not resolved).
	ProbeTunnels bool
	// WaitLocal: the node manages a local chassis; no bridge is replayed
	// before its agent has said which bridge that is and what is plugged
	// into it — else the local bridge would be replayed with the base
	// pipeline alone and lose its ports' flows until it said so.
	WaitLocal bool
	// Metrics is where the bridges' metrics are registered (nil: nowhere).
	Metrics prometheus.Registerer
}

func (c *Config) defaults() {
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 60
	}
	if c.PuntRate == 0 {
		c.PuntRate = 100
	}
	if c.PuntBurst == 0 {
		c.PuntBurst = 100
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = time.Second
	}
	if c.HoldFor <= 0 {
		c.HoldFor = 2 * time.Second
	}
	if c.HoldMax <= 0 {
		c.HoldMax = 256
	}
	if c.HoldPerDestination <= 0 {
		c.HoldPerDestination = 8
	}
}

// Local is what the chassis agent knows of the local bridge: its datapath
// id and facts, and the ports plugged into it (the complete set, as OVSDB
// shows them, less those another chassis still holds).
type Local struct {
	DPID     uint64
	Bridge   view.Bridge
	Bindings []topology.Binding
	// Remote: not the agent's report but another chassis' bridge, made
	// from the topology and the switch (mastership.go); Unmanaged: a
	// chassis no node manages, whose bindings the master records, from
	// the port names in named.
	Remote, Unmanaged bool
	named             []topology.Binding
}

// Hooks are the manager's calls out: what a bridge cannot do itself.
type Hooks struct {
	// Claim records a port as the holder of a shared address (a
	// replicated write); called in a goroutine of its own.
	Claim func(ctx context.Context, c app.VIPClaim) error
	// Learn records a neighbour's MAC on a physical network (a
	// replicated write); called in a goroutine of its own.
	Learn func(ctx context.Context, nb topology.Neighbour) error
	// Programmed tells the chassis which of the local bridge's plugged
	// ports it now holds every flow of: their ofports, by port id.
	Programmed func(ports map[string]uint32)
	// Mastership, if set, says whether this node should be master of a
	// bridge, and the generation to claim it with (mastership.go); ok is
	// false when no member is known live.
	Mastership func(dpid uint64) (master bool, generation uint64, ok bool)
	// Remote, if set, makes the facts of another chassis' bridge from
	// its record and the switch's port names (central mode), and the
	// bindings its port names say (a VM's tap named as Nova names it).
	Remote func(c view.Chassis, ports map[string]uint32) (view.Bridge, []topology.Binding)
	// ReportRemote records what a bridge of a chassis no node manages
	// holds (its bindings, each active: the master has its flows); called
	// in a goroutine of its own.
	ReportRemote func(ctx context.Context, chassis string, bindings []topology.Binding) error
	// Resync asks the cluster's watcher for the whole view at once: a
	// bridge connected while none was, and the manager skipped views
	// nobody wanted (see WantsViews).
	Resync func()
}

// Manager runs the loop of every connected bridge. It implements
// ofctl.Handler.
type Manager struct {
	cfg      Config
	log      *zap.Logger
	pipeline *apps.Pipeline
	hooks    Hooks
	stats    Stats
	metrics  *metrics

	mu      sync.Mutex
	base    *view.View // the newest applied view
	skipped bool       // views passed unbuilt while no bridge wanted them
	ready   bool       // the node has caught up: bridges may be replayed
	local   *Local
	bridges map[uint64]*loop
	// claims in flight, so that a flood of announcements of one address
	// becomes one write
	claiming sync.Map
	learning sync.Map
	// requests recycles a batch's punt requests when none outlives its
	// answerPunts (every answer sent from the punt worker): most punts
	// under load, and a punt's largest allocation.
	requests slicePool[puntRequest]
	// packetOuts recycles a batch's packet-outs (Switch.Apply keeps none).
	packetOuts slicePool[ofctl.PacketOut]
	// resubmit is each table's re-injection action list, built once and
	// shared by every re-injected punt (nothing changes one).
	resubmit [256][]of.Action
}

// NewManager builds a manager; hooks may be zero.
func NewManager(cfg Config, hooks Hooks, log *zap.Logger) *Manager {
	cfg.defaults()
	m := &Manager{cfg: cfg, log: log.Named("bridge"), pipeline: apps.New(cfg.Mode), hooks: hooks,
		bridges: map[uint64]*loop{}, metrics: newMetrics()}
	for t := range m.resubmit {
		m.resubmit[t] = []of.Action{of.Resubmit{Table: uint8(t)}}
	}
	if cfg.Metrics != nil {
		mt := m.metrics
		cfg.Metrics.MustRegister(mt.roleChanges, mt.bundles, mt.flowMods, mt.duration, mt.rounds, mt.punts, mt.answer, newCollector(m))
	}
	return m
}

// Update hands the bridges a batch of committed changes and the view
// after it (cluster.Watch's callback): resync means everything may have
// changed.
func (m *Manager) Update(v *view.View, changes []topology.Change, resync bool) {
	m.mu.Lock()
	if resync {
		m.skipped = false
	}
	m.base = v
	for _, l := range m.bridges {
		l.pending.add(changes, resync)
	}
	m.mu.Unlock()
	m.kickAll()
}

// WantsViews reports whether a bridge is connected, which needs each
// batch's view. While none is, the watcher may pass batches unbuilt; the
// manager then forgets its view, and the first bridge to connect asks for
// a resync.
func (m *Manager) WantsViews() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.bridges) > 0 {
		return true
	}
	m.skipped, m.base = true, nil
	return false
}

// SetReady lets the bridges be replayed: the node's view is complete. A
// bridge is never replayed from a partial topology, which would delete
// the flows of every port the node has not applied yet.
func (m *Manager) SetReady() {
	m.mu.Lock()
	m.ready = true
	m.mu.Unlock()
	m.kickAll()
}

// SetLocal records what the agent knows of the local bridge.
func (m *Manager) SetLocal(l Local) {
	m.mu.Lock()
	m.local = &l
	m.mu.Unlock()
	m.kickAll()
}

func (m *Manager) kickAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range m.bridges {
		l.kick()
	}
}

// work is what a bridge's loop is to bring its bridge up to: the newest
// view, the local bridge, and the changes that led there — taken together
// under the lock Update holds, so that no change is taken with a view that
// does not hold it yet (it would be read against the older view, found to
// change nothing, and lost). ok is false, and nothing is taken, while the
// node is not ready or has no view, or (WaitLocal) no local bridge.
func (m *Manager) work(l *loop) (base *view.View, local *Local, changes []topology.Change, full, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.ready || m.base == nil || m.cfg.WaitLocal && m.local == nil {
		return nil, nil, nil, false, false
	}
	changes, full = l.pending.take()
	return m.base, m.local, changes, full, true
}

// Connected implements ofctl.Handler: the bridge's loop runs for the
// session's lifetime.
func (m *Manager) Connected(ctx context.Context, sw *ofctl.Switch) { _ = m.Run(ctx, sw) }

// Run is the loop of one bridge until ctx ends (the switch disconnects).
func (m *Manager) Run(ctx context.Context, sw Switch) error {
	l := newLoop(m, sw)
	m.mu.Lock()
	if cur := m.bridges[sw.DPID()]; cur != nil && cur.sw.Generation() > sw.Generation() {
		m.mu.Unlock()
		return fmt.Errorf("bridge: a newer session owns bridge %016x", sw.DPID())
	}
	m.bridges[sw.DPID()] = l
	resync := m.skipped
	m.mu.Unlock()
	if resync && m.hooks.Resync != nil {
		m.hooks.Resync() // until the view comes, the loop waits (no base)
	}
	defer func() {
		m.mu.Lock()
		if m.bridges[sw.DPID()] == l {
			delete(m.bridges, sw.DPID())
			m.metrics.forget(sw.DPID()) // no newer session counts on
		}
		m.mu.Unlock()
	}()
	return l.run(ctx)
}

// PacketIn implements ofctl.Handler: the punt is answered from the
// bridge's current view and handed to its loop, which installs the
// answer — recomputed first if the loop has moved on to a newer view.
func (m *Manager) PacketIn(ctx context.Context, sw *ofctl.Switch, pi ofctl.PacketIn) {
	m.stats.Received.Add(1)
	m.mu.Lock()
	l := m.bridges[sw.DPID()]
	m.mu.Unlock()
	if l == nil {
		m.stats.count(app.Unanswered)
		return
	}
	l.punt(ctx, pi)
}

// Synced reports whether a bridge has been replayed, and its cookie
// round.
func (m *Manager) Synced(dpid uint64) (round uint16, ok bool) {
	m.mu.Lock()
	l := m.bridges[dpid]
	m.mu.Unlock()
	if l == nil {
		return 0, false
	}
	return l.status()
}

// Rejected returns the flows left out of a bridge, with why.
func (m *Manager) Rejected(dpid uint64) map[string]string {
	m.mu.Lock()
	l := m.bridges[dpid]
	m.mu.Unlock()
	if l == nil {
		return map[string]string{}
	}
	return l.rejectedFlows()
}

// Stats are the manager's punt counters.
func (m *Manager) Stats() *Stats { return &m.stats }

// pendingChanges accumulate, for one loop, the changes since it last
// looked.
type pendingChanges struct {
	mu      sync.Mutex
	changes []topology.Change
	full    bool
}

func (p *pendingChanges) add(cs []topology.Change, resync bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if resync {
		p.full, p.changes = true, nil
		return
	}
	if !p.full {
		p.changes = append(p.changes, cs...)
	}
}

func (p *pendingChanges) take() ([]topology.Change, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs, full := p.changes, p.full
	p.changes, p.full = nil, false
	return cs, full
}

// Stats count what the punt path did, by outcome.
type Stats struct {
	Received   atomic.Uint64
	Answered   atomic.Uint64 // flows installed for the destination, packet re-injected
	Flooded    atomic.Uint64 // unknown destination, packet re-injected where the proactive pipeline sends it
	Held       atomic.Uint64 // destination a port not plugged yet: held for its binding
	HeldDone   atomic.Uint64 // held punts answered when the binding came
	HeldLost   atomic.Uint64 // held punts dropped: no binding in time, or too many waiting
	Stale      atomic.Uint64 // answers recomputed because the bridge moved to a newer view
	Malformed  atomic.Uint64 // could not be decoded, or not what the reason says; dropped
	Unanswered atomic.Uint64 // no app answers the reason, or no topology for the bridge; dropped
	Announced  atomic.Uint64 // VIP announcements seen
	Learned    atomic.Uint64 // VIP holders recorded
	Unroutable atomic.Uint64 // sent to a router for an address none of its subnets' ports holds; dropped
	TTLExpired atomic.Uint64 // routed packets whose TTL ran out
	ICMPSent   atomic.Uint64 // ICMP time exceeded answers sent for them
	TooBig     atomic.Uint64 // routed packets larger than the MTU of the network they were routed to
	FragSent   atomic.Uint64 // ICMP fragmentation needed answers sent for them
	Probes     atomic.Uint64 // tunnel probes sent
	Replied    atomic.Uint64 // answered with a packet the app built (DHCP, DNS)
	PassedOn   atomic.Uint64 // not the app's to answer: re-injected unchanged (DNS for other names)
}

// count records an outcome.
func (s *Stats) count(o app.Outcome) {
	switch o {
	case app.Answered:
		s.Answered.Add(1)
	case app.Flooded:
		s.Flooded.Add(1)
	case app.Held:
		s.Held.Add(1)
	case app.Malformed:
		s.Malformed.Add(1)
	case app.Unanswered:
		s.Unanswered.Add(1)
	case app.VIPAnnounced:
		s.Announced.Add(1)
	case app.Unroutable:
		s.Unroutable.Add(1)
	case app.TTLExpired:
		s.TTLExpired.Add(1)
	case app.TooBig:
		s.TooBig.Add(1)
	case app.Replied:
		s.Replied.Add(1)
	case app.PassedOn:
		s.PassedOn.Add(1)
	}
}

// sent records a packet an answer built and sent.
func (s *Stats) sent(o app.Outcome) {
	switch o {
	case app.TTLExpired:
		s.ICMPSent.Add(1)
	case app.TooBig:
		s.FragSent.Add(1)
	}
}

// Counters are the node-wide punt counters, by the names /debug/punts
// has always used.
func (s *Stats) Counters() map[string]uint64 {
	return map[string]uint64{"received": s.Received.Load(), "answered": s.Answered.Load(), "flooded": s.Flooded.Load(),
		"held": s.Held.Load(), "held_answered": s.HeldDone.Load(), "held_dropped": s.HeldLost.Load(),
		"recomputed_stale": s.Stale.Load(), "malformed": s.Malformed.Load(), "unanswered": s.Unanswered.Load(),
		"vip_announcements": s.Announced.Load(), "vips_learned": s.Learned.Load(), "unroutable": s.Unroutable.Load(),
		"ttl_expired": s.TTLExpired.Load(), "icmp_time_exceeded_sent": s.ICMPSent.Load(), "too_big": s.TooBig.Load(),
		"icmp_frag_needed_sent": s.FragSent.Load(), "tunnel_probes": s.Probes.Load(), "replied": s.Replied.Load(), "passed_on": s.PassedOn.Load()}
}
