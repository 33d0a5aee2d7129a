package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
)

// BenchmarkFloatingIPThroughput: TCP bulk throughput between the same two
// VMs (hv1 and hv2, one overlay network, each with a floating IP), over
// the overlay to the fixed IP and through the NAT to the floating IP —
// SNAT to its own floating IP on hv1, out the physical network, DNAT on
// hv2 — in the same run, on real OVS (userspace datapath). Reports MB/s of
// each and their ratio.
func BenchmarkFloatingIPThroughput(b *testing.B) {
	lab := newExternalLab(b, 3, []int{3})
	hv1, hv2 := lab.hvs[0], lab.hvs[1]
	ext, _ := lab.providerNetwork("public", "flat", 0, labExternal, labRouterIP, true)
	a, aSub := lab.overlay("A", "10.0.0.0/24")
	r := lab.newRouter("R", aSub)
	lab.setGateway(r, ext)
	vm1, p1 := lab.routedVM(hv1, a, "10.0.0.11", "10.0.0.1")
	vm2, p2 := lab.routedVM(hv2, a, "10.0.0.12", "10.0.0.1")
	lab.waitActive(p1, p2)
	lab.admitFromAnywhere() // vm2 takes vm1's floating IP as a client
	fip := func(port string) string {
		var out struct {
			FloatingIP struct {
				Address string `json:"floating_ip_address"`
			} `json:"floatingip"`
		}
		if code, err := lab.call("POST", "/v2.0/floatingips", map[string]any{"floatingip": map[string]any{
			"floating_network_id": ext, "port_id": port}}, &out); err != nil || code != http.StatusCreated {
			b.Fatalf("floating IP: %d %v", code, err)
		}
		return out.FloatingIP.Address
	}
	fip(p1)
	f2 := fip(p2)
	vm2.Serve(b, "10.0.0.12:5001", func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }) // a sink
	for _, addr := range []string{"10.0.0.12:5001", f2 + ":5001"} {
		ovstest.Eventually(b, 15*time.Second, "TCP to "+addr, func() bool {
			return send(b, vm1.NetNS, addr, 1<<16) == 1<<16
		})
	}
	const size = 32 << 20
	var overlay, nat time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		send(b, vm1.NetNS, "10.0.0.12:5001", size)
		overlay += time.Since(start)
		start = time.Now()
		send(b, vm1.NetNS, f2+":5001", size)
		nat += time.Since(start)
	}
	b.StopTimer()
	mbps := func(d time.Duration) float64 { return float64(b.N) * size / (1 << 20) / d.Seconds() }
	b.ReportMetric(mbps(overlay), "overlay-MB/s")
	b.ReportMetric(mbps(nat), "floatingip-MB/s")
	b.ReportMetric(mbps(nat)/mbps(overlay), "floatingip/overlay")
}

// send writes n bytes to addr from ns and waits for the peer to take
// them all (it closes its side after reading to the end); it returns how
// many were written.
func send(tb testing.TB, ns *ovstest.NetNS, addr string, n int) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	c, err := ns.DialContext(ctx, "tcp4", addr)
	cancel()
	if err != nil {
		return 0
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	buf := make([]byte, 64<<10)
	sent := 0
	for sent < n {
		k, err := c.Write(buf[:min(len(buf), n-sent)])
		sent += k
		if err != nil {
			tb.Logf("send to %s: %v after %d bytes", addr, err, sent)
			return sent
		}
	}
	_ = c.(*net.TCPConn).CloseWrite()
	_, _ = io.Copy(io.Discard, c) // until the peer closes: every byte arrived
	return sent
}
