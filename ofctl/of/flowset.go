package of

import (
	"fmt"
	"sort"
)

// FlowSet is a set of flows keyed by their identity on the switch.
//
// An entry points at its flow and carries its own cookie: a reconciler's
// installed set is its desired flows in a cookie round, and holding a
// pointer to each desired flow (AddShared) instead of a copy keeps it at
// a pointer and a cookie a flow (a node holds hundreds of thousands).
type FlowSet struct {
	m map[FlowKey]setEntry
}

type setEntry struct {
	f      *Flow // never written through: the set's or a caller's shared flow
	cookie uint64
}

func (e setEntry) flow() Flow {
	f := *e.f
	f.Cookie = e.cookie
	return f
}

func entryOf(f Flow) setEntry { return setEntry{&f, f.Cookie} }

// NewFlowSet builds a set; a later flow with the same key replaces an
// earlier one.
func NewFlowSet(flows ...Flow) FlowSet {
	s := FlowSet{m: make(map[FlowKey]setEntry, len(flows))}
	for _, f := range flows {
		s.m[f.Key()] = entryOf(f)
	}
	return s
}

// Len is the number of flows.
func (s FlowSet) Len() int { return len(s.m) }

// Add puts a flow in the set, replacing one with the same key.
func (s *FlowSet) Add(f Flow) {
	if s.m == nil {
		s.m = make(map[FlowKey]setEntry)
	}
	s.m[f.Key()] = entryOf(f)
}

// AddShared adds, under k (shared.Key()), the flow *shared with the given
// cookie, holding the pointer instead of a copy: the caller must never
// change *shared.
func (s *FlowSet) AddShared(k FlowKey, shared *Flow, cookie uint64) {
	if s.m == nil {
		s.m = make(map[FlowKey]setEntry)
	}
	s.m[k] = setEntry{shared, cookie}
}

// Remove takes the flow with f's key out of the set.
func (s FlowSet) Remove(f Flow) { delete(s.m, f.Key()) }

// Get returns the flow with a key.
func (s FlowSet) Get(k FlowKey) (Flow, bool) {
	e, ok := s.m[k]
	if !ok {
		return Flow{}, false
	}
	return e.flow(), true
}

// Clone returns an independent copy.
func (s FlowSet) Clone() FlowSet {
	c := FlowSet{m: make(map[FlowKey]setEntry, len(s.m))}
	for k, e := range s.m {
		c.m[k] = e // the flows are never written: sharing them is a copy
	}
	return c
}

// Flows returns the flows sorted by table, priority (high first) and key,
// so output is deterministic.
func (s FlowSet) Flows() []Flow {
	out := make([]Flow, 0, len(s.m))
	for _, e := range s.m {
		out = append(out, e.flow())
	}
	sortFlows(out)
	return out
}

// sortFlows orders flows by table, priority (high first) and key. Keys
// are built once per flow, not once per comparison.
func sortFlows(fs []Flow) {
	type keyed struct {
		k FlowKey
		f Flow
	}
	ks := make([]keyed, len(fs))
	for i, f := range fs {
		ks[i] = keyed{f.Key(), f}
	}
	sort.Slice(ks, func(i, j int) bool {
		a, b := ks[i].f, ks[j].f
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		if a.Priority != b.Priority {
			return a.Priority > b.Priority
		}
		return ks[i].k < ks[j].k
	})
	for i := range ks {
		fs[i] = ks[i].f
	}
}

// Equal reports whether two sets hold identical flows.
func (s FlowSet) Equal(o FlowSet) bool {
	if len(s.m) != len(o.m) {
		return false
	}
	for k, e := range s.m {
		g, ok := o.m[k]
		if !ok || !e.flow().SameContent(g.flow()) {
			return false
		}
	}
	return true
}

// Changes turn one flow set into another.
type Changes struct {
	Deletes  []Flow // in the old set only
	Modifies []Flow // in both, with new content (the new flow)
	Adds     []Flow // in the new set only
}

// Empty reports whether there is nothing to do.
func (c Changes) Empty() bool {
	return len(c.Deletes) == 0 && len(c.Modifies) == 0 && len(c.Adds) == 0
}

// Len is the number of flow changes.
func (c Changes) Len() int { return len(c.Deletes) + len(c.Modifies) + len(c.Adds) }

func (c Changes) String() string {
	return fmt.Sprintf("%d deletes, %d modifies, %d adds", len(c.Deletes), len(c.Modifies), len(c.Adds))
}

// Diff returns the changes that turn from into to. Each list is sorted.
func Diff(from, to FlowSet) Changes {
	var c Changes
	for k, e := range from.m {
		if _, ok := to.m[k]; !ok {
			c.Deletes = append(c.Deletes, e.flow())
		}
	}
	for k, e := range to.m {
		old, ok := from.m[k]
		switch f := e.flow(); {
		case !ok:
			c.Adds = append(c.Adds, f)
		case !old.flow().SameContent(f):
			c.Modifies = append(c.Modifies, f)
		}
	}
	sortFlows(c.Deletes)
	sortFlows(c.Modifies)
	sortFlows(c.Adds)
	return c
}

// Sort puts each list in the order Diff gives it, so that the same
// changes always make the same bundle.
func (c *Changes) Sort() {
	sortFlows(c.Deletes)
	sortFlows(c.Modifies)
	sortFlows(c.Adds)
}

// Apply returns the set with the changes applied; s is not modified.
func (s FlowSet) Apply(c Changes) FlowSet {
	out := s.Clone()
	for _, f := range c.Deletes {
		delete(out.m, f.Key())
	}
	for _, f := range c.Modifies {
		out.m[f.Key()] = entryOf(f)
	}
	for _, f := range c.Adds {
		out.m[f.Key()] = entryOf(f)
	}
	return out
}

// FlowModCommand is an OpenFlow flow-mod command.
type FlowModCommand uint8

// OpenFlow 1.5 flow-mod commands.
const (
	FlowAdd          FlowModCommand = 0
	FlowModify       FlowModCommand = 1
	FlowModifyStrict FlowModCommand = 2
	FlowDelete       FlowModCommand = 3
	FlowDeleteStrict FlowModCommand = 4
)

// TableAll selects every table in a non-strict delete.
const TableAll uint8 = 0xff

// FlowMod is one flow-mod message to send.
type FlowMod struct {
	Command    FlowModCommand
	Flow       Flow
	CookieMask uint64 // with FlowDelete: delete flows whose cookie&mask == Flow.Cookie&mask
}

// DeleteByCookie deletes every flow, in every table, whose cookie under
// mask equals cookie under mask.
func DeleteByCookie(cookie, mask uint64) FlowMod {
	return FlowMod{Command: FlowDelete, Flow: Flow{Table: TableAll, Cookie: cookie & mask}, CookieMask: mask}
}

// Ordered returns the flow-mods for the changes in bundle order: deletes
// first (so a moved flow never coexists with its replacement), then
// modifies, then adds. A modify is sent as an add, which replaces the flow
// in place (actions, cookie and timeouts together) without a gap.
func (c Changes) Ordered() []FlowMod {
	out := make([]FlowMod, 0, c.Len())
	for _, f := range c.Deletes {
		out = append(out, FlowMod{Command: FlowDeleteStrict, Flow: f})
	}
	for _, f := range c.Modifies {
		out = append(out, FlowMod{Command: FlowAdd, Flow: f})
	}
	for _, f := range c.Adds {
		out = append(out, FlowMod{Command: FlowAdd, Flow: f})
	}
	return out
}
