// Package explain answers the node's debugging endpoints about its local
// chassis: the flows serving a chassis or a port, desired and installed,
// with their cookies decoded (/debug/flows); a packet's walk through the
// desired flows in Go, and on request through the switch's own
// ofproto/trace (/debug/trace); the OVSDB snapshot (/debug/ovsdb).
//
// A node explains only the chassis it manages: its bridge's facts (tunnel
// and patch ports) and installed flows are known to it alone. Asked about
// another chassis it names the node that manages it (trace.ErrElsewhere).
//
// It imports the bridge manager (the loop's view and switch), the trace
// evaluator and the topology view; the ovs package of go-openvswitch for
// ofproto/trace.
package explain

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"

	"github.com/wyvern-sdn/wyvern/controller/bridge"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
	"github.com/wyvern-sdn/wyvern/trace"
)

// Config is the node's local chassis, if any.
type Config struct {
	Node    string
	Chassis string // "": the node manages no chassis
	Bridge  string // the integration bridge's name (ofproto/trace)
	OVSDB   string // the local ovsdb-server's endpoint
	// Logs, if set, are the node's recent log lines (internal/logring).
	Logs func() []string
}

// Service explains the local chassis.
type Service struct {
	cfg     Config
	bridges *bridge.Manager
	dpid    func() (uint64, bool)
	view    func() *view.View

	targetMu sync.Mutex
	target   string // ovs-appctl's -t: the ovs-vswitchd control socket
}

// New builds the service: dpid says the local bridge's datapath id once
// the agent knows it, view is the node's newest view.
func New(cfg Config, bridges *bridge.Manager, dpid func() (uint64, bool), v func() *view.View) *Service {
	return &Service{cfg: cfg, bridges: bridges, dpid: dpid, view: v}
}

// local is the local chassis' bridge as its loop programmed it, and the
// walkable desired flows; chassis, when set, must be the local one.
func (s *Service) local(chassis string) (bridge.Explained, trace.Bridge, error) {
	v := s.view()
	if chassis != "" && chassis != s.cfg.Chassis {
		if v != nil {
			if c, ok := v.Chassis(chassis); ok {
				if c.NodeID != "" && c.NodeID != s.cfg.Node {
					return bridge.Explained{}, trace.Bridge{}, fmt.Errorf("%w: chassis %s is managed by node %s: ask its API", trace.ErrElsewhere, chassis, c.NodeID)
				}
				return bridge.Explained{}, trace.Bridge{}, fmt.Errorf("%w: chassis %s is not managed by node %s", trace.ErrElsewhere, chassis, s.cfg.Node)
			}
		}
		return bridge.Explained{}, trace.Bridge{}, fmt.Errorf("%w: chassis %q", trace.ErrNoSuchPort, chassis)
	}
	if s.cfg.Chassis == "" {
		return bridge.Explained{}, trace.Bridge{}, fmt.Errorf("%w: node %s manages no chassis (start it with --ovsdb)", trace.ErrUnavailable, s.cfg.Node)
	}
	dpid, ok := s.dpid()
	if !ok {
		return bridge.Explained{}, trace.Bridge{}, fmt.Errorf("%w: the agent has not found bridge %s yet", trace.ErrUnavailable, s.cfg.Bridge)
	}
	ex, ok := s.bridges.Explain(dpid)
	if !ok || ex.View == nil || ex.Local == nil {
		return bridge.Explained{}, trace.Bridge{}, fmt.Errorf("%w: bridge %s (%016x) is not connected or not programmed yet", trace.ErrUnavailable, s.cfg.Bridge, dpid)
	}
	return ex, trace.ForBridge(ex.Pipeline, ex.View, ex.Local.Bridge, ex.Round), nil
}

// portChassis is the chassis a port is plugged into.
func (s *Service) portChassis(id string) (view.Port, error) {
	v := s.view()
	if v == nil {
		return view.Port{}, fmt.Errorf("%w: no topology yet", trace.ErrUnavailable)
	}
	p, ok := v.Port(id)
	if !ok {
		return view.Port{}, fmt.Errorf("%w: %q", trace.ErrNoSuchPort, id)
	}
	if !p.Located() {
		return view.Port{}, fmt.Errorf("%w: port %s is plugged into no chassis", trace.ErrNotHere, id)
	}
	return p, nil
}

// Flow is one flow of /debug/flows.
type Flow struct {
	Table    uint8  `json:"table"`
	Stage    string `json:"stage"`
	Priority uint16 `json:"priority"`
	Cookie   string `json:"cookie"`
	App      string `json:"app"`
	Object   string `json:"object,omitempty"`
	Flow     string `json:"flow"`
	// State: desired (not compared: no switch dump), installed, missing
	// (desired, not on the switch), differs (on the switch with other
	// actions or cookie), undesired (on the switch, not desired),
	// reactive (on the switch, installed by a punt's answer).
	State     string `json:"state"`
	Installed string `json:"installed,omitempty"` // the switch's version, when it differs
}

