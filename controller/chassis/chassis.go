// Package chassis is the node's local-OVS agent: it keeps the integration
// bridge, its controller and tunnel ports as Wyvern needs them (through
// libovsdb), learns which logical port each interface plugs in
// (external_ids:iface-id), and keeps the cluster's record of the chassis
// true. A plugged VM is a local event first: the bridge is programmed at
// once from the chassis' own report of its ports, and one raft command
// then records the binding and its status (ACTIVE once the bridge holds
// the port's flows) for everyone else.
//
// It imports the cluster (commands), the topology and its view, and
// libovsdb.
package chassis

import (
	"context"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/controller/cluster"
	"github.com/wyvern-sdn/wyvern/internal/tlsconfig"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
)

// Config is the local chassis a node manages.
type Config struct {
	Name         string
	EncapIP      string
	OVSDB        string // endpoint of the local ovsdb-server
	Bridge       string
	DatapathType string
	// Controller is the OpenFlow target the bridge connects to.
	Controller string
	NodeID     string
	// TLS is the node's certificate, key and CA: given to OVS (set-ssl)
	// for an ssl: Controller, and used to reach an ssl: OVSDB.
	TLS tlsconfig.Files
	// BridgeMappings: physical network → the bridge of its uplink
	// (--bridge-mappings); Gateway: --gateway.
	BridgeMappings map[string]string
	Gateway        bool
	// BindWait bounds how long a newly plugged port's binding waits for
	// the bridge to hold its flows, so that binding and ACTIVE are one
	// raft command (default 2 s). Past it the binding is recorded DOWN.
	BindWait time.Duration
	// Metrics is where the agent's OVSDB metrics are registered (nil:
	// nowhere).
	Metrics prometheus.Registerer
	// OtherControllers, if set, are the other members' OpenFlow targets
	// the bridge lists after the node's own (AgentConfig.Others).
	OtherControllers func() []string
}

// Cluster is what the chassis needs of the replicated topology.
type Cluster interface {
	Propose(ctx context.Context, t cluster.CommandType, payload any) (cluster.Result, error)
	View() *view.View
	Ready() bool
	WaitIndex(ctx context.Context, index uint64) error
}

// Hooks connect the chassis to the bridges.
type Hooks struct {
	// Local hands the bridges the local bridge's facts and its plugged
	// ports.
	Local func(dpid uint64, br view.Bridge, bindings []topology.Binding)
	// Connected reports whether the bridge with a datapath id has an
	// OpenFlow session.
	Connected func(dpid uint64) bool
}

// Chassis is the local chassis: what the agent found, what the bridge
// holds, and what the cluster must be told.
type Chassis struct {
	cfg     Config
	log     *zap.Logger
	cluster Cluster
	hooks   Hooks
	agent   *Agent
	kickCh  chan struct{}

	mu         sync.Mutex
	facts      BridgeFacts
	known      bool
	programmed map[string]uint32 // port id → ofport the bridge holds every flow of
	plugged    map[string]time.Time
	handMu     sync.Mutex         // serializes handOver; guards handed*
	handed     []topology.Binding // last handed to the bridges
	handedBr   view.Bridge
	handedDP   uint64
}

// New builds the chassis; Run starts it.
func New(cfg Config, c Cluster, hooks Hooks, log *zap.Logger) *Chassis {
	if cfg.BindWait <= 0 {
		cfg.BindWait = 2 * time.Second
	}
	ch := &Chassis{cfg: cfg, log: log.Named("chassis"), cluster: c, hooks: hooks, kickCh: make(chan struct{}, 1),
		programmed: map[string]uint32{}, plugged: map[string]time.Time{}}
	ch.agent = NewAgent(AgentConfig{Endpoint: cfg.OVSDB, Bridge: cfg.Bridge, DatapathType: cfg.DatapathType,
		Controller: cfg.Controller, TLS: cfg.TLS, BridgeMappings: cfg.BridgeMappings, Metrics: cfg.Metrics, Others: cfg.OtherControllers}, ch.log, ch.onFacts)
	return ch
}

// Run keeps the local OVS and reports until ctx ends.
func (ch *Chassis) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); ch.agent.Run(ctx) }()
	ch.report(ctx)
	wg.Wait()
}

// Kick asks for a report round: the topology or the bridge changed.
func (ch *Chassis) Kick() {
	select {
	case ch.kickCh <- struct{}{}:
	default:
	}
}

// MembersChanged makes the agent set the bridge's controllers again.
func (ch *Chassis) MembersChanged() { ch.agent.Poke() }

// Programmed is the bridges' word, after each change to the local
// bridge, on which plugged ports it holds every flow of.
func (ch *Chassis) Programmed(ports map[string]uint32) {
	ch.mu.Lock()
	ch.programmed = ports
	ch.mu.Unlock()
	ch.Kick() // the bridge may have just connected, too
}

