package main

import (
	"regexp"
	"sort"
	"strconv"
	"testing"
)

var rttRE = regexp.MustCompile(`time=([0-9.]+) ms`)

// rtts returns the round-trip times ping printed, in milliseconds.
func rtts(out string) []float64 {
	var r []float64
	for _, m := range rttRE.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		r = append(r, v)
	}
	return r
}

func percentileF(v []float64, p float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkPuntLatency measures what reactive forwarding costs a first
// packet through real OVS: for each of b.N fresh destinations on another
// chassis, the first ping's RTT -- two punts, the request on hv1 and the
// reply on hv2, each answered with a bundle and a re-injection -- minus the
// steady RTT of the pings after it. Neighbour entries are set by hand so
// only the L2 punts are measured. Reported as p50/p99 in milliseconds.
func BenchmarkPuntLatency(b *testing.B) {
	tb := newTestbed(b, 2)
	hv1, hv2 := tb.hvs[0], tb.hvs[1]
	a := tb.network("A", "vxlan", 100, "10.0.0.0/22")
	src, psrc := tb.vm(hv1, a, "")
	tb.waitActive(psrc)
	var extra, steady []float64
	for i := 0; i < b.N; i++ {
		dst, pdst := tb.vm(hv2, a, "")
		tb.waitActive(pdst)
		for _, pin := range [][]string{{ipOf(dst), dst.MAC}, {ipOf(src), src.MAC}} {
			vm := src
			if pin[0] == ipOf(src) {
				vm = dst
			}
			if _, err := vm.Exec("ip", "neigh", "replace", pin[0], "lladdr", pin[1], "dev", "eth0", "nud", "permanent"); err != nil {
				b.Fatal(err)
			}
		}
		out, err := src.Exec("ping", "-c", "5", "-i", "0.2", "-W", "2", ipOf(dst))
		r := rtts(out)
		if err != nil || len(r) < 5 {
			b.Fatalf("ping %s: %v\n%s", ipOf(dst), err, out)
		}
		base := percentileF(r[1:], 0.5)
		extra = append(extra, r[0]-base)
		steady = append(steady, base)
	}
	b.ReportMetric(percentileF(extra, 0.5), "punt-p50-ms")
	b.ReportMetric(percentileF(extra, 0.99), "punt-p99-ms")
	b.ReportMetric(percentileF(steady, 0.5), "steady-rtt-ms")
}
