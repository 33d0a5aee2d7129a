// Package trace walks a packet through a bridge's flows as Open vSwitch
// would — the highest-priority match of each table, apply-actions in
// order, goto_table, resubmit, conjunctions, ct(...) and punts — and says,
// stage by stage, which flow matched, which app and object it serves (its
// cookie) and what it changed, and where the packet ends: out a local
// port, into a tunnel (with its tun_id and tun_dst), out a physical
// network's patch port, to the controller, or dropped.
//
// It is Wyvern's own ofproto/trace over the flows the reconciler installs,
// so it also serves as a test oracle: what the apps mean to do with a
// packet is what Walk says their flows do.
//
// Conntrack is not modelled: a ct(...) action gives the packet the state
// Options.CTState says (+trk+new by default), and the hop says so. A punt
// whose app answers with flows (reactive mode) is answered by
// Options.OnPunt — a pure function, the pipeline's own dispatch — and the
// walk goes on with those flows added, marked as installed by the punt.
//
// It is pure: no I/O, no clock, no logger.
package trace

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Packet is the packet to trace: where it enters and its headers.
type Packet struct {
	InPort         uint32
	EthSrc, EthDst net.HardwareAddr
	// EthType is IPv4 unless ARP is asked for.
	EthType uint16
	// VLAN is the 802.1Q VLAN id the frame arrives with; 0 is untagged.
	VLAN uint16
	// IPv4 (the ARP sender and target addresses for ARP).
	IPSrc, IPDst netip.Addr
	Proto        uint8 // of.IPProtoICMP (an echo request), TCP or UDP
	TTL          uint8 // 64 when 0
	SrcPort      uint16
	DstPort      uint16
	ARPOp        uint16 // of.ARPRequest when 0, for ARP
	// Len is the frame's length in bytes (check_pkt_larger); 98 (a
	// default ping) when 0.
	Len uint16
	// Tunnel metadata of a packet that came from a tunnel.
	TunID          uint64
	TunSrc, TunDst netip.Addr
}

// PortKind is what an OpenFlow port of the bridge leads to.
type PortKind string

// Port kinds.
const (
	PortVM       PortKind = "vm"       // a local VM's port
	PortTunnel   PortKind = "tunnel"   // a flow-based tunnel port
	PortPhysical PortKind = "physical" // a patch port to a physical network's bridge
	PortUnknown  PortKind = "unknown"
)

// Port names an OpenFlow port of the bridge.
type Port struct {
	Name string
	Kind PortKind
}

// Options are what the walk assumes and knows beyond the flows.
type Options struct {
	// Ports names the bridge's OpenFlow ports.
	Ports map[uint32]Port
	// CTState is the state a ct(...) action gives the packet; 0 means
	// +trk+new (a connection's first packet).
	CTState uint32
	// OnPunt, when set, answers a punt as the controller would (the
	// pipeline's dispatch to the app of its reason, from the same view
	// the flows came from); its flows join the walk's, and a re-injected
	// packet goes on. Nil: a punt ends the walk.
	OnPunt func(p app.Punt) app.Answer
	// Object names a cookie's object (kind pipeline.KindPort, ..., and
	// key), e.g. "port a1"; nil or "" leaves the kind and key.
	Object func(kind uint64, key uint32) string
	// Tables names the tables in the flows printed; nil: the pipeline's.
	Names *of.Names
}

// Hop is one table lookup of the walk.
type Hop struct {
	Table    uint8  `json:"table"`
	Stage    string `json:"stage"`
	Depth    int    `json:"depth,omitempty"` // resubmit nesting
	Miss     bool   `json:"miss,omitempty"`  // no flow matched: the table drops
	Priority uint16 `json:"priority"`
	Flow     string `json:"flow,omitempty"` // as ovs-ofctl prints it
	Cookie   string `json:"cookie,omitempty"`
	App      string `json:"app,omitempty"`
	Object   string `json:"object,omitempty"`
	// Reactive: the flow is not on the bridge before the first packet; a
	// punt's answer installs it (in this walk, the answer to the punt
	// before it).
	Reactive bool     `json:"reactive,omitempty"`
	Changes  []string `json:"changes,omitempty"`
	Notes    []string `json:"notes,omitempty"`
	Punt     *Punt    `json:"punt,omitempty"`
}