// onFacts is the agent's callback.
func (ch *Chassis) onFacts(f BridgeFacts) {
	ch.mu.Lock()
	now := time.Now()
	seen := map[string]bool{}
	for _, b := range f.Bindings {
		seen[b.PortID] = true
		if _, ok := ch.plugged[b.PortID]; !ok {
			ch.plugged[b.PortID] = now
		}
	}
	for id := range ch.plugged {
		if !seen[id] {
			delete(ch.plugged, id)
		}
	}
	ch.facts, ch.known = f, true
	ch.mu.Unlock()
	ch.log.Info("local bridge", zap.String("dpid", fmt.Sprintf("%016x", f.DatapathID)),
		zap.Any("tunnel-ports", f.TunnelPorts), zap.Int("bindings", len(f.Bindings)))
	// The bridges hear of a plugged port now, not after the report
	// round (which may be waiting on a raft commit): the port's flows go
	// in while the binding is proposed. Before the node is ready, its
	// view cannot say which ports another chassis holds; the first
	// round hands over then.
	if ch.cluster.Ready() {
		ch.handOver()
	}
	ch.Kick()
}

// claims are the ports this chassis claims: a local interface's port,
// unless another chassis still holds it (a migration completes when the
// old host lets go).
func (ch *Chassis) claims(v *view.View, facts BridgeFacts) []topology.Binding {
	var claim []topology.Binding
	for _, b := range facts.Bindings {
		p, ok := v.Port(b.PortID)
		if ok && p.Located() && p.Chassis != ch.cfg.Name {
			continue
		}
		claim = append(claim, topology.Binding{PortID: b.PortID, OFPort: b.OFPort})
	}
	return claim
}

// OVSDBConnected reports whether the agent has a session with the local
// ovsdb-server.
func (ch *Chassis) OVSDBConnected() bool { return ch.agent.Connected() }

// Registered reports whether the node's view of the topology holds this
// chassis.
func (ch *Chassis) Registered() bool {
	_, ok := ch.cluster.View().Chassis(ch.cfg.Name)
	return ok
}

// Bridge is the local bridge's facts for the apps, and its datapath id.
func (ch *Chassis) Bridge() (view.Bridge, uint64, bool) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return view.Bridge{Chassis: ch.cfg.Name, TunnelPorts: ch.facts.TunnelPorts, PhysicalPorts: ch.facts.PhysicalPorts}, ch.facts.DatapathID, ch.known
}

// report keeps the cluster's record of this chassis true: its
// registration, and its ports' bindings and status. It is
// level-triggered: each round compares the topology with what the agent
// and the bridge know, and proposes only the differences.
func (ch *Chassis) report(ctx context.Context) {
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch.kickCh:
		case <-tick.C:
		case <-retry:
		}
		retry = nil
		if !ch.cluster.Ready() {
			retry = time.After(200 * time.Millisecond)
			continue
		}
		again, err := ch.reportOnce(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			ch.log.Info("chassis report failed; retrying", zap.Error(err))
			retry = time.After(500 * time.Millisecond)
		case again > 0:
			retry = time.After(again)
		}
	}
}

