// Package secgroup is the stateful firewall of security groups: each
// filtered port's IPv4 goes through conntrack in a zone of its own, both
// ways; replies and related packets of admitted connections pass; a new
// connection passes when a rule of one of the port's groups admits it, in
// its direction; anything else is dropped. It is pure: a topology view
// and the facts of one bridge in, flows out.
//
// Tables it owns: SGEgress (and the table after it) and SGIngress (and
// the table after it). l2pop sends a filtered port's IPv4 there: what it
// sent, from PortSecurity through ct(zone=port) to SGEgress; what is
// delivered to it, from Delivery through ct(zone=port) to SGIngress. ARP
// and DHCP are admitted before (DHCP is answered before PortSecurity).
//
//	SGEgress/SGIngress (after ct, reg6/reg7 = the port; only filtered ports' packets come here):
//	  300  +inv+trk                           → drop (one flow for all ports)
//	  290  ct_mark=blocked, +rpl or +rel      → drop: a rule that admitted it was removed (a packet the
//	                                            other way is checked again: a rule back re-admits it)
//	  280  +est+rpl+trk, +rel+trk             → accepted: replies and ICMP errors of its connections (one flow each)
//	  110  a rule admitting anything          → accepted
//	  100  reg=port, ip                       → conjunction(rule, 1/n) for each rule of the port's groups
//	  100  ip, nw_src|dst=<remote>            → conjunction(rule, k/n): a prefix, or each member address of a remote group,
//	                                            one flow per address carrying every rule that names its groups
//	  100  ip, <protocol, ports or ICMP type> → conjunction(rule, n/n)
//	  100  conj_id=rule, ip                   → accepted
//	    1  reg=port, +est+trk                 → ct(commit, ct_mark=blocked), drop: no rule admits it any more
//	  table+1 (accepted): +new → ct(commit, zone=port); then on (ServiceClassifier) or out the port
//
// So flows grow with ports + rules + remote members, never with their
// product: a member joining a group adds one address flow per chassis
// (or one conjunction more on the flow of its address). Conjunction ids
// are rule keys, unique in the cloud. Clause flows with the same match
// are one flow with every conjunction action (OpenFlow has no two flows
// of one match and priority); clause flows of different rules may
// overlap (OVS allows it).
//
// A packet may complete more than one rule's conjunction at the one
// priority all rules share (two rules admitting it): OVS then picks one
// conj_id, and since every conj_id flow does the same (accept), the
// verdict does not depend on which; per-rule counters do. One priority
// per rule would keep conjunctions apart only at the price of a port
// flow per (port, rule): the cross product this design avoids.
//
// Cookie objects: a port (its own flows), none (the rules' shared flows).
package secgroup