// Punt is a hop's punt to the controller and, with OnPunt, the answer.
type Punt struct {
	Reason  string `json:"reason"`
	Outcome string `json:"outcome,omitempty"` // the app's answer: answered, flooded, held...
	// Installed are the flows the answer installs, as ovs-ofctl prints
	// them ("reactive: installed on first packet").
	Installed []string `json:"installed,omitempty"`
	// Resumed is the table the answer re-injects the packet into.
	Resumed *uint8 `json:"resumed,omitempty"`
}

// Output is a copy of the packet leaving the bridge.
type Output struct {
	Port   uint32   `json:"port"`
	Name   string   `json:"name,omitempty"`
	Kind   PortKind `json:"kind"`
	TunID  *uint64  `json:"tun_id,omitempty"`  // into a tunnel: its key
	TunDst string   `json:"tun_dst,omitempty"` // and the remote chassis' encap IP
	EthSrc string   `json:"eth_src"`
	EthDst string   `json:"eth_dst"`
	IPSrc  string   `json:"ip_src,omitempty"`
	IPDst  string   `json:"ip_dst,omitempty"`
	TTL    uint8    `json:"ttl,omitempty"`
	VLAN   uint16   `json:"vlan,omitempty"`
	Stage  string   `json:"stage"` // the stage whose flow sent it
}

// End kinds.
const (
	EndOutput = "output"
	EndPunt   = "punt"
	EndDrop   = "drop"
)