// reportOnce runs one round; again > 0 asks for another after that long
// (a new binding waiting for its flows).
func (ch *Chassis) reportOnce(ctx context.Context) (again time.Duration, err error) {
	ch.mu.Lock()
	facts, known := ch.facts, ch.known
	programmed := ch.programmed
	plugged := make(map[string]time.Time, len(ch.plugged))
	for id, t := range ch.plugged {
		plugged[id] = t
	}
	ch.mu.Unlock()
	if !known {
		return 0, nil
	}
	v := ch.cluster.View()
	name := ch.cfg.Name
	claim := ch.claims(v, facts)
	ch.handOver()
	if err := ch.register(ctx, v, facts); err != nil {
		return 0, err
	}

	// One command records the bindings and their status together: a
	// newly plugged port waits (bounded) for the bridge to hold its
	// flows, so that binding and ACTIVE are not two entries.
	connected := ch.hooks.Connected != nil && ch.hooks.Connected(facts.DatapathID)
	report, differs := make([]topology.Binding, 0, len(claim)), false
	for _, b := range claim {
		p, exists := v.Port(b.PortID)
		if !exists {
			continue // reported again once the port is created
		}
		b.Active = programmed[b.PortID] == b.OFPort
		bound := p.Chassis == name && p.OFPort == b.OFPort
		if !bound && !b.Active && connected {
			if wait := ch.cfg.BindWait - time.Since(plugged[b.PortID]); wait > 0 {
				if again == 0 || wait < again {
					again = wait
				}
				continue // not yet: its flows are on their way
			}
		}
		report = append(report, b)
		if !bound || (p.Status == topology.StatusActive) != b.Active {
			differs = true
		}
	}
	listed := map[string]bool{}
	for _, b := range report {
		listed[b.PortID] = true
	}
	for _, p := range v.LocalPorts(name) {
		if !listed[p.ID] && !slices.ContainsFunc(claim, func(b topology.Binding) bool { return b.PortID == p.ID }) {
			differs = true // unplugged here
		}
	}
	if !differs {
		return again, nil
	}
	// Ports still waiting stay as they are in the record.
	for _, p := range v.LocalPorts(name) {
		if !listed[p.ID] && slices.ContainsFunc(claim, func(b topology.Binding) bool { return b.PortID == p.ID }) {
			report = append(report, topology.Binding{PortID: p.ID, OFPort: p.OFPort, Active: p.Status == topology.StatusActive})
		}
	}
	sort.Slice(report, func(i, j int) bool { return report[i].PortID < report[j].PortID })
	start := time.Now()
	res, err := ch.cluster.Propose(ctx, cluster.CmdChassisPorts, cluster.ChassisPorts{Chassis: name, Bindings: report})
	if ce := ch.log.Check(zap.DebugLevel, "ports reported"); ce != nil {
		ce.Write(zap.Int("ports", len(report)), zap.Uint64("index", res.Index), zap.Duration("took", time.Since(start)), zap.Error(err))
	}
	if err != nil {
		return again, err
	}
	// The next round compares with a view that holds this report (a
	// follower applies what the leader committed a moment later), or it
	// would propose the same again.
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := ch.cluster.WaitIndex(wctx, res.Index); err != nil && ctx.Err() == nil {
		ch.log.Warn("this node has not applied its own report yet", zap.Uint64("index", res.Index), zap.Error(err))
	}
	return again, nil
}

// register proposes the chassis record when it differs from what the
// agent and the bridge say.
func (ch *Chassis) register(ctx context.Context, v *view.View, facts BridgeFacts) error {
	var encaps []string // what the bridge really terminates
	for typ := range facts.TunnelPorts {
		encaps = append(encaps, typ)
	}
	sort.Strings(encaps)
	connected := ch.hooks.Connected != nil && ch.hooks.Connected(facts.DatapathID)
	// The physical networks it really reaches: those whose patch port is
	// on the bridge.
	mappings := map[string]string{}
	for physnet := range facts.PhysicalPorts {
		if b := ch.cfg.BridgeMappings[physnet]; b != "" {
			mappings[physnet] = b
		}
	}
	have, registered := v.Chassis(ch.cfg.Name)
	if registered && have.EncapIP.String() == ch.cfg.EncapIP && have.DatapathID == facts.DatapathID &&
		have.NodeID == ch.cfg.NodeID && slices.Equal(have.Encaps, encaps) && have.Connected == connected &&
		have.Bridge == ch.cfg.Bridge && have.DatapathType == ch.cfg.DatapathType &&
		maps.Equal(have.Mappings, mappings) && have.Gateway == ch.cfg.Gateway {
		return nil
	}
	_, err := ch.cluster.Propose(ctx, cluster.CmdChassisRegister, cluster.ChassisReg{Spec: topology.ChassisSpec{
		Name: ch.cfg.Name, EncapIP: ch.cfg.EncapIP, Encaps: encaps, DatapathID: fmt.Sprintf("%016x", facts.DatapathID),
		NodeID: ch.cfg.NodeID, Connected: connected, LastSeen: time.Now().UTC().Format(time.RFC3339),
		Bridge: ch.cfg.Bridge, DatapathType: ch.cfg.DatapathType, BridgeMappings: mappings, Gateway: ch.cfg.Gateway}})
	return err
}

// handOver gives the bridges the local bridge's newest facts and the
// ports it claims in the newest view, when they changed. The agent's
// callback and the report round both call it; handMu keeps an older
// hand-over from landing after a newer one.
func (ch *Chassis) handOver() {
	ch.handMu.Lock()
	defer ch.handMu.Unlock()
	ch.mu.Lock()
	facts := ch.facts
	ch.mu.Unlock()
	claim := ch.claims(ch.cluster.View(), facts)
	br := view.Bridge{Chassis: ch.cfg.Name, TunnelPorts: facts.TunnelPorts, PhysicalPorts: facts.PhysicalPorts}
	same := ch.handed != nil && slices.Equal(ch.handed, claim) && ch.handedDP == facts.DatapathID &&
		ch.handedBr.Equal(br)
	if same {
		return
	}
	ch.handed, ch.handedBr, ch.handedDP = append([]topology.Binding{}, claim...), br, facts.DatapathID
	if ch.hooks.Local != nil {
		ch.hooks.Local(facts.DatapathID, br, claim)
	}
}
