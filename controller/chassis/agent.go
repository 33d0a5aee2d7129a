package chassis

import (
	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/controller/chassis/vswitch"
	"github.com/wyvern-sdn/wyvern/internal/tlsconfig"
	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// AgentConfig configures the local-OVS agent.
type AgentConfig struct {
	Endpoint     string // the OVSDB of the local OVS: unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT
	Bridge       string // integration bridge, e.g. br-int
	DatapathType string // system or netdev, for a bridge the agent creates
	Controller   string // the OpenFlow target the bridge connects to: the node's own
	// Others, if set, are the other members' OpenFlow targets: the
	// bridge lists them too, so that another node can take it over (one
	// master at a time, by role requests) when its own node is lost.
	Others func() []string
	// BridgeMappings: physical network → the operator's bridge holding
	// its uplink; the agent patches the integration bridge to each.
	BridgeMappings map[string]string
	// TLS, when set, is given to OVS as its SSL configuration (set-ssl)
	// and secures an ssl: Endpoint.
	TLS tlsconfig.Files
	// Metrics is where libovsdb's metrics are registered (nil: nowhere).
	Metrics prometheus.Registerer
}

// Tunnel port names, one per encapsulation.
var tunnelPortNames = map[string]string{topology.TypeVXLAN: "wyv-vxlan", topology.TypeGRE: "wyv-gre"}

// BridgeFacts is what the agent learns from OVSDB about its bridge.
type BridgeFacts struct {
	DatapathID  uint64
	TunnelPorts map[string]uint32 // encapsulation → ofport
	// PhysicalPorts: physical network → ofport of its patch port.
	PhysicalPorts map[string]uint32
	Bindings      []topology.Binding
}

func (f BridgeFacts) equal(o BridgeFacts) bool {
	if f.DatapathID != o.DatapathID || len(f.TunnelPorts) != len(o.TunnelPorts) || !slices.Equal(f.Bindings, o.Bindings) ||
		!maps.Equal(f.PhysicalPorts, o.PhysicalPorts) {
		return false
	}
	for k, v := range f.TunnelPorts {
		if o.TunnelPorts[k] != v {
			return false
		}
	}
	return true
}

// Agent keeps the local OVS the way the node needs it — the bridge with
// fail_mode=secure, OpenFlow 1.3 and 1.5, the node as controller, one
// flow-based tunnel port per encapsulation — and reports the bridge's
// facts (datapath id, tunnel ports, which interfaces carry which logical
// port) whenever they change. With TLS files it also keeps OVS's SSL
// configuration naming them. It reconnects to ovsdb-server and re-ensures
// everything after either OVS daemon restarts.
type Agent struct {
	cfg       AgentConfig
	log       *zap.Logger
	onChange  func(BridgeFacts)
	connected atomic.Bool // a session is up: connected and monitoring
	metrics   *sessionMetrics
	kick      chan struct{} // look at OVSDB again (Poke)
}

// NewAgent builds an agent; onChange is called from the agent's goroutine.
func NewAgent(cfg AgentConfig, log *zap.Logger, onChange func(BridgeFacts)) *Agent {
	cfg.TLS = absFiles(cfg.TLS)
	a := &Agent{cfg: cfg, log: log.Named("agent"), onChange: onChange, metrics: newSessionMetrics(), kick: make(chan struct{}, 1)}
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(a.metrics)
	}
	return a
}

// Connected reports whether the agent has a session with ovsdb-server
// (connected and monitoring); cheap enough for every health probe.
func (a *Agent) Connected() bool { return a.connected.Load() }

