package apps

import (
	"fmt"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/nat"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// BenchmarkPlugOnLargeCloud: what a VM plugged on hv2 costs hv1's bridge
// on a cloud of 4,000 ports over 40 chassis, in one network: the
// incremental update of the objects it affects, against, as the peer in
// the same run, the full recompute every change used to cost. Reported:
// microseconds for each and their ratio.
func BenchmarkPlugOnLargeCloud(b *testing.B) {
	f := topologytest.Large(b, 40, 4000)
	p := New(pipeline.Reactive)
	br := topologytest.Bridge("hv1")
	v := view.Build(f.Store)
	d := p.Compute(v, br)
	var inc, full float64
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("x%d", i)
		idx := uint64(100_000 + 2*i)
		if _, err := f.Store.CreatePorts(idx, []topology.PortSpec{{ID: id, NetworkID: strp("A")}}); err != nil {
			b.Fatal(err)
		}
		if _, err := f.Store.ReportPorts(idx+1, "hv2", append(bindingsOf(f.Store, "hv2"), topology.Binding{PortID: id, OFPort: uint32(90_000 + i)})); err != nil {
			b.Fatal(err)
		}
		after := view.Build(f.Store)
		changes := []topology.Change{{Resource: topology.ResourcePort, ID: id}}
		b.StartTimer()
		start := timeNow()
		p.Update(d, v, after, br, changes)
		inc += sinceMicros(start)
		start = timeNow()
		p.Compute(after, br)
		full += sinceMicros(start)
		b.StopTimer()
		v = after
	}
	n := float64(b.N)
	b.ReportMetric(inc/n, "incremental-µs")
	b.ReportMetric(full/n, "full-µs")
	b.ReportMetric(full/inc, "full/incremental")
}

func strp(s string) *string { return &s }

func bindingsOf(s *topology.Store, chassis string) []topology.Binding {
	var out []topology.Binding
	for _, p := range s.Ports() {
		if p.HostID == chassis && p.OFPort != 0 {
			out = append(out, topology.Binding{PortID: p.ID, OFPort: p.OFPort})
		}
	}
	return out
}

var timeNow = time.Now

func sinceMicros(t time.Time) float64 { return float64(time.Since(t).Nanoseconds()) / 1000 }

// BenchmarkARPPunt: the pipeline's answer to one ARP request punt from a
// port of hv1 for another port of its network (4,000 ports over 40
// chassis), as a punt worker computes it: the answer flow and the reply
// frame. Allocations are the figure to watch (-benchmem): they are most
// of a punt's cost under load (bench/README.md).
func BenchmarkARPPunt(b *testing.B) {
	v, br, punt := arpPuntOnLargeCloud(b)
	p := New(pipeline.Reactive)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if a := p.OnPunt(v, br, punt); a.Outcome != app.Answered || len(a.Flows) != 1 || a.Reply == nil {
			b.Fatalf("answer %+v", a)
		}
	}
}

// TestOnPuntInstallsOnlyOnDemand: a punt's answer keeps its flows in
// reactive mode, and none in proactive mode, where the bridge holds them
// already (its reply stays).
func TestOnPuntInstallsOnlyOnDemand(t *testing.T) {
	v, br, punt := arpPuntOnLargeCloud(t)
	if a := New(pipeline.Reactive).OnPunt(v, br, punt); len(a.Flows) != 1 || a.Reply == nil {
		t.Fatalf("reactive answer %+v, want its flow and reply", a)
	}
	if a := New(pipeline.Proactive).OnPunt(v, br, punt); a.Flows != nil || a.Reply == nil || a.Outcome != app.Answered {
		t.Fatalf("proactive answer %+v, want its reply and no flow", a)
	}
}

// arpPuntOnLargeCloud is p1's ARP request for p2, punted on hv1, on a
// cloud of 4,000 ports over 40 chassis.
func arpPuntOnLargeCloud(tb testing.TB) (*view.View, view.Bridge, app.Punt) {
	f := topologytest.Large(tb, 40, 4000)
	v := view.Build(f.Store)
	n, _ := v.Network("A")
	src, _ := v.Port("p1")
	dst, _ := v.Port("p2")
	frame := nat.ARPRequest(src.MAC, src.FixedIPs[0].Addr, dst.FixedIPs[0].Addr)
	pkt, err := of.ParsePacket(frame)
	if err != nil {
		tb.Fatal(err)
	}
	return v, topologytest.Bridge("hv1"), app.Punt{Reason: pipeline.ReasonARPMiss, InPort: 1, Packet: pkt, Frame: frame,
		Fields: of.Match{}.Reg(pipeline.NetworkKey, uint64(n.Key)).Reg(pipeline.SrcPortKey, uint64(src.Key))}
}
