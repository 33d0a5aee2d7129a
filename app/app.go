// Package app is the contract every pipeline app keeps, and the one place
// the controller learns what an app does. An app is pure: from a typed
// view of the topology and the facts of one bridge it computes flows; from
// a punt it computes an answer; from a batch of committed changes it says
// which of its flows may have changed and which reactive flows went stale.
// No I/O, no clock, no logger, no globals.
//
// Every flow an app returns carries a cookie naming the app and the
// logical object it serves (pipeline.NewCookie): a port, a network, a
// router, or none (0, the app's own base flows). The controller keeps a
// bridge's desired flows per object and recomputes only the objects a
// change affects (Affects); ObjectFlows must return exactly the flows of
// Flows with those objects' cookies, so an incremental recompute equals a
// full one.
//
// It imports pipeline, the flow model and the topology view only.
package app

import (
	"net/netip"

	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// App is a pipeline app.
type App interface {
	// ID is the app's cookie app: every flow it returns carries it.
	ID() pipeline.App
	// Flows is every flow the app wants on a bridge: proactive mode's
	// whole set (reactive mode leaves out those a punt installs).
	Flows(v *view.View, br view.Bridge) []of.Flow
	// ObjectFlows is the part of Flows whose cookie objects are in objs.
	ObjectFlows(v *view.View, br view.Bridge, objs Objects) []of.Flow
	// Affects is the scope of a batch of committed changes on a bridge:
	// the objects whose flows may differ between the views before and
	// after it. A change that alters no flow (a port's status, a name)
	// affects nothing.
	Affects(before, after *view.View, br view.Bridge, changes []topology.Change) Scope
	// PerDestination reports whether a flow serves one destination (its
	// cookie object, when a port): reactive mode installs it on demand,
	// by a punt (but see LocalReconciler).
	PerDestination(f of.Flow) bool
	// Reasons are the punt reasons the app answers.
	Reasons() []pipeline.PuntReason
	// OnPunt answers a punt of one of the app's reasons.
	OnPunt(v *view.View, br view.Bridge, p Punt) Answer
	// Invalidates are the deletes of reactive flows (the ones punts
	// installed) that a batch of committed changes made stale: the next
	// packet punts again and is answered from the new view.
	Invalidates(before, after *view.View, changes []topology.Change) []of.FlowMod
}

// LocalReconciler is an app whose PerDestination flows serving a port
// plugged into the bridge's own chassis are reconciled in reactive mode
// with the rest, not installed on demand: l2pop and tunnels, so that a
// VM is reachable, from its neighbours and from a tunnel, the moment its
// port is programmed, with no punt on the way in.
type LocalReconciler interface {
	App
	ReconcilesLocal()
}

// Objects is a set of cookie objects (pipeline.PortObject, ...; 0 for an
// app's base flows).
type Objects map[uint64]bool

// Add puts objects in the set.
func (o Objects) Add(objs ...uint64) {
	for _, x := range objs {
		o[x] = true
	}
}

// OnlyObjects are the flows whose cookie objects are in objs: ObjectFlows
// of an app that computes all its flows at once.
func OnlyObjects(flows []of.Flow, objs Objects) []of.Flow {
	var out []of.Flow
	for _, f := range flows {
		if objs[pipeline.Cookie(f.Cookie).Object()] {
			out = append(out, f)
		}
	}
	return out
}

// Scope is what a batch of changes affects on one bridge: everything, or
// some objects.
type Scope struct {
	All     bool
	Objects Objects
}

// Everything is the scope of a change no app can narrow.
func Everything() Scope { return Scope{All: true} }

// Empty reports whether the scope holds nothing.
func (s Scope) Empty() bool { return !s.All && len(s.Objects) == 0 }

// Union adds o to s.
func (s *Scope) Union(o Scope) {
	if o.All {
		s.All = true
	}
	if s.All {
		s.Objects = nil
		return
	}
	if len(o.Objects) == 0 {
		return
	}
	if s.Objects == nil {
		s.Objects = Objects{}
	}
	for x := range o.Objects {
		s.Objects[x] = true
	}
}

// Punt is a packet one of the app's punt flows sent to the controller.
type Punt struct {
	Reason pipeline.PuntReason
	// Data is what the flow put in its userdata after the reason.
	Data   []byte
	Table  uint8
	Cookie uint64
	InPort uint32
	// Fields are the packet-in's match: the packet's pipeline fields
	// (metadata, registers, tunnel metadata) and its ingress port. A
	// re-injection carries the pipeline fields back.
	Fields of.Match
	Packet of.Packet // the frame, decoded
	Frame  []byte
}

// Reg reads a register field of the punted packet.
func (p Punt) Reg(r of.RegField) uint64 {
	c, _ := p.Fields.Get(r.Field)
	return (c.Value & r.Mask()) >> r.Ofs
}

// Outcome is what an answer did, as the controller counts it.
type Outcome uint8

// Outcomes.
const (
	// Answered: flows for the destination, then the packet re-injected.
	Answered Outcome = iota + 1
	// Flooded: the destination is unknown; the packet goes on where the
	// proactive pipeline would send it, and nothing is installed.
	Flooded
	// Held: the destination is a port that exists but is not plugged
	// yet; the controller keeps the packet a short while and asks again
	// when the topology changes.
	Held
	// Unroutable: a router has no such destination; dropped.
	Unroutable
	// Malformed: the packet is not what the reason says; dropped.
	Malformed
	// TTLExpired and TooBig: a routed packet answered with an ICMP error.
	TTLExpired
	TooBig
	// VIPAnnounced: a port announced a shared address it now holds.
	VIPAnnounced
	// Unanswered: nothing to do (the app does not serve this bridge).
	Unanswered
	// Replied: the app answered the packet itself (a DHCP or DNS reply
	// in Send); nothing is installed and the packet goes no further.
	Replied
	// PassedOn: not the app's to answer; the packet goes on unchanged.
	PassedOn
	// Learned: an ARP reply told a neighbour's MAC on a physical network.
	Learned
	// Resolving: the destination's MAC is being asked for by ARP (in
	// Send); the packet is dropped, as a router does while it resolves.
	Resolving
)

func (o Outcome) String() string {
	switch o {
	case Answered:
		return "answered"
	case Flooded:
		return "flooded"
	case Held:
		return "held"
	case Unroutable:
		return "unroutable"
	case Malformed:
		return "malformed"
	case TTLExpired:
		return "ttl_expired"
	case TooBig:
		return "too_big"
	case VIPAnnounced:
		return "vip_announced"
	case Unanswered:
		return "unanswered"
	case Replied:
		return "replied"
	case PassedOn:
		return "passed_on"
	case Learned:
		return "learned"
	case Resolving:
		return "resolving"
	}
	return "unknown"
}

// Answer is what an app wants done about a punt. The controller installs
// Flows (with its idle timeout and the bridge's cookie round) in one
// bundle, then re-injects the packet into Resubmit, then sends Send.
// Its slices (Flows, their matches and actions, a PacketOut's actions) may
// be shared with other answers (an app's Memo): read-only to the
// controller, which copies what it changes.
type Answer struct {
	Outcome Outcome
	Flows   []of.Flow
	// Resubmit, when Reinject is set, is the table the punted packet goes
	// back into, with its pipeline fields.
	Reinject bool
	Resubmit uint8
	// Send are packets the app built (an ICMP error, say).
	Send []PacketOut
	// Reply, with Reinject, is what the re-injected packet will do once
	// Flows are installed, built by the app: a frame sent straight out of
	// a port, through no table. The controller may send it in place of
	// the re-injection at once, and install Flows behind it, since
	// nothing of it depends on them (an ARP answer: the reply the
	// answer flow would turn the request into). Trace and the paths that
	// install Flows first still re-inject.
	Reply *PacketOut
	// Claim asks the controller to record a port as the holder of a
	// shared address (a replicated write the app cannot make itself).
	Claim *VIPClaim
	// Learn asks the controller to record a neighbour's MAC on a
	// physical network (a replicated write).
	Learn *topology.Neighbour
}

// PacketOut is a packet to send through the bridge.
type PacketOut struct {
	Actions []of.Action
	Frame   []byte
}

// VIPClaim: a port announced, with a gratuitous ARP, that it holds a
// shared address.
type VIPClaim struct {
	PortID string
	IP     netip.Addr
}