// Run keeps a session with ovsdb-server until ctx ends.
func (a *Agent) Run(ctx context.Context) {
	const first = 200 * time.Millisecond
	delay := first
	for ctx.Err() == nil {
		start := time.Now()
		err := a.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > 10*time.Second {
			delay = first // it worked for a while: reconnect promptly
		}
		a.log.Warn("OVSDB session ended; reconnecting", zap.Error(err), zap.Duration("in", delay))
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

func dbModel() (model.ClientDBModel, error) {
	return model.NewClientDBModel("Open_vSwitch", map[string]model.Model{
		"Open_vSwitch": &vswitch.OpenvSwitch{},
		"Bridge":       &vswitch.Bridge{},
		"Port":         &vswitch.Port{},
		"Interface":    &vswitch.Interface{},
		"Controller":   &vswitch.Controller{},
		"SSL":          &vswitch.SSL{},
	})
}

// session runs one connection: monitor, ensure, report, until it drops.
func (a *Agent) session(ctx context.Context) error {
	m, err := dbModel()
	if err != nil {
		return err
	}
	opts, err := a.dialOptions()
	if err != nil {
		return err
	}
	a.metrics.newSession()
	ovs, err := client.NewOVSDBClient(m, opts...)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = ovs.Connect(cctx)
	cancel()
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", a.cfg.Endpoint, err)
	}
	defer ovs.Close()
	kick, poke := a.kick, a.Poke
	ovs.Cache().AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc:    func(string, model.Model) { poke() },
		UpdateFunc: func(string, model.Model, model.Model) { poke() },
		DeleteFunc: func(string, model.Model) { poke() },
	})
	if _, err := ovs.MonitorAll(ctx); err != nil {
		return fmt.Errorf("monitoring: %w", err)
	}
	a.connected.Store(true)
	defer a.connected.Store(false)
	a.log.Info("connected to OVSDB", zap.String("endpoint", a.cfg.Endpoint))
	var last BridgeFacts
	reported := false
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	poke()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ovs.DisconnectNotify():
			return errors.New("ovsdb-server went away")
		case <-kick:
		case <-tick.C:
		}
		// libovsdb signals a disconnect with a non-blocking send that
		// a busy loop can miss; ask every time.
		if !ovs.Connected() {
			return errors.New("ovsdb-server went away")
		}
		if err := a.ensure(ctx, ovs); err != nil {
			if errors.Is(err, client.ErrNotConnected) {
				return err
			}
			a.log.Warn("could not set up the bridge; retrying", zap.Error(err))
		}
		facts, ok := a.facts(ovs) // report what is there even if ensure failed
		if ok && (!reported || !facts.equal(last)) {
			a.onChange(facts)
			last, reported = facts, true
		}
	}
}

// ensure makes OVSDB hold the bridge, its controller and tunnel ports
// (and, with TLS files, the SSL configuration) as Wyvern needs them,
// changing only what differs.
func (a *Agent) ensure(ctx context.Context, ovs client.Client) error {
	var roots []vswitch.OpenvSwitch
	if err := ovs.List(ctx, &roots); err != nil {
		return err
	}
	if len(roots) != 1 {
		return fmt.Errorf("OVSDB has %d Open_vSwitch rows; run ovs-vsctl init", len(roots))
	}
	root := roots[0]
	ops, err := a.ensureSSL(ctx, ovs, &root)
	if err != nil {
		return err
	}
	br := &vswitch.Bridge{Name: a.cfg.Bridge}
	if err := ovs.Get(ctx, br); errors.Is(err, client.ErrNotFound) {
		more, err := a.createBridge(ovs, root)
		if err != nil {
			return err
		}
		ops = append(ops, more...)
		a.log.Info("creating the integration bridge", zap.String("bridge", a.cfg.Bridge))
	} else if err != nil {
		return err
	} else {
		more, err := a.fixBridge(ctx, ovs, br)
		if err != nil {
			return err
		}
		ops = append(ops, more...)
		more, err = a.ensureTunnels(ctx, ovs, br)
		if err != nil {
			return err
		}
		ops = append(ops, more...)
		more, err = a.ensurePatches(ctx, ovs, br)
		if err != nil {
			return err
		}
		ops = append(ops, more...)
	}
	if len(ops) == 0 {
		return nil
	}
	res, err := ovs.Transact(ctx, ops...)
	if err != nil {
		return err
	}
	_, err = ovsdb.CheckOperationResults(res, ops)
	return err
}

