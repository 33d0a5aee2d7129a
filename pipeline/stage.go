package pipeline

import (
	"fmt"

	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

// Mode is how the controller fills the tables: reactive answers table-miss
// punts with flows for one destination; proactive installs everything up
// front.
type Mode uint8

// Forwarding modes.
const (
	Reactive Mode = iota
	Proactive
)

func (m Mode) String() string {
	if m == Proactive {
		return "proactive"
	}
	return "reactive"
}

// ParseMode reads "reactive" or "proactive".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "reactive":
		return Reactive, nil
	case "proactive":
		return Proactive, nil
	}
	return 0, fmt.Errorf("forwarding mode %q: want reactive or proactive", s)
}

// MissKind is what a table does with a packet no flow matches.
type MissKind uint8

// Table-miss behaviours.
const (
	MissDrop MissKind = iota // drop the packet
	MissGoto                 // continue in another stage
	MissPunt                 // send the packet to the controller
)

// Miss is a table-miss action.
type Miss struct {
	Kind   MissKind
	Goto   string     // stage name, with MissGoto
	Reason PuntReason // with MissPunt
}

// Stage is one named step of the pipeline. A stage owns a region of table
// numbers [First, First+Size); its main table is First. First is never
// written by hand: it follows from the declaration order and the sizes of
// the stages before (numbered). Later stages may use the spare tables of
// their region without renumbering the others.
type Stage struct {
	Name  string
	First uint8 // derived: the sum of the sizes of the stages before it
	Size  uint8
	Owner App
	// Miss is the table-miss action in reactive mode; ProactiveMiss in
	// proactive mode.
	Miss          Miss
	ProactiveMiss Miss
	// MissTables is how many of the region's first tables end in the
	// stage's miss (default 1): L3Lookup's second table holds what a
	// router with a gateway did not route but owns (an address of its own
	// subnets), which misses as L3Lookup does.
	MissTables uint8
	Does       string
}

// missTables are the tables that end in the stage's miss.
func (s Stage) missTables() []uint8 {
	out := []uint8{s.First}
	for i := uint8(1); i < s.MissTables; i++ {
		out = append(out, s.First+i)
	}
	return out
}

// Table is the stage's main table number.
func (s Stage) Table() uint8 { return s.First }

var drop = Miss{Kind: MissDrop}

func punt(r PuntReason) Miss { return Miss{Kind: MissPunt, Reason: r} }

func gotoStage(name string) Miss { return Miss{Kind: MissGoto, Goto: name} }

// Stages is the pipeline, declared once, in run order. Table numbers, names
// on the switch, miss flows and docs/pipeline.md all follow from it.
var Stages = numbered([]Stage{
	{Name: "Classifier", Size: 10, Owner: AppTunnels, Miss: drop, ProactiveMiss: drop,
		Does: "local VM port → reg6, metadata; tunnel port + tun_id → metadata, FromRemote; a physical network's patch port + its VLAN (popped) or none → metadata, FromRemote, FromPhysical, Uplink; anything else dropped"},
	{Name: "Uplink", Size: 5, Owner: AppNAT, Miss: gotoStage("L2Lookup"), ProactiveMiss: gotoStage("L2Lookup"),
		Does: "from a physical network: ARP for a floating IP (its port's chassis), a router gateway (its gateway chassis) or a router interface (the router's chassis on that network) → reply built in OVS; ARP replies to them → punt (neighbour learned); to a floating IP or port forwarding → ct DNAT; to a router gateway → ct un-SNAT; then the router routes it (L3Lookup); anything else → L2Lookup"},
	{Name: "DHCP", Size: 5, Owner: AppDHCP, Miss: gotoStage("PortSecurity"), ProactiveMiss: gotoStage("PortSecurity"),
		Does: "a local VM port's DHCPv4 request (its MAC, UDP 68→67, to broadcast or the server address) → punt with the port's whole reply encoded in the flow, answered on this chassis; before port security, which would drop a request from 0.0.0.0"},
	{Name: "PortSecurity", Size: 10, Owner: AppL2Pop, Miss: drop, ProactiveMiss: drop,
		Does: "a VM may send IPv4 and ARP only from its MAC and IPs (fixed IPs + allowed address pairs); the rest is dropped and counted"},
	{Name: "SGEgress", Size: 5, Owner: AppSecurityGroup, Miss: drop, ProactiveMiss: drop,
		Does: "IPv4 a filtered port sent, after ct(zone=the port's) → replies (+est+rpl, +rel) pass unless their connection was blocked; invalid dropped; a new or established connection matching a rule of the port's groups (egress: port × remote × protocol conjunction) → commit, ServiceClassifier; an established one no rule allows any more → marked blocked in ct_mark, dropped"},
	{Name: "ServiceClassifier", Size: 5, Owner: AppARPResponder, Miss: gotoStage("L2Lookup"), ProactiveMiss: gotoStage("L2Lookup"),
		Does: "ARP → ARPResponder; DNS queries from local ports of networks with a dns_domain → DNS; everything else → L2Lookup"},
	{Name: "ARPResponder", Size: 15, Owner: AppARPResponder, Miss: punt(ReasonARPMiss), ProactiveMiss: gotoStage("L2Lookup"),
		Does: "ARP request for a known IP → reply built in OVS, out in_port; miss → punt (reactive) or L2Lookup"},
	{Name: "DNS", Size: 5, Owner: AppDNS, Miss: gotoStage("L2Lookup"), ProactiveMiss: gotoStage("L2Lookup"),
		Does: "a local VM port's DNS query (UDP to port 53) in a network with a dns_domain → punt: names of the VM's own network answered on this chassis, other queries re-injected unchanged into L2Lookup"},
	{Name: "L2Lookup", Size: 10, Owner: AppL2Pop, Miss: punt(ReasonL2Miss), ProactiveMiss: gotoStage("Flood"),
		Does: "router MAC → L3Lookup; known MAC → reg7, Egress; broadcast → Flood; miss → punt (reactive) or Flood"},
	{Name: "L3Lookup", Size: 10, Owner: AppDVR, Miss: punt(ReasonRouteMiss), ProactiveMiss: drop, MissTables: 2,
		Does: "echo request to a gateway of the router → reply built in OVS; TTL ≤ 1 → punt (ICMP time exceeded); to a network of smaller MTU → check_pkt_larger, too big → punt (ICMP fragmentation needed); known destination of the router → eth_dst←VM MAC, dec_ttl, eth_src←router MAC of its subnet and Delivery (local) or ←this chassis' DVR MAC and the tunnel (remote); miss → punt (reactive) or drop"},
	{Name: "SNAT", Size: 5, Owner: AppNAT, Miss: drop, ProactiveMiss: drop,
		Does: "routed to outside the router: from a floating IP's or port forwarding's address on its chassis → ct SNAT to it; on the router's gateway chassis → ct SNAT to the gateway address; elsewhere → to the gateway chassis (tunnel or physical network); then to the next hop on the external network (its MAC learned by ARP), tagged, out the uplink"},
	{Name: "Egress", Size: 10, Owner: AppTunnels, Miss: drop, ProactiveMiss: drop,
		Does: "remote destination → tun_dst, tun_id, out the tunnel; local → Delivery"},
	{Name: "Flood", Size: 10, Owner: AppL2Pop, Miss: drop, ProactiveMiss: drop,
		Does: "local ports of the network + one copy per other chassis hosting it"},
	{Name: "Delivery", Size: 10, Owner: AppL2Pop, Miss: drop, ProactiveMiss: drop,
		Does: "from a tunnel with a DVR MAC source → eth_src←router MAC of the port's subnet; out the local port (IPv4 to a filtered port: ct(zone=the port's), SGIngress)"},
	{Name: "SGIngress", Size: 5, Owner: AppSecurityGroup, Miss: drop, ProactiveMiss: drop,
		Does: "IPv4 to a filtered port, after ct → replies pass unless blocked; invalid dropped; a new or established connection matching an ingress rule of the port's groups → commit, out the port; an established one no rule allows any more → marked blocked, dropped"},
})