// Flows is /debug/flows.
type Flows struct {
	Node    string `json:"node"`
	Chassis string `json:"chassis"`
	DPID    string `json:"dpid"`
	Round   uint16 `json:"round"`
	Mode    string `json:"mode"`
	Port    string `json:"port,omitempty"`
	// Compared reports whether the switch's flows were dumped and
	// compared; DumpError says why not.
	Compared  bool           `json:"compared"`
	DumpError string         `json:"dump_error,omitempty"`
	Counts    map[string]int `json:"counts"`
	Flows     []Flow         `json:"flows"`
}

// FlowsOf answers /debug/flows for a chassis or a port (one of them; the
// local chassis when neither).
func (s *Service) FlowsOf(ctx context.Context, chassis, port string) (Flows, error) {
	if chassis != "" && port != "" {
		return Flows{}, fmt.Errorf("%w: give chassis or port, not both", trace.ErrBadRequest)
	}
	var object uint64
	if port != "" {
		p, err := s.portChassis(port)
		if err != nil {
			return Flows{}, err
		}
		chassis, object = p.Chassis, pipeline.PortObject(p.Key)
	}
	ex, tb, err := s.local(chassis)
	if err != nil {
		return Flows{}, err
	}
	names := s.names(tb)
	name := trace.ObjectNamer(ex.View)
	out := Flows{Node: s.cfg.Node, Chassis: s.cfg.Chassis, DPID: fmt.Sprintf("%016x", ex.DPID), Round: ex.Round,
		Mode: ex.Pipeline.Mode().String(), Port: port, Counts: map[string]int{}}
	keep := func(f of.Flow) bool {
		return object == 0 || pipeline.Cookie(f.Cookie).Object()&^pipeline.OnDemandMask == object
	}
	row := func(f of.Flow, state string) Flow {
		c := pipeline.Cookie(f.Cookie)
		st, _ := pipeline.StageOf(f.Table)
		obj := ""
		if k := c.Kind(); k != 0 {
			obj = name(k, pipeline.ObjectKey(c.Object()))
			if obj == "" {
				obj = c.String()
			}
		} else if c.App() == pipeline.AppPipeline {
			obj = "table-miss"
		}
		return Flow{Table: f.Table, Stage: st.Name, Priority: f.Priority, Cookie: "0x" + strconv.FormatUint(f.Cookie, 16),
			App: c.App().String(), Object: obj, Flow: f.Format(names), State: state}
	}
	desired := of.NewFlowSet()
	for _, f := range tb.Flows {
		if keep(f) {
			desired.Add(f)
		}
	}
	dump, derr := ex.Switch.DumpFlows(ctx)
	if derr != nil {
		out.DumpError = derr.Error()
		for _, f := range desired.Flows() {
			out.Flows = append(out.Flows, row(f, "desired"))
		}
	} else {
		out.Compared = true
		seen := map[of.FlowKey]bool{}
		for _, f := range dump.Flows {
			if !keep(f) {
				continue
			}
			k := f.Key()
			seen[k] = true
			want, ok := desired.Get(k)
			switch {
			case !ok && (pipeline.Cookie(f.Cookie).OnDemand() || f.IdleTimeout != 0 || f.HardTimeout != 0):
				out.Flows = append(out.Flows, row(f, "reactive"))
			case !ok:
				out.Flows = append(out.Flows, row(f, "undesired"))
			case !want.SameContent(f):
				r := row(want, "differs")
				r.Installed = f.Format(names)
				out.Flows = append(out.Flows, r)
			default:
				out.Flows = append(out.Flows, row(f, "installed"))
			}
		}
		for _, u := range dump.Undecodable {
			if keep(u.Flow) {
				r := row(u.Flow, "undesired")
				r.Flow += " (undecodable: " + u.Err.Error() + ")"
				out.Flows = append(out.Flows, r)
			}
		}
		for _, f := range desired.Flows() {
			if !seen[f.Key()] {
				out.Flows = append(out.Flows, row(f, "missing"))
			}
		}
	}
	sort.SliceStable(out.Flows, func(i, j int) bool {
		a, b := out.Flows[i], out.Flows[j]
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		if a.Priority != b.Priority {
			return a.Priority > b.Priority
		}
		return a.Flow < b.Flow
	})
	for _, f := range out.Flows {
		out.Counts[f.State]++
	}
	if out.Flows == nil {
		out.Flows = []Flow{}
	}
	return out, nil
}

// names are the table and port names flows print with.
func (s *Service) names(tb trace.Bridge) *of.Names {
	n := &of.Names{Tables: pipeline.TableNames(), Ports: map[uint32]string{}}
	for num, p := range tb.Options.Ports {
		n.Ports[num] = p.Name
	}
	return n
}