// Poke makes the agent look at OVSDB again now (the members changed:
// the bridge's controllers may have to).
func (a *Agent) Poke() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// targets are the OpenFlow targets the bridge connects to: the node's
// own, then the other members' (sorted, without duplicates of it).
func (a *Agent) targets() []string {
	out := []string{a.cfg.Controller}
	if a.cfg.Others != nil {
		for _, t := range a.cfg.Others() {
			if !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	slices.Sort(out[1:])
	return out
}

// controllerRows are the bridge's Controller rows, one per target.
func (a *Agent) controllerRows(prefix string) []*vswitch.Controller {
	mode := vswitch.ControllerConnectionModeOutOfBand
	backoff := 1000
	var out []*vswitch.Controller
	for i, t := range a.targets() {
		out = append(out, &vswitch.Controller{UUID: fmt.Sprintf("%s%d", prefix, i), Target: t, ConnectionMode: &mode, MaxBackoff: &backoff})
	}
	return out
}

func (a *Agent) createBridge(ovs client.Client, root vswitch.OpenvSwitch) ([]ovsdb.Operation, error) {
	secure := vswitch.BridgeFailModeSecure
	iface := &vswitch.Interface{UUID: "briface", Name: a.cfg.Bridge, Type: "internal"}
	port := &vswitch.Port{UUID: "brport", Name: a.cfg.Bridge, Interfaces: []string{iface.UUID}}
	br := &vswitch.Bridge{UUID: "br", Name: a.cfg.Bridge, DatapathType: a.cfg.DatapathType, FailMode: &secure,
		Protocols: []vswitch.BridgeProtocols{vswitch.BridgeProtocolsOpenflow13, vswitch.BridgeProtocolsOpenflow15},
		Ports:     []string{port.UUID}}
	models := []model.Model{iface, port}
	for _, ctl := range a.controllerRows("ctl") {
		br.Controller = append(br.Controller, ctl.UUID)
		models = append(models, ctl)
	}
	for _, typ := range []string{topology.TypeVXLAN, topology.TypeGRE} {
		ti, tp := tunnelRows(typ)
		models = append(models, ti, tp)
		br.Ports = append(br.Ports, tp.UUID)
	}
	models = append(models, br)
	ops, err := createAll(ovs, models...)
	if err != nil {
		return nil, err
	}
	mut, err := ovs.Where(&root).Mutate(&root, model.Mutation{Field: &root.Bridges, Mutator: ovsdb.MutateOperationInsert, Value: []string{br.UUID}})
	if err != nil {
		return nil, err
	}
	return append(ops, mut...), nil
}

// createAll creates rows of several tables (libovsdb's Create takes one
// table per call).
func createAll(ovs client.Client, models ...model.Model) ([]ovsdb.Operation, error) {
	var ops []ovsdb.Operation
	for _, m := range models {
		op, err := ovs.Create(m)
		if err != nil {
			return nil, err
		}
		ops = append(ops, op...)
	}
	return ops, nil
}

// tunnelRows builds the interface and port of a flow-based tunnel port.
func tunnelRows(typ string) (*vswitch.Interface, *vswitch.Port) {
	name := tunnelPortNames[typ]
	i := &vswitch.Interface{UUID: "if_" + typ, Name: name, Type: typ,
		Options: map[string]string{"remote_ip": "flow", "key": "flow"}}
	return i, &vswitch.Port{UUID: "port_" + typ, Name: name, Interfaces: []string{i.UUID}}
}

// fixBridge corrects fail mode, protocols and the controller of an
// existing bridge.
func (a *Agent) fixBridge(ctx context.Context, ovs client.Client, br *vswitch.Bridge) ([]ovsdb.Operation, error) {
	var ops []ovsdb.Operation
	want := *br
	changed := []any{}
	if br.FailMode == nil || *br.FailMode != vswitch.BridgeFailModeSecure {
		secure := vswitch.BridgeFailModeSecure
		want.FailMode = &secure
		changed = append(changed, &want.FailMode)
	}
	if !slices.Contains(br.Protocols, vswitch.BridgeProtocolsOpenflow15) || !slices.Contains(br.Protocols, vswitch.BridgeProtocolsOpenflow13) {
		want.Protocols = []vswitch.BridgeProtocols{vswitch.BridgeProtocolsOpenflow13, vswitch.BridgeProtocolsOpenflow15}
		changed = append(changed, &want.Protocols)
	}
	var have []string // targets of rows as Wyvern makes them
	for _, uuid := range br.Controller {
		c := &vswitch.Controller{UUID: uuid}
		if err := ovs.Get(ctx, c); err == nil && c.MaxBackoff != nil && *c.MaxBackoff == 1000 &&
			c.ConnectionMode != nil && *c.ConnectionMode == vswitch.ControllerConnectionModeOutOfBand {
			have = append(have, c.Target)
		}
	}
	wantTargets := a.targets()
	slices.Sort(have)
	sorted := slices.Clone(wantTargets)
	slices.Sort(sorted)
	if len(have) != len(br.Controller) || !slices.Equal(have, sorted) {
		want.Controller = nil
		for _, ctl := range a.controllerRows("ctl") {
			cops, err := ovs.Create(ctl)
			if err != nil {
				return nil, err
			}
			ops = append(ops, cops...)
			want.Controller = append(want.Controller, ctl.UUID)
		}
		changed = append(changed, &want.Controller)
		a.log.Info("bridge controllers", zap.Strings("targets", wantTargets))
	}
	if len(changed) == 0 {
		return nil, nil
	}
	uops, err := ovs.Where(br).Update(&want, changed...)
	if err != nil {
		return nil, err
	}
	return append(ops, uops...), nil
}

// ensureTunnels adds a missing tunnel port and fixes one whose type or
// options drifted.
func (a *Agent) ensureTunnels(ctx context.Context, ovs client.Client, br *vswitch.Bridge) ([]ovsdb.Operation, error) {
	var ops []ovsdb.Operation
	for _, typ := range []string{topology.TypeVXLAN, topology.TypeGRE} {
		name := tunnelPortNames[typ]
		iface := &vswitch.Interface{Name: name}
		err := ovs.Get(ctx, iface)
		if errors.Is(err, client.ErrNotFound) {
			ti, tp := tunnelRows(typ)
			cops, err := createAll(ovs, ti, tp)
			if err != nil {
				return nil, err
			}
			mut, err := ovs.Where(br).Mutate(br, model.Mutation{Field: &br.Ports, Mutator: ovsdb.MutateOperationInsert, Value: []string{tp.UUID}})
			if err != nil {
				return nil, err
			}
			ops = append(ops, append(cops, mut...)...)
			continue
		}
		if err != nil {
			return nil, err
		}
		if iface.Type != typ || iface.Options["remote_ip"] != "flow" || iface.Options["key"] != "flow" {
			want := *iface
			want.Type = typ
			want.Options = map[string]string{"remote_ip": "flow", "key": "flow"}
			uops, err := ovs.Where(iface).Update(&want, &want.Type, &want.Options)
			if err != nil {
				return nil, err
			}
			ops = append(ops, uops...)
		}
	}
	return ops, nil
}

// facts reads the bridge's datapath id, tunnel ofports and bindings from
// the cache; ok is false until vswitchd has filled them in.
func (a *Agent) facts(ovs client.Client) (BridgeFacts, bool) {
	ctx := context.Background()
	br := &vswitch.Bridge{Name: a.cfg.Bridge}
	if err := ovs.Get(ctx, br); err != nil || br.DatapathID == nil {
		return BridgeFacts{}, false
	}
	dpid, err := strconv.ParseUint(*br.DatapathID, 16, 64)
	if err != nil {
		return BridgeFacts{}, false
	}
	f := BridgeFacts{DatapathID: dpid, TunnelPorts: map[string]uint32{}, PhysicalPorts: map[string]uint32{}}
	for _, puuid := range br.Ports {
		p := &vswitch.Port{UUID: puuid}
		if ovs.Get(ctx, p) != nil {
			continue
		}
		for _, iuuid := range p.Interfaces {
			i := &vswitch.Interface{UUID: iuuid}
			if ovs.Get(ctx, i) != nil || i.Ofport == nil || *i.Ofport <= 0 {
				continue
			}
			for typ, name := range tunnelPortNames {
				if i.Name == name && i.Type == typ {
					f.TunnelPorts[typ] = uint32(*i.Ofport)
				}
			}
			if pn := i.ExternalIDs[physnetKey]; pn != "" && i.Type == "patch" && a.cfg.BridgeMappings[pn] != "" {
				f.PhysicalPorts[pn] = uint32(*i.Ofport)
			}
			if id := i.ExternalIDs["iface-id"]; id != "" {
				f.Bindings = append(f.Bindings, topology.Binding{PortID: id, OFPort: uint32(*i.Ofport)})
			}
		}
	}
	// Two interfaces naming one port (a stale tap): keep the lowest ofport,
	// deterministically, so reports do not flap.
	sort.Slice(f.Bindings, func(i, j int) bool {
		a, b := f.Bindings[i], f.Bindings[j]
		return a.PortID < b.PortID || a.PortID == b.PortID && a.OFPort < b.OFPort
	})
	f.Bindings = slices.CompactFunc(f.Bindings, func(a, b topology.Binding) bool { return a.PortID == b.PortID })
	return f, true
}