// numbered gives each stage its first table: where the region of the
// stage before it ends.
func numbered(stages []Stage) []Stage {
	next := 0
	for i := range stages {
		if next+int(stages[i].Size) > 254 {
			panic("pipeline: stages overflow table 253")
		}
		stages[i].First = uint8(next)
		next += int(stages[i].Size)
	}
	return stages
}

// Stage names as constants, so callers do not spell strings.
const (
	Classifier        = "Classifier"
	Uplink            = "Uplink"
	SNAT              = "SNAT"
	DHCP              = "DHCP"
	PortSecurity      = "PortSecurity"
	SGEgress          = "SGEgress"
	SGIngress         = "SGIngress"
	ServiceClassifier = "ServiceClassifier"
	ARPResponder      = "ARPResponder"
	DNS               = "DNS"
	L2Lookup          = "L2Lookup"
	L3Lookup          = "L3Lookup"
	Egress            = "Egress"
	Flood             = "Flood"
	Delivery          = "Delivery"
)

var stageByName = func() map[string]Stage {
	m := make(map[string]Stage, len(Stages))
	for _, s := range Stages {
		m[s.Name] = s
	}
	return m
}()

// Table returns the table number of a declared stage. It panics on an
// undeclared name: stage names are compile-time constants of this package.
func Table(name string) uint8 {
	s, ok := stageByName[name]
	if !ok {
		panic("pipeline: no stage " + name)
	}
	return s.First
}

// StageOf returns the stage whose region holds the table.
func StageOf(table uint8) (Stage, bool) {
	for _, s := range Stages {
		if table >= s.First && int(table) < int(s.First)+int(s.Size) {
			return s, true
		}
	}
	return Stage{}, false
}

// TableNames maps each stage's main table to its name, as set on the switch.
func TableNames() map[uint8]string {
	m := make(map[uint8]string, len(Stages))
	for _, s := range Stages {
		m[s.First] = s.Name
	}
	return m
}

// MissFlows returns the table-miss flow (priority 0, match all) of every
// stage for the mode, under the given cookie round.
func MissFlows(mode Mode, round uint16) []of.Flow {
	out := make([]of.Flow, 0, len(Stages))
	for _, s := range Stages {
		miss := s.Miss
		if mode == Proactive {
			miss = s.ProactiveMiss
		}
		for _, t := range s.missTables() {
			f := of.Flow{
				Table:    t,
				Priority: 0,
				Cookie:   NewCookie(round, AppPipeline, uint64(t)),
			}
			switch miss.Kind {
			case MissGoto:
				f.Actions = []of.Action{of.GotoTable{Table: Table(miss.Goto)}}
			case MissPunt:
				f.Actions = []of.Action{Punt(miss.Reason, MeterFromRemotes)}
			}
			out = append(out, f)
		}
	}
	return out
}

// Names are the table names of the declared stages, with no ports: what
// `ovs-ofctl dump-flows --names` prints for a Wyvern bridge.
func Names() *of.Names { return &of.Names{Tables: TableNames()} }