// End is where the walk ended.
type End struct {
	Kind    string   `json:"kind"` // output, punt, drop
	Outputs []Output `json:"outputs,omitempty"`
	// Stage is the stage of the drop or of the punt left unanswered.
	Stage  string `json:"stage,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Result is a whole walk.
type Result struct {
	Hops []Hop `json:"hops"`
	End  End   `json:"end"`
}

// maxHops bounds a walk: a loop in the flows is a bug to report, not to
// spin on.
const maxHops = 256

// Walk traces a packet through flows (a bridge's whole flow table: the
// base pipeline's miss flows and every app's).
func Walk(flows []of.Flow, pkt Packet, opts Options) Result {
	w := &walker{opts: opts, tables: map[uint8][]of.Flow{}, reactive: map[of.FlowKey]bool{}, punted: -1}
	if w.opts.Names == nil {
		w.opts.Names = &of.Names{Tables: pipeline.TableNames()}
	}
	if w.opts.Names.Ports == nil && len(opts.Ports) > 0 {
		w.opts.Names = &of.Names{Tables: w.opts.Names.Tables, Ports: map[uint32]string{}}
		for n, p := range opts.Ports {
			w.opts.Names.Ports[n] = p.Name
		}
	}
	if w.opts.CTState == 0 {
		w.opts.CTState = of.CTTrk | of.CTNew
	}
	for _, f := range flows {
		w.add(f, false)
	}
	w.st = newState(pkt)
	w.run(0, 0)
	return w.result()
}

type walker struct {
	opts     Options
	tables   map[uint8][]of.Flow
	reactive map[of.FlowKey]bool
	st       *state
	hops     []Hop
	outputs  []Output
	punted   int // the hop of the last punt no answer took further; -1: none
	dropped  string
	steps    int
	looped   bool
}

func (w *walker) add(f of.Flow, reactive bool) {
	t := w.tables[f.Table]
	for i, g := range t {
		if g.Key() == f.Key() {
			t = append(t[:i], t[i+1:]...)
			break
		}
	}
	t = append(t, f)
	// Highest priority first; among equals, a fixed order (OVS leaves
	// overlapping flows of one priority undefined: the apps never make
	// them).
	sort.SliceStable(t, func(i, j int) bool {
		if t[i].Priority != t[j].Priority {
			return t[i].Priority > t[j].Priority
		}
		return t[i].Key() < t[j].Key()
	})
	w.tables[f.Table] = t
	if reactive {
		w.reactive[f.Key()] = true
	}
}

// lookup is the flow a packet hits in a table, OVS's way: the highest
// priority match; a conjunctive match completes when the packet matches a
// flow of every clause at one priority, and then the table is searched
// again with conj_id set.
func (w *walker) lookup(table uint8) (of.Flow, bool) {
	flows := w.tables[table]
	for i := 0; i < len(flows); {
		prio := flows[i].Priority
		j := i
		var hit *of.Flow
		clauses := map[uint32]map[uint8]bool{}
		want := map[uint32]uint8{}
		for ; j < len(flows) && flows[j].Priority == prio; j++ {
			f := flows[j]
			if !w.st.matches(f.Match) {
				continue
			}
			if conj, ok := conjunctions(f); ok {
				for _, c := range conj {
					if clauses[c.ID] == nil {
						clauses[c.ID] = map[uint8]bool{}
					}
					clauses[c.ID][c.Clause] = true
					want[c.ID] = c.Of
				}
				continue
			}
			if hit == nil {
				hit = &flows[j]
			}
		}
		if hit != nil {
			return *hit, true
		}
		var ids []uint32
		for id, cl := range clauses {
			if len(cl) == int(want[id]) {
				ids = append(ids, id)
			}
		}
		sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
		for _, id := range ids {
			saved := w.st.f[fieldIdx(ofConjID)]
			w.st.f[fieldIdx(ofConjID)] = uint64(id)
			for _, f := range flows {
				if c, ok := f.Match.Get(ofConjID); ok && c.Value == uint64(id) && w.st.matches(f.Match) {
					return f, true
				}
			}
			w.st.f[fieldIdx(ofConjID)] = saved
		}
		i = j
	}
	return of.Flow{}, false
}

const ofConjID = of.FieldConjID

func conjunctions(f of.Flow) ([]of.Conjunction, bool) {
	var out []of.Conjunction
	for _, a := range f.Actions {
		if c, ok := a.(of.Conjunction); ok {
			out = append(out, c)
		}
	}
	return out, len(out) > 0
}

// run looks the packet up in a table and follows where the flow sends it.
func (w *walker) run(table uint8, depth int) {
	for {
		if w.steps++; w.steps > maxHops {
			w.looped = true
			return
		}
		w.st.f[fieldIdx(ofConjID)] = 0
		st, _ := pipeline.StageOf(table)
		hop := Hop{Table: table, Stage: st.Name, Depth: depth}
		f, ok := w.lookup(table)
		if !ok {
			hop.Miss = true
			hop.Notes = append(hop.Notes, "no flow matches: the table drops the packet")
			w.hops = append(w.hops, hop)
			w.dropped = st.Name
			return
		}
		hop.Priority, hop.Flow = f.Priority, f.Format(w.opts.Names)
		c := pipeline.Cookie(f.Cookie)
		hop.Cookie = "0x" + strconv.FormatUint(f.Cookie, 16)
		hop.App = c.App().String()
		hop.Object = w.object(c)
		hop.Reactive = w.reactive[f.Key()] || c.OnDemand()
		idx := len(w.hops)
		w.hops = append(w.hops, hop)
		next, cont := w.apply(f, idx, depth)
		if !cont {
			return
		}
		if next < 0 {
			if len(f.Actions) == 0 || onlyConjunctions(f) {
				w.hops[idx].Notes = append(w.hops[idx].Notes, "actions=drop")
				w.dropped = st.Name
			}
			return
		}
		table = uint8(next)
	}
}

func onlyConjunctions(f of.Flow) bool {
	_, ok := conjunctions(f)
	return ok
}

func (w *walker) object(c pipeline.Cookie) string {
	kind, key := c.Kind(), pipeline.ObjectKey(c.Object())
	if kind == 0 {
		if c.App() == pipeline.AppPipeline {
			return "table-miss"
		}
		return ""
	}
	if w.opts.Object != nil {
		if s := w.opts.Object(kind, key); s != "" {
			return s
		}
	}
	kinds := [...]string{"", "port", "network", "router", "chassis"}
	if int(kind) < len(kinds) {
		return fmt.Sprintf("%s key %d", kinds[kind], key)
	}
	return fmt.Sprintf("object %d", c.Object())
}

// apply runs a flow's actions; next is the table a goto_table or a ct's
// recirculation continues in (-1: none), cont false when the walk ends
// here (a punt answered and re-injected is walked inside).
func (w *walker) apply(f of.Flow, idx, depth int) (next int, cont bool) {
	next = -1
	st, _ := pipeline.StageOf(f.Table)
	note := func(s string) { w.hops[idx].Notes = append(w.hops[idx].Notes, s) }
	// The hop's changes are its own: those made before a nested walk
	// (resubmit, a re-injected punt) and after it, not the nested hops'.
	before := w.st.clone()
	flush := func() {
		w.hops[idx].Changes = append(w.hops[idx].Changes, changes(before, w.st)...)
	}
	defer flush()
	for _, a := range f.Actions {
		switch a := a.(type) {
		case of.Output:
			port := a.Port
			if port == of.PortInPort {
				port = uint32(w.st.get(of.FieldInPort))
			}
			w.output(port, st.Name)
		case of.Punt:
			reason, data, ok := pipeline.ParsePuntData([]byte(a.UserData))
			p := &Punt{Reason: "no reason (not Wyvern's)"}
			if ok {
				p.Reason = reason.String()
			}
			w.hops[idx].Punt = p
			if !ok || w.opts.OnPunt == nil {
				w.punted = idx
				continue
			}
			ans := w.opts.OnPunt(w.punt(f, reason, data))
			p.Outcome = ans.Outcome.String()
			for _, r := range ans.Flows {
				p.Installed = append(p.Installed, r.Format(w.opts.Names))
				w.add(r, true)
			}
			if !ans.Reinject {
				switch ans.Outcome {
				case app.Unroutable, app.Malformed, app.Resolving:
					w.dropped = st.Name
				default:
					w.punted = idx
				}
				return -1, false
			}
			t := ans.Resubmit
			p.Resumed = &t
			flush()
			w.run(t, depth)
			before = w.st.clone()
			return -1, false
		case of.SetField:
			w.st.set(a.Field, a.Value, maskOf(a.Field, a.Mask))
		case of.WriteMetadata:
			m := a.Mask
			if m == 0 {
				m = ^uint64(0)
			}
			w.st.set(of.FieldMetadata, a.Value, m)
		case of.GotoTable:
			next = int(a.Table)
		case of.Resubmit:
			flush()
			w.run(a.Table, depth+1)
			before = w.st.clone()
		case of.DecTTL:
			ttl := w.st.get(of.FieldIPTTL)
			if ttl <= 1 {
				note("dec_ttl: the TTL runs out; OVS sends the packet to the controller as invalid-ttl")
				w.dropped = st.Name
				return -1, false
			}
			w.st.set(of.FieldIPTTL, ttl-1, 0xff)
		case of.Move:
			n := a.Bits
			if n == 0 {
				n = a.Src.Bits()
			}
			v := w.st.get(a.Src) >> a.SrcOfs & bitMask(n)
			w.st.set(a.Dst, v<<a.DstOfs, bitMask(n)<<a.DstOfs)
		case of.CheckPktLarger:
			bit := uint64(0)
			if w.st.length > a.Len {
				bit = 1
			}
			w.st.set(a.Dst, bit<<a.Ofs, 1<<a.Ofs)
			note(fmt.Sprintf("check_pkt_larger(%d): the packet is %d bytes", a.Len, w.st.length))
		case of.Conjunction:
		case of.PushVLAN:
			w.st.set(of.FieldVLANVID, of.VLANPresent, 0x1fff)
		case of.PopVLAN:
			w.st.set(of.FieldVLANVID, 0, 0x1fff)
		case of.CT:
			if a.Table == of.NoRecirc {
				// OVS sends a clone through the tracker (a commit lands
				// there); the packet goes on untracked.
				w.st.set(of.FieldCTState, 0, 0xff)
				w.st.set(of.FieldCTZone, 0, 0xffff)
				w.st.set(of.FieldCTMark, 0, 0xffffffff)
				n := fmt.Sprintf("ct in zone %d", a.Zone)
				if a.Commit {
					n = fmt.Sprintf("ct(commit): the connection is committed in zone %d", a.Zone)
				}
				if a.NAT.Kind != of.NATNone {
					n += "; its nat() is not applied"
				}
				note(n + "; the packet goes on untracked")
				continue
			}
			state := uint64(w.opts.CTState)
			w.st.set(of.FieldCTState, state, 0xff)
			w.st.set(of.FieldCTZone, uint64(a.Zone), 0xffff)
			n := fmt.Sprintf("conntrack not modelled: assumed ct_state=%s in zone %d, recirculated to %s", ctState(state), a.Zone, tableName(a.Table))
			if a.NAT.Kind != of.NATNone {
				n += "; its nat() is not applied"
			}
			note(n)
			next = int(a.Table)
		case of.Group:
			note(fmt.Sprintf("group %d: not modelled", a.ID))
		default:
			note(fmt.Sprintf("action %T not modelled", a))
		}
	}
	return next, true
}

func tableName(t uint8) string {
	if s, ok := pipeline.StageOf(t); ok && s.First == t {
		return s.Name
	}
	return "table " + strconv.Itoa(int(t))
}

func (w *walker) output(port uint32, stage string) {
	p, ok := w.opts.Ports[port]
	if !ok {
		p = Port{Kind: PortUnknown}
	}
	o := Output{Port: port, Name: p.Name, Kind: p.Kind, Stage: stage,
		EthSrc: of.MACFromValue(w.st.get(of.FieldEthSrc)).String(), EthDst: of.MACFromValue(w.st.get(of.FieldEthDst)).String()}
	if w.st.ethType() == of.EthTypeIPv4 {
		o.IPSrc = of.IPv4FromValue(w.st.get(of.FieldIPv4Src)).String()
		o.IPDst = of.IPv4FromValue(w.st.get(of.FieldIPv4Dst)).String()
		o.TTL = uint8(w.st.get(of.FieldIPTTL))
	}
	if v := w.st.get(of.FieldVLANVID); v&of.VLANPresent != 0 {
		o.VLAN = uint16(v & 0xfff)
	}
	if p.Kind == PortTunnel {
		id := w.st.get(of.FieldTunID)
		o.TunID, o.TunDst = &id, of.IPv4FromValue(w.st.get(of.FieldTunDst)).String()
	}
	w.outputs = append(w.outputs, o)
}

// punt is the packet-in the controller would get.
func (w *walker) punt(f of.Flow, reason pipeline.PuntReason, data []byte) app.Punt {
	var m of.Match
	for _, id := range []of.FieldID{of.FieldMetadata, of.FieldReg0, of.FieldReg1, of.FieldReg2, of.FieldReg3,
		of.FieldReg4, of.FieldReg5, of.FieldReg6, of.FieldReg7, of.FieldTunID, of.FieldTunSrc, of.FieldTunDst} {
		if v := w.st.get(id); v != 0 {
			m = m.With(id, v)
		}
	}
	frame := w.st.frame()
	pkt, _ := of.ParsePacket(frame)
	return app.Punt{Reason: reason, Data: data, Table: f.Table, Cookie: f.Cookie,
		InPort: uint32(w.st.get(of.FieldInPort)), Fields: m, Packet: pkt, Frame: frame}
}

func (w *walker) result() Result {
	r := Result{Hops: w.hops}
	switch {
	case w.looped:
		r.End = End{Kind: EndDrop, Reason: fmt.Sprintf("more than %d lookups: the flows loop", maxHops)}
	case len(w.outputs) > 0:
		r.End = End{Kind: EndOutput, Outputs: w.outputs}
	case w.punted >= 0:
		h := w.hops[w.punted]
		reason := "to the controller"
		if h.Punt != nil {
			reason = h.Punt.Reason
			if h.Punt.Outcome != "" {
				reason += " (" + h.Punt.Outcome + ")"
			}
		}
		r.End = End{Kind: EndPunt, Stage: h.Stage, Reason: reason}
	default:
		stage := w.dropped
		if stage == "" && len(w.hops) > 0 {
			stage = w.hops[len(w.hops)-1].Stage
		}
		r.End = End{Kind: EndDrop, Stage: stage, Reason: "dropped in " + stage}
	}
	return r
}
