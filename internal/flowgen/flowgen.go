// Package flowgen makes random but valid flows of the kinds Wyvern
// installs, for property tests, switch round trips and benchmarks.
package flowgen

import (
	"math/rand"
	"net/netip"

	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Flow makes a flow that OVS accepts: matches carry their prerequisites,
// goto_table goes forward, instructions end the list.
func Flow(rng *rand.Rand) of.Flow {
	f := of.Flow{
		Table:    uint8(rng.Intn(90)),
		Priority: uint16(rng.Intn(3)) * 100,
		Cookie:   pipeline.NewCookie(uint16(rng.Intn(4)), pipeline.App(rng.Intn(6)+1), uint64(rng.Intn(1<<20))),
	}
	if rng.Intn(4) == 0 {
		f.IdleTimeout = uint16(60 + rng.Intn(240)) // long enough not to expire in a test
	}
	m := of.Match{}.Reg(pipeline.NetworkKey, uint64(rng.Intn(4096)))
	switch rng.Intn(5) {
	case 0:
		m = m.InPort(uint32(rng.Intn(1000) + 1))
	case 1:
		m = m.EthDst(of.MACFromValue(0xfa163e000000 | uint64(rng.Intn(1<<24))))
	case 2:
		m = m.EthType(of.EthTypeARP).ARPOp(of.ARPRequest).
			ARPTPA(of.IPv4FromValue(0x0a000000 | uint64(rng.Intn(1<<16))))
	case 3:
		m = m.EthType(of.EthTypeIPv4).
			IPv4Dst(netip.PrefixFrom(of.IPv4FromValue(uint64(rng.Uint32())), rng.Intn(33)).Masked())
	case 4:
		m = m.TunID(uint64(rng.Intn(1<<24))).Reg(pipeline.SrcPortKey, uint64(rng.Intn(1<<16)))
	}
	if rng.Intn(3) == 0 {
		m = m.Reg(pipeline.FromRemote, uint64(rng.Intn(2)))
	}
	f.Match = m
	n := rng.Intn(4)
	for i := 0; i < n; i++ {
		switch rng.Intn(8) {
		case 0:
			f.Actions = append(f.Actions, of.Output{Port: uint32(rng.Intn(1000) + 1)})
		case 1:
			f.Actions = append(f.Actions, of.SetReg(pipeline.DstPortKey, uint64(rng.Intn(1<<20))))
		case 2:
			f.Actions = append(f.Actions, of.SetField{Field: of.FieldTunDst, Value: uint64(rng.Uint32())})
		case 3:
			f.Actions = append(f.Actions, of.SetReg(pipeline.Routed, 1))
		case 4:
			f.Actions = append(f.Actions, of.Move{Src: of.FieldEthSrc, Dst: of.FieldEthDst})
		case 5:
			f.Actions = append(f.Actions, of.Punt{UserData: string(rune('a' + rng.Intn(26)))})
		case 6:
			f.Actions = append(f.Actions, of.Resubmit{Table: uint8(rng.Intn(250))})
		case 7:
			f.Actions = append(f.Actions, of.CheckLarger(uint16(64+rng.Intn(9000)), pipeline.PktLarger))
		}
	}
	if rng.Intn(2) == 0 {
		f.Actions = append(f.Actions, of.WriteMetadata{Value: uint64(rng.Intn(100))})
	}
	if rng.Intn(2) == 0 && f.Table < 89 {
		f.Actions = append(f.Actions, of.GotoTable{Table: f.Table + 1 + uint8(rng.Intn(int(89-f.Table)))})
	}
	return f
}

// Set makes a set of n random flows (fewer if keys collide).
func Set(rng *rand.Rand, n int) of.FlowSet {
	s := of.NewFlowSet()
	for i := 0; i < n; i++ {
		s.Add(Flow(rng))
	}
	return s
}

// Distinct makes exactly n flows with distinct keys: flow i matches
// metadata=i in one table, so huge sets cost no collisions.
func Distinct(rng *rand.Rand, n int) []of.Flow {
	out := make([]of.Flow, n)
	for i := range out {
		f := Flow(rng)
		f.Table = pipeline.Table(pipeline.L2Lookup)
		f.Match = f.Match.Reg(pipeline.NetworkKey, uint64(i))
		if len(f.Actions) > 0 {
			if g, ok := f.Actions[len(f.Actions)-1].(of.GotoTable); ok && g.Table <= f.Table {
				f.Actions = f.Actions[:len(f.Actions)-1]
			}
		}
		out[i] = f
	}
	return out
}

// Mutate derives a set that shares flows with s, changes some (actions,
// cookie round), drops some and adds others.
func Mutate(rng *rand.Rand, s of.FlowSet) of.FlowSet {
	out := of.NewFlowSet()
	for _, f := range s.Flows() {
		switch rng.Intn(4) {
		case 0: // dropped
		case 1:
			f.Actions = append([]of.Action{of.DecTTL{}}, f.Actions...)
			out.Add(f)
		case 2:
			f = pipeline.WithRound(f, pipeline.Cookie(f.Cookie).Round()+1)
			out.Add(f)
		default:
			out.Add(f)
		}
	}
	for i := 0; i < rng.Intn(20); i++ {
		out.Add(Flow(rng))
	}
	return out
}