import (
	"net/netip"
	"slices"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Priorities in SGEgress and SGIngress.
const (
	PriorityInvalid  = 300
	PriorityBlocked  = 290
	PriorityReply    = 280
	PriorityAllowAll = 110
	PriorityRule     = 100
	PriorityRecheck  = 1
	PriorityNew      = 100 // in the accept table
	PriorityOn       = 10
)

// App is the security groups app.
type App struct{}

var _ app.App = App{}

// ID implements app.App.
func (App) ID() pipeline.App { return pipeline.AppSecurityGroup }

// Flows implements app.App.
func (App) Flows(v *view.View, br view.Bridge) []of.Flow { return flows(v, br) }

// ObjectFlows implements app.App.
func (App) ObjectFlows(v *view.View, br view.Bridge, objs app.Objects) []of.Flow {
	return app.OnlyObjects(flows(v, br), objs)
}

// PerDestination implements app.App: a firewall is never installed on
// demand, so no punt's answer can bypass it.
func (App) PerDestination(of.Flow) bool { return false }

// Reasons implements app.App: the firewall punts nothing.
func (App) Reasons() []pipeline.PuntReason { return nil }

// OnPunt implements app.App.
func (App) OnPunt(*view.View, view.Bridge, app.Punt) app.Answer {
	return app.Answer{Outcome: app.Unanswered}
}

// Invalidates implements app.App: nothing reactive.
func (App) Invalidates(*view.View, *view.View, []topology.Change) []of.FlowMod { return nil }

// Affects implements app.App: every flow of the app on the bridge, when a
// group or rule changed, or a port that holds (or held) a group — its
// addresses are members' — or is plugged here.
func (App) Affects(before, after *view.View, br view.Bridge, changes []topology.Change) app.Scope {
	for _, ch := range changes {
		if ch.Resource == topology.ResourceSecurityGroup {
			return app.Everything()
		}
	}
	for _, pc := range app.Ports(before, after, changes) {
		for _, s := range pc.Sides(before, after) {
			if len(s.Port.SecurityGroups) > 0 || s.Port.Chassis == br.Chassis {
				return app.Everything()
			}
		}
	}
	return app.Scope{}
}

// direction is one side of the firewall.
type direction struct {
	table   uint8 // SGEgress or SGIngress
	ingress bool
	port    of.RegField // the filtered port: reg6 (it sent) or reg7 (to it)
}

var (
	egress  = direction{pipeline.Table(pipeline.SGEgress), false, pipeline.SrcPortKey}
	ingress = direction{pipeline.Table(pipeline.SGIngress), true, pipeline.DstPortKey}
)

// on are the actions that follow an accepted packet: on through the
// pipeline (egress), or out the port (ingress).
func (d direction) on(p view.Port) []of.Action {
	if d.ingress {
		return []of.Action{of.Output{Port: p.OFPort}}
	}
	return []of.Action{of.GotoTable{Table: pipeline.Table(pipeline.ServiceClassifier)}}
}

func flows(v *view.View, br view.Bridge) []of.Flow {
	var out []of.Flow
	for _, d := range []direction{egress, ingress} {
		s := newShared(d)
		filtered := false
		for _, p := range v.LocalPorts(br.Chassis) {
			if !p.Filtered() {
				continue
			}
			filtered = true
			out = append(out, portFlows(v, d, *p, s)...)
		}
		if filtered {
			out = append(out, s.verdicts()...)
		}
		out = append(out, s.flows(v)...)
	}
	return out
}

// verdicts are what conntrack decides for every filtered port alike
// (only filtered ports' packets reach the table): invalid and blocked
// connections dropped, replies and related packets accepted.
func (s *shared) verdicts() []of.Flow {
	ck := pipeline.NewCookie(0, pipeline.AppSecurityGroup, 0)
	ip := of.Match{}.EthType(of.EthTypeIPv4)
	accept := []of.Action{of.GotoTable{Table: s.d.table + 1}}
	return []of.Flow{
		{Table: s.d.table, Priority: PriorityInvalid, Cookie: ck, Match: ip.CTState(of.CTInv|of.CTTrk, 0)},
		{Table: s.d.table, Priority: PriorityBlocked, Cookie: ck, Match: ip.CTState(of.CTRpl|of.CTTrk, 0).CTMark(pipeline.CTMarkBlocked, pipeline.CTMarkBlocked)},
		{Table: s.d.table, Priority: PriorityBlocked, Cookie: ck, Match: ip.CTState(of.CTRel|of.CTTrk, 0).CTMark(pipeline.CTMarkBlocked, pipeline.CTMarkBlocked)},
		{Table: s.d.table, Priority: PriorityReply, Cookie: ck, Match: ip.CTState(of.CTEst|of.CTRpl|of.CTTrk, 0), Actions: accept},
		{Table: s.d.table, Priority: PriorityReply, Cookie: ck, Match: ip.CTState(of.CTRel|of.CTTrk, 0), Actions: accept},
	}
}

// portFlows are one port's flows in one direction; the rules it uses go
// to s.
func portFlows(v *view.View, d direction, p view.Port, s *shared) []of.Flow {
	ck := pipeline.NewCookie(0, pipeline.AppSecurityGroup, pipeline.PortObject(p.Key))
	zone := pipeline.PortZone(p.Key)
	m := of.Match{}.Reg(d.port, uint64(p.Key)).EthType(of.EthTypeIPv4)
	accept := d.table + 1
	flow := func(table uint8, prio uint16, m of.Match, actions ...of.Action) of.Flow {
		return of.Flow{Table: table, Priority: prio, Cookie: ck, Match: m, Actions: actions}
	}
	out := []of.Flow{
		flow(d.table, PriorityRecheck, m.CTState(of.CTEst|of.CTTrk, 0),
			of.CT{Commit: true, Zone: zone, Table: of.NoRecirc, SetMark: true, Mark: pipeline.CTMarkBlocked, MarkMask: pipeline.CTMarkBlocked}),
		flow(accept, PriorityNew, m.CTState(of.CTNew|of.CTTrk, 0),
			append([]of.Action{of.CT{Commit: true, Zone: zone, Table: of.NoRecirc}}, d.on(p)...)...),
		// A blocked connection a rule admits again (the rule came back):
		// unblocked.
		flow(accept, PriorityNew, m.CTState(of.CTEst|of.CTTrk, of.CTRpl).CTMark(pipeline.CTMarkBlocked, pipeline.CTMarkBlocked),
			append([]of.Action{of.CT{Commit: true, Zone: zone, Table: of.NoRecirc, SetMark: true, Mark: 0, MarkMask: pipeline.CTMarkBlocked}}, d.on(p)...)...),
		flow(accept, PriorityOn, m, d.on(p)...),
	}
	var conj []of.Action
	for _, g := range v.PortGroups(p) {
		for _, r := range g.Rules {
			if r.Ingress != d.ingress {
				continue
			}
			n := s.add(r)
			if n == 1 {
				// Admits anything: no conjunction needed.
				out = append(out, flow(d.table, PriorityAllowAll, m, of.GotoTable{Table: accept}))
				continue
			}
			conj = append(conj, of.Conjunction{ID: r.Key, Clause: 1, Of: n})
		}
	}
	if len(conj) > 0 {
		slices.SortFunc(conj, byConj)
		conj = slices.CompactFunc(conj, func(a, b of.Action) bool { return a == b })
		out = append(out, flow(d.table, PriorityRule, m, conj...))
	}
	return dedupe(out)
}

func byConj(a, b of.Action) int {
	x, y := a.(of.Conjunction), b.(of.Conjunction)
	switch {
	case x.ID != y.ID:
		return int(int64(x.ID) - int64(y.ID))
	default:
		return int(x.Clause) - int(y.Clause)
	}
}

// dedupe drops repeated flows (a port holding two groups that both admit
// anything).
func dedupe(fs []of.Flow) []of.Flow {
	seen := map[of.FlowKey]bool{}
	out := fs[:0]
	for _, f := range fs {
		k := f.Key()
		if !seen[k] {
			seen[k] = true
			out = append(out, f)
		}
	}
	return out
}

// shared gathers, for one direction of one bridge, the rules its filtered
// ports use, and builds their clause and conj_id flows once.
type shared struct {
	d       direction
	rules   map[uint32]view.SGRule
	members map[string][]netip.Prefix // remote group → its members' addresses
}

func newShared(d direction) *shared {
	return &shared{d: d, rules: map[uint32]view.SGRule{}, members: map[string][]netip.Prefix{}}
}

// add records a rule and returns its number of clauses: the port, then
// the remote if it narrows, then the protocol if it narrows.
func (s *shared) add(r view.SGRule) uint8 {
	s.rules[r.Key] = r
	return clauses(r)
}

func clauses(r view.SGRule) uint8 {
	n := uint8(1)
	if narrowsRemote(r) {
		n++
	}
	if r.Proto != view.AnyProto {
		n++
	}
	return n
}

func narrowsRemote(r view.SGRule) bool {
	return r.RemoteGroup != "" || r.Remote.IsValid() && r.Remote.Bits() > 0
}

// flows are the clause flows of the rules (one flow per match, with every
// conjunction action of it) and their conj_id flows.
func (s *shared) flows(v *view.View) []of.Flow {
	ck := pipeline.NewCookie(0, pipeline.AppSecurityGroup, 0)
	type clause struct {
		m    of.Match
		conj []of.Action
	}
	byMatch := map[of.FlowKey]*clause{}
	var order []of.FlowKey
	addClause := func(m of.Match, c of.Conjunction) {
		k := of.Flow{Table: s.d.table, Priority: PriorityRule, Match: m}.Key()
		cl, ok := byMatch[k]
		if !ok {
			cl = &clause{m: m}
			byMatch[k] = cl
			order = append(order, k)
		}
		cl.conj = append(cl.conj, c)
	}
	keys := make([]uint32, 0, len(s.rules))
	for k := range s.rules {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []of.Flow
	ip := of.Match{}.EthType(of.EthTypeIPv4)
	for _, k := range keys {
		r := s.rules[k]
		n := clauses(r)
		if n == 1 {
			continue
		}
		next := uint8(2)
		if narrowsRemote(r) {
			for _, pfx := range s.remotes(v, r) {
				m := ip.IPv4Dst(pfx)
				if s.d.ingress {
					m = ip.IPv4Src(pfx)
				}
				addClause(m, of.Conjunction{ID: r.Key, Clause: next, Of: n})
			}
			next++
		}
		if r.Proto != view.AnyProto {
			for _, m := range l4(r) {
				addClause(m, of.Conjunction{ID: r.Key, Clause: next, Of: n})
			}
		}
		out = append(out, of.Flow{Table: s.d.table, Priority: PriorityRule, Cookie: ck,
			Match: ip.With(of.FieldConjID, uint64(r.Key)), Actions: []of.Action{of.GotoTable{Table: s.d.table + 1}}})
	}
	slices.Sort(order)
	for _, k := range order {
		cl := byMatch[k]
		slices.SortFunc(cl.conj, byConj)
		out = append(out, of.Flow{Table: s.d.table, Priority: PriorityRule, Cookie: ck, Match: cl.m, Actions: cl.conj})
	}
	return out
}

// remotes are the prefixes a rule admits: its prefix, or its remote
// group's member addresses (each group's found once).
func (s *shared) remotes(v *view.View, r view.SGRule) []netip.Prefix {
	if r.RemoteGroup == "" {
		return []netip.Prefix{r.Remote}
	}
	if out, ok := s.members[r.RemoteGroup]; ok {
		return out
	}
	out := v.GroupAddresses(r.RemoteGroup)
	s.members[r.RemoteGroup] = out
	return out
}

// l4 are the protocol matches of a rule: its protocol, with the ports of
// a range as value/mask blocks, or ICMP type and code.
func l4(r view.SGRule) []of.Match {
	m := of.Match{}.EthType(of.EthTypeIPv4).IPProto(uint8(r.Proto))
	switch {
	case r.Proto == of.IPProtoICMP:
		if r.ICMPType >= 0 {
			m = m.With(of.FieldICMPType, uint64(r.ICMPType))
			if r.ICMPCode >= 0 {
				m = m.With(of.FieldICMPCode, uint64(r.ICMPCode))
			}
		}
		return []of.Match{m}
	case r.PortMin > 0:
		field := map[int]of.FieldID{6: of.FieldTCPDst, 17: of.FieldUDPDst}[r.Proto]
		if field == 0 {
			return nil // SCTP, DCCP, UDP-Lite ports: not matched here, so the rule admits nothing (closed, not open)
		}
		var out []of.Match
		for _, b := range portBlocks(r.PortMin, r.PortMax) {
			out = append(out, m.WithMasked(field, uint64(b.value), uint64(b.mask)))
		}
		return out
	}
	return []of.Match{m}
}

type block struct{ value, mask uint16 }

// portBlocks covers lo..hi with aligned value/mask blocks, the fewest.
func portBlocks(lo, hi int) []block {
	var out []block
	for lo <= hi {
		size := 1
		for lo%(size*2) == 0 && lo+size*2-1 <= hi && size*2 <= 1<<16 {
			size *= 2
		}
		out = append(out, block{uint16(lo), uint16(0xffff &^ (size - 1))})
		lo += size
	}
	return out
}
