// Package apps puts the registered apps together into what one bridge
// runs in a forwarding mode: its desired flows (whole, or recomputed per
// object as changes come), and the dispatch of punts to the app that
// answers their reason. It is pure, like the apps: the controller's
// bridge loop does the I/O.
//
// It imports the app contract, the apps, pipeline and the topology view.
package apps

import (
	"fmt"
	"slices"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Pipeline is the registered apps in a forwarding mode.
type Pipeline struct {
	mode     pipeline.Mode
	apps     []app.App // the registered ones, then the port punt flows
	byID     map[pipeline.App]app.App
	byReason map[pipeline.PuntReason]app.App
	shared   *sharedFlows // the flows the node's bridges hold in common
}

// New composes the registered apps for a mode. Two apps claiming one
// cookie app or one punt reason is a programming error: it panics.
func New(mode pipeline.Mode) *Pipeline { return compose(mode, Registered()) }

func compose(mode pipeline.Mode, apps []app.App) *Pipeline {
	p := &Pipeline{mode: mode, byID: map[pipeline.App]app.App{}, byReason: map[pipeline.PuntReason]app.App{}, shared: newSharedFlows()}
	for _, a := range append(apps, portPunts{mode}) {
		if _, dup := p.byID[a.ID()]; dup {
			panic(fmt.Sprintf("apps: two apps own cookie app %s", a.ID()))
		}
		p.byID[a.ID()] = a
		for _, r := range a.Reasons() {
			if _, dup := p.byReason[r]; dup {
				panic(fmt.Sprintf("apps: two apps answer punt reason %s", r))
			}
			p.byReason[r] = a
		}
		p.apps = append(p.apps, a)
	}
	return p
}

// Mode is the pipeline's forwarding mode.
func (p *Pipeline) Mode() pipeline.Mode { return p.mode }

// Flows returns every app's flows for one bridge (the table-miss flows of
// the base pipeline aside). Proactive mode gets them all. Reactive mode
// leaves out the flows that serve one remote destination — they come from
// punts, on demand — and gives each local port its metered punt flows
// instead.
func (p *Pipeline) Flows(v *view.View, br view.Bridge) []of.Flow {
	var out []of.Flow
	for _, a := range p.apps {
		out = append(out, p.keep(a, v, br, a.Flows(v, br))...)
	}
	return out
}

// keep drops, in reactive mode, an app's flows that OnDemand says a punt
// installs.
func (p *Pipeline) keep(a app.App, v *view.View, br view.Bridge, flows []of.Flow) []of.Flow {
	if p.mode != pipeline.Reactive {
		return flows
	}
	out := flows[:0]
	for _, f := range flows {
		if !onDemand(a, v, br, f) {
			out = append(out, f)
		}
	}
	return out
}

// onDemand reports whether reactive mode installs a flow on demand, from
// a punt: its app says it serves one destination — and, for an app that
// reconciles what serves its own chassis' ports (app.LocalReconciler),
// that destination is not a port plugged into this bridge's chassis.
func onDemand(a app.App, v *view.View, br view.Bridge, f of.Flow) bool {
	if !a.PerDestination(f) {
		return false
	}
	c := pipeline.Cookie(f.Cookie)
	if _, local := a.(app.LocalReconciler); !local || c.Kind() != pipeline.KindPort {
		return true
	}
	dst, ok := v.LocatedPortByKey(pipeline.ObjectKey(c.Object()))
	return !ok || dst.Chassis != br.Chassis
}

// OnPunt hands a punt to the app that answers its reason. The answer's
// flows are only those the pipeline leaves to punts (onDemand): one the
// bridge reconciles — it serves a port plugged here, say — is never
// installed again on top of itself, with an idle timeout.
func (p *Pipeline) OnPunt(v *view.View, br view.Bridge, punt app.Punt) app.Answer {
	a, ok := p.byReason[punt.Reason]
	if !ok {
		return app.Answer{Outcome: app.Unanswered}
	}
	ans := a.OnPunt(v, br, punt)
	leftOut := func(f of.Flow) bool {
		owner, ok := p.byID[pipeline.Cookie(f.Cookie).App()]
		return !ok || p.mode != pipeline.Reactive || !onDemand(owner, v, br, f)
	}
	// The app's slice as it is when every flow stays (the usual answer:
	// no copy a punt); else a filtered copy, the app's left alone.
	if slices.ContainsFunc(ans.Flows, leftOut) {
		ans.Flows = slices.DeleteFunc(slices.Clone(ans.Flows), leftOut)
	}
	if len(ans.Flows) == 0 {
		ans.Flows = nil
	}
	return ans
}

// Invalidates are every app's deletes of the reactive flows a batch of
// changes made stale. Only reactive mode has any.
func (p *Pipeline) Invalidates(before, after *view.View, changes []topology.Change) []of.FlowMod {
	if p.mode != pipeline.Reactive {
		return nil
	}
	var out []of.FlowMod
	for _, a := range p.apps {
		out = append(out, a.Invalidates(before, after, changes)...)
	}
	return out
}

// portPunts is the pipeline's own part: in reactive mode, each local
// port's punt flows, through its own meter, in every stage whose misses
// punt (pipeline.PortPuntFlows).
type portPunts struct{ mode pipeline.Mode }

func (portPunts) ID() pipeline.App { return pipeline.AppPipeline }

func (pp portPunts) Flows(v *view.View, br view.Bridge) []of.Flow {
	return pp.ObjectFlows(v, br, nil)
}

func (pp portPunts) ObjectFlows(v *view.View, br view.Bridge, objs app.Objects) []of.Flow {
	var out []of.Flow
	for _, port := range v.LocalPorts(br.Chassis) {
		if objs == nil || objs[pipeline.PortObject(port.Key)] {
			out = append(out, pipeline.PortPuntFlows(pp.mode, port.Key)...)
		}
	}
	return out
}

func (portPunts) Affects(before, after *view.View, br view.Bridge, changes []topology.Change) app.Scope {
	objs := app.Objects{}
	for _, pc := range app.Ports(before, after, changes) {
		for _, s := range pc.Sides(before, after) {
			objs.Add(pipeline.PortObject(s.Port.Key))
		}
	}
	return app.Scope{Objects: objs}
}

func (portPunts) PerDestination(of.Flow) bool { return false }

func (portPunts) Reasons() []pipeline.PuntReason { return nil }

func (portPunts) OnPunt(*view.View, view.Bridge, app.Punt) app.Answer {
	return app.Answer{Outcome: app.Unanswered}
}

func (portPunts) Invalidates(*view.View, *view.View, []topology.Change) []of.FlowMod { return nil }
