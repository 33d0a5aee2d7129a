package l2pop_test

import (
	"net"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
	"github.com/wyvern-sdn/wyvern/l2pop"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/tunnels"
)

// BenchmarkOnMiss answers an L2 punt on hv1 in a network of 4,000 ports
// over 40 chassis, and, as the peer in the same run, the way OnMiss used to
// answer it: build the bridge's whole flow set and keep the destination's
// flows. Reported: microseconds per punt for each, and their ratio.
func BenchmarkOnMiss(b *testing.B) {
	f := topologytest.Large(b, 40, 4000)
	v := f.View()
	br := topologytest.Bridge("hv1")
	n, _ := v.Network("A")
	ports := v.NetworkPorts(n.ID)
	mac := func(i int) net.HardwareAddr {
		m := ports[i*7919%len(ports)].MAC
		return m
	}
	old := func(dst net.HardwareAddr) int {
		found := 0
		for _, fl := range append((l2pop.App{}).Flows(v, br), (tunnels.App{}).Flows(v, br)...) {
			if (l2pop.App{}).PerDestination(fl) {
				if d, ok := fl.Match.Get(of.FieldEthDst); ok && d.Value == of.MACValue(dst) {
					found++
				}
			}
		}
		return found
	}
	var direct, filtered time.Duration
	for i := 0; i < b.N; i++ {
		dst := mac(i)
		start := time.Now()
		if got := l2pop.OnMiss(v, br, n.Key, dst); len(got) != 2 {
			b.Fatalf("OnMiss gave %d flows", len(got))
		}
		direct += time.Since(start)
		start = time.Now()
		if old(dst) != 1 {
			b.Fatal("the filtered set lacks the destination")
		}
		filtered += time.Since(start)
	}
	b.ReportMetric(float64(direct.Microseconds())/float64(b.N), "onmiss-µs")
	b.ReportMetric(float64(filtered.Microseconds())/float64(b.N), "whole-set-µs")
	b.ReportMetric(float64(filtered)/float64(direct), "speedup")
}
