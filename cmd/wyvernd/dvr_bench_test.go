package main

import (
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
)

// BenchmarkRoutedPuntLatency measures what routing adds to a first packet,
// against a peer in the same run: per iteration, one fresh VM on hv2 in
// the source's network and one in a network behind router R, and the
// first ping's RTT minus the steady RTT to each. The same-network ping
// costs two punts (L2Lookup on hv1, L2Lookup from the tunnel on hv2); the
// routed one three (L3Lookup on hv1, L2Lookup from the tunnel on hv2,
// L3Lookup on hv2 for the reply; hv1 already knows src's MAC from the
// peer's reply). Neighbour entries, gateway included, are set by hand so
// only the punts are measured. Reported as p50/p99 in milliseconds and the
// ratio of the p50s.
func BenchmarkRoutedPuntLatency(b *testing.B) {
	tb := newTestbed(b, 2)
	hv1, hv2 := tb.hvs[0], tb.hvs[1]
	netA := tb.network("A", "vxlan", 100, "10.0.0.0/22")
	netB := tb.network("B", "gre", 200, "10.1.0.0/22")
	src, psrc := tb.vm(hv1, netA, "")
	tb.waitActive(psrc)
	_, macs := tb.router("R", netA, netB)
	macA, macB := macs[0], macs[1]
	pin := func(vm *ovstest.VM, ip, mac string) {
		if _, err := vm.Exec("ip", "neigh", "replace", ip, "lladdr", mac, "dev", "eth0", "nud", "permanent"); err != nil {
			b.Fatal(err)
		}
	}
	defaultRoutes(b, map[*ovstest.VM]string{src: "10.0.0.1"})
	pin(src, "10.0.0.1", macA)
	first := func(from, to *ovstest.VM) (extra, steady float64) {
		out, err := from.Exec("ping", "-c", "5", "-i", "0.2", "-W", "2", ipOf(to))
		r := rtts(out)
		if err != nil || len(r) < 5 {
			b.Fatalf("ping %s: %v\n%s", ipOf(to), err, out)
		}
		base := percentileF(r[1:], 0.5)
		return r[0] - base, base
	}
	var l2, routed, steady []float64
	for i := 0; i < b.N; i++ {
		peer, ppeer := tb.vm(hv2, netA, "")
		dst, pdst := tb.vm(hv2, netB, "")
		tb.waitActive(ppeer, pdst)
		pin(src, ipOf(peer), peer.MAC)
		pin(peer, ipOf(src), src.MAC)
		defaultRoutes(b, map[*ovstest.VM]string{dst: "10.1.0.1"})
		pin(dst, "10.1.0.1", macB)
		ovstest.Eventually(b, 10*time.Second, "R's MAC on B in hv2's L2Lookup", func() bool {
			return len(portFlows(hv2, "dl_dst="+macB+" actions=set_field:")) == 1
		})
		e, _ := first(src, peer)
		l2 = append(l2, e)
		e, s := first(src, dst)
		routed = append(routed, e)
		steady = append(steady, s)
	}
	b.ReportMetric(percentileF(l2, 0.5), "l2-punt-p50-ms")
	b.ReportMetric(percentileF(routed, 0.5), "routed-punt-p50-ms")
	b.ReportMetric(percentileF(routed, 0.99), "routed-punt-p99-ms")
	b.ReportMetric(percentileF(steady, 0.5), "routed-steady-rtt-ms")
	if p := percentileF(l2, 0.5); p > 0 {
		b.ReportMetric(percentileF(routed, 0.5)/p, "routed/l2")
	}
}
