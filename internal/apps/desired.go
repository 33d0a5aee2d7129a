package apps

import (
	"unique"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Desired is one bridge's desired app flows (in cookie round 0), kept
// per app and cookie object, so that a change recomputes only the objects
// it affects.
type Desired struct {
	objects map[uint64][]of.Flow  // cookie without its round → its flows
	owner   map[of.FlowKey]owned  // each key's flow and the object it serves
	apps    map[pipeline.App]bool // the apps with flows here
}

// owned is where a desired flow is: its object and its place among the
// object's flows. Get is a map lookup, not a scan of the object's flows
// (a security group's object has a flow per member, and a sync asks for
// every dirty key); the flow itself is held once, in objects (a node
// mastering hundreds of bridges holds hundreds of thousands).
type owned struct {
	obj uint64
	at  int32
}

// key is a flow's key, interned: the bridges of the chassis hosting a
// network hold the same flows for it, and a node mastering hundreds of
// bridges holds one copy of each key (the installed sets share them too).
func key(f of.Flow) of.FlowKey { return of.FlowKey(unique.Make(string(f.Key())).Value()) }

// objectOf is a flow's cookie without its round: the app and the object.
func objectOf(f of.Flow) uint64 { return f.Cookie &^ pipeline.RoundMask }

// Compute is a bridge's whole desired state.
func (p *Pipeline) Compute(v *view.View, br view.Bridge) *Desired {
	d := NoFlows()
	for _, f := range p.Flows(v, br) {
		d.add(f)
	}
	for obj, fs := range d.objects {
		d.objects[obj] = p.shared.share(obj, fs) // the node's copy, no room for growth kept
	}
	return d
}

// NoFlows is the desired state of a bridge no app programs.
func NoFlows() *Desired {
	return &Desired{objects: map[uint64][]of.Flow{}, owner: map[of.FlowKey]owned{}, apps: map[pipeline.App]bool{}}
}

func (d *Desired) add(f of.Flow) {
	obj := objectOf(f)
	d.owner[key(f)] = owned{obj, int32(len(d.objects[obj]))}
	d.objects[obj] = append(d.objects[obj], f)
	d.apps[pipeline.Cookie(obj).App()] = true
}

// Len is the number of desired flows.
func (d *Desired) Len() int { return len(d.owner) }

// Flows are every desired flow, in no order.
func (d *Desired) Flows() []of.Flow {
	out := make([]of.Flow, 0, len(d.owner))
	for _, fs := range d.objects {
		out = append(out, fs...)
	}
	return out
}

// Get returns the desired flow with a key.
func (d *Desired) Get(k of.FlowKey) (of.Flow, bool) {
	o, ok := d.owner[k]
	if !ok {
		return of.Flow{}, false
	}
	return d.objects[o.obj][o.at], true
}

// Shared returns the desired flow with a key as a pointer to the node's
// copy, which nothing may change (an installed set holds it, of.FlowSet's
// AddShared).
func (d *Desired) Shared(k of.FlowKey) (*of.Flow, bool) {
	o, ok := d.owner[k]
	if !ok {
		return nil, false
	}
	return &d.objects[o.obj][o.at], true
}

// EachShared calls fn with every desired flow's key and a pointer to the
// node's copy of it, which fn must not change, in no order.
func (d *Desired) EachShared(fn func(of.FlowKey, *of.Flow)) {
	for k, o := range d.owner {
		fn(k, &d.objects[o.obj][o.at])
	}
}

// ObjectFlows are the desired flows, of every app, that serve one cookie
// object (pipeline.PortObject(key), ...).
func (d *Desired) ObjectFlows(object uint64) []of.Flow {
	var out []of.Flow
	for a := range d.apps {
		out = append(out, d.objects[pipeline.NewCookie(0, a, object)]...)
	}
	return out
}

// Update recomputes, in place, the objects a batch of changes affects on
// a bridge — all of an app's when it cannot narrow the change — from the
// view after it, and returns the keys of the flows that may have changed:
// those the recomputed objects had and those they have now.
func (p *Pipeline) Update(d *Desired, before, after *view.View, br view.Bridge, changes []topology.Change) []of.FlowKey {
	touched := map[of.FlowKey]bool{}
	replace, next := map[uint64]bool{}, map[uint64][]of.Flow{} // each app's, reused
	for _, a := range p.apps {
		scope := a.Affects(before, after, br, changes)
		if scope.Empty() {
			continue
		}
		var flows []of.Flow
		clear(replace)
		clear(next)
		if scope.All {
			flows = p.keep(a, after, br, a.Flows(after, br))
			for obj := range d.objects {
				if pipeline.Cookie(obj).App() == a.ID() {
					replace[obj] = true
				}
			}
		} else {
			flows = p.keep(a, after, br, a.ObjectFlows(after, br, scope.Objects))
			for o := range scope.Objects {
				replace[pipeline.NewCookie(0, a.ID(), o)] = true
			}
		}
		for _, f := range flows {
			obj := objectOf(f)
			if scope.All {
				replace[obj] = true
			}
			if replace[obj] { // an object outside the scope is not the app's to change here
				next[obj] = append(next[obj], f)
			}
		}
		for obj := range replace {
			for _, f := range d.objects[obj] {
				k := f.Key()
				touched[k] = true
				if d.owner[k].obj == obj {
					delete(d.owner, k)
				}
			}
			delete(d.objects, obj)
		}
		if len(next) > 0 {
			d.apps[a.ID()] = true
		}
		for obj, fs := range next {
			fs = p.shared.share(obj, fs)
			d.objects[obj] = fs
			for i, f := range fs {
				k := key(f)
				touched[k] = true
				d.owner[k] = owned{obj, int32(i)}
			}
		}
	}
	out := make([]of.FlowKey, 0, len(touched))
	for k := range touched {
		out = append(out, k)
	}
	return out
}

// Scope is the union of every app's scope for a batch of changes on a
// bridge, for tests and logs.
func (p *Pipeline) Scope(before, after *view.View, br view.Bridge, changes []topology.Change) app.Scope {
	var s app.Scope
	for _, a := range p.apps {
		as := a.Affects(before, after, br, changes)
		if as.All {
			return app.Everything()
		}
		for o := range as.Objects {
			s.Union(app.Scope{Objects: app.Objects{pipeline.NewCookie(0, a.ID(), o): true}})
		}
	}
	return s
}
