package arpresponder_test

import (
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/arpresponder"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
)

// BenchmarkOnMiss answers an ARP punt on hv1 in a network of 4,000 ports
// over 40 chassis, against the bridge's whole answer set (what OnMiss used
// to build per punt) in the same run.
func BenchmarkOnMiss(b *testing.B) {
	f := topologytest.Large(b, 40, 4000)
	v := f.View()
	br := topologytest.Bridge("hv1")
	n, _ := v.Network("A")
	ports := v.NetworkPorts(n.ID)
	var direct, whole time.Duration
	for i := 0; i < b.N; i++ {
		ip := ports[i*7919%len(ports)].FixedIPs[0].Addr
		start := time.Now()
		if got := arpresponder.OnMiss(v, br, n.Key, ip); len(got) != 1 {
			b.Fatalf("OnMiss gave %d flows", len(got))
		}
		direct += time.Since(start)
		start = time.Now()
		if len((arpresponder.App{}).Flows(v, br)) < len(ports) {
			b.Fatal("short answer set")
		}
		whole += time.Since(start)
	}
	b.ReportMetric(float64(direct.Microseconds())/float64(b.N), "onmiss-µs")
	b.ReportMetric(float64(whole.Microseconds())/float64(b.N), "whole-set-µs")
	b.ReportMetric(float64(whole)/float64(direct), "speedup")
}
