package pipeline

import (
	"slices"

	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

// Meters of the punt path. In reactive mode every punt passes one, in the
// datapath, before it costs the controller anything: a VM that floods
// unknown destinations spends its own port's meter and nobody else's.
//
//	meter <port key>    punts of packets a local VM port sent (PortPuntFlows)
//	MeterFromRemotes    table-miss punts: packets with no local source port
//	MeterAnnouncements  gratuitous ARPs for shared addresses (VIP learning)
//	MeterICMPErrors     routed packets the router answers with an ICMP error:
//	                    TTL ran out, or too big for the network routed to
//	MeterNeighbours     ARP replies to a router on a physical network, and
//	                    routed packets waiting for one
const (
	MeterFromRemotes   uint32 = 0xffff0000 // OFPM_MAX, the largest meter id
	MeterAnnouncements uint32 = 0xfffeffff
	MeterICMPErrors    uint32 = 0xfffefffe
	MeterNeighbours    uint32 = 0xfffefffd
)

// PortMeter is the meter of a local port's punts: its port key. Port keys
// are allocated from 1 and stay far below the shared meters' ids.
func PortMeter(key uint32) uint32 { return key }

// PriorityPortPunt is just above a table's miss flow.
const PriorityPortPunt = 1

// PortPuntFlows returns, in reactive mode, one flow per punting stage for
// a local port: what that port sent and no flow of the stage answers goes
// to the controller through the port's own meter. Proactive mode punts
// nothing and gets none.
func PortPuntFlows(mode Mode, key uint32) []of.Flow {
	if mode != Reactive {
		return nil
	}
	var out []of.Flow
	for _, s := range Stages {
		if s.Miss.Kind != MissPunt {
			continue
		}
		for _, t := range s.missTables() {
			out = append(out, of.Flow{Table: t, Priority: PriorityPortPunt,
				Cookie:  NewCookie(0, AppPipeline, PortObject(key)),
				Match:   of.Match{}.Reg(SrcPortKey, uint64(key)),
				Actions: []of.Action{Punt(s.Miss.Reason, PortMeter(key))}})
		}
	}
	return out
}

// Meters returns the meters a set of flows punts through, sorted, without
// duplicates.
func Meters(flows []of.Flow) []uint32 {
	seen := map[uint32]bool{}
	var out []uint32
	for _, f := range flows {
		for _, a := range f.Actions {
			if p, ok := a.(of.Punt); ok && p.MeterID != 0 && !seen[p.MeterID] {
				seen[p.MeterID] = true
				out = append(out, p.MeterID)
			}
		}
	}
	slices.Sort(out)
	return out
}
