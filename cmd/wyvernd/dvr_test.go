package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/daemontest"
	"github.com/wyvern-sdn/wyvern/internal/ovstest"
)

// put sends a PUT through hv1's API and decodes the answer.
func (tb *testbed) put(path string, body map[string]any) map[string]any {
	tb.t.Helper()
	var out map[string]any
	if code, err := tb.call("PUT", path, body, &out); err != nil || code != http.StatusOK {
		tb.t.Fatalf("PUT %s %v: %d %v %v", path, body, code, err, out)
	}
	return out
}

// get reads one resource through hv1's API.
func (tb *testbed) get(path, key string) map[string]any {
	tb.t.Helper()
	var out map[string]map[string]any
	if code, err := tb.call("GET", path, nil, &out); err != nil || code != http.StatusOK {
		tb.t.Fatalf("GET %s: %d %v", path, code, err)
	}
	return out[key]
}

// subnetOf is a network's first subnet.
func (tb *testbed) subnetOf(network string) string {
	tb.t.Helper()
	return tb.get("/v2.0/networks/"+network, "network")["subnets"].([]any)[0].(string)
}

// router creates a router joined to the first subnet of each network, and
// returns its id and its MAC on each, in order.
func (tb *testbed) router(name string, networks ...string) (string, []string) {
	tb.t.Helper()
	id := tb.create("/v2.0/routers", map[string]any{"router": map[string]any{"name": name}})["id"].(string)
	var macs []string
	for _, n := range networks {
		iface := tb.put("/v2.0/routers/"+id+"/add_router_interface", map[string]any{"subnet_id": tb.subnetOf(n)})
		macs = append(macs, tb.get("/v2.0/ports/"+iface["port_id"].(string), "port")["mac_address"].(string))
	}
	return id, macs
}

// defaultRoutes point VMs at their gateways.
func defaultRoutes(t testing.TB, gateways map[*ovstest.VM]string) {
	t.Helper()
	for vm, gw := range gateways {
		if _, err := vm.Exec("ip", "route", "replace", "default", "via", gw); err != nil {
			t.Fatal(err)
		}
	}
}

// dvrMACs are the chassis' DVR MACs, by chassis name.
func (tb *testbed) dvrMACs() map[string]string {
	tb.t.Helper()
	var out struct {
		Chassis []struct {
			Name   string `json:"name"`
			DVRMAC string `json:"dvr_mac"`
		} `json:"chassis"`
	}
	if code, err := tb.call("GET", "/v2.0/chassis", nil, &out); err != nil || code != http.StatusOK {
		tb.t.Fatalf("GET /v2.0/chassis: %d %v", code, err)
	}
	m := map[string]string{}
	for _, c := range out.Chassis {
		m[c.Name] = c.DVRMAC
	}
	return m
}

// TestDVRRoutesOnTheSourceChassis: router R joins subnet A (VXLAN) and
// subnet B (GRE). VM a (A, hv1) pings VM b (B, hv2) through R from cold.
// b sees the request with its TTL decremented by exactly one and R's MAC
// on B as the source; on the underlay the routed packets go hv1 → hv2
// directly with hv1's DVR MAC as their inner source (hv2's on the
// replies) and never a router MAC, and hv3, which hosts both networks,
// sees none of them. TTL 1 is answered with ICMP time exceeded from A's
// gateway, pings to R's gateways are answered, b's allowed-pair address is
// routed to b, a packet too big for A's
// MTU is answered with fragmentation needed, and a VM of B on hv1 is
// reached without leaving hv1. Removing
// R's interface on B stops the routing and leaves no flow for it on any
// bridge. In both forwarding modes: reactive (routes from the first
// packet's punt) and proactive (routes up front).
func TestDVRRoutesOnTheSourceChassis(t *testing.T) {
	for _, mode := range []string{"reactive", "proactive"} {
		t.Run(mode, func(t *testing.T) { testDVR(t, mode) })
	}
}

func testDVR(t *testing.T, mode string) {
	tb := newTestbed(t, 3, "--idle-timeout", "60", "--forwarding", mode)
	hv1, hv2, hv3 := tb.hvs[0], tb.hvs[1], tb.hvs[2]
	netA := tb.network("A", "vxlan", 100, "10.0.0.0/24")
	netB := tb.network("B", "gre", 200, "10.1.0.0/24")
	subnetB := tb.subnetOf(netB)
	a, pa := tb.vm(hv1, netA, "10.0.0.10")
	b, pb := tb.vmPort(hv2, netB, map[string]any{"network_id": netB, // with a second address, keepalived style
		"fixed_ips": []map[string]string{{"ip_address": "10.1.0.20"}}, "allowed_address_pairs": []map[string]string{{"ip_address": "10.1.0.100"}}})
	bLocal, pbLocal := tb.vm(hv1, netB, "10.1.0.11") // routed without leaving hv1
	_, pa3 := tb.vm(hv3, netA, "10.0.0.30")          // hv3 hosts both networks: anything
	_, pb3 := tb.vm(hv3, netB, "10.1.0.30")          // flooded would reach it
	tb.waitActive(pa, pb, pbLocal, pa3, pb3)
	defaultRoutes(t, map[*ovstest.VM]string{a: "10.0.0.1", b: "10.1.0.1", bLocal: "10.1.0.1"})

	rid, macs := tb.router("R", netA, netB)
	macA, macB := macs[0], macs[1]
	dvr := tb.dvrMACs()
	t.Logf("router MACs: A %s, B %s; DVR MACs %v", macA, macB, dvr)
	ovstest.Eventually(t, 20*time.Second, "the router MACs in L2Lookup on hv1 and hv2", func() bool {
		return len(portFlows(hv1, "dl_dst="+macA+" actions=set_field:")) == 1 && len(portFlows(hv2, "dl_dst="+macB+" actions=set_field:")) == 1
	})
	routes := func() []string { return portFlows(hv1, "table=L3Lookup, priority=100") }
	if mode == "reactive" {
		if got := routes(); len(got) != 0 {
			t.Fatalf("hv1 has routes before any traffic (reactive): %v", got)
		}
	} else {
		// One route per VM address in R's subnets: a, a3, b and its
		// pair address, bLocal, b3.
		ovstest.Eventually(t, 20*time.Second, "hv1's routes to all six addresses (proactive)", func() bool { return len(routes()) == 6 })
		for _, r := range routes() {
			if strings.Contains(r, "idle_timeout") {
				t.Errorf("a proactive route with an idle timeout: %s", r)
			}
		}
	}

	wire := "udp port 4789 or proto gre"
	toHV2 := tb.underlay.Capture(hv2.n, wire, 10*time.Second).Started()
	toHV3 := tb.underlay.Capture(hv3.n, wire, 10*time.Second).Started()
	atB := b.Capture("icmp", 10*time.Second).Started()
	start := time.Now()
	if out, err := a.Exec("ping", "-c", "1", "-W", "2", "-t", "50", ipOf(b)); err != nil {
		t.Fatalf("the first routed packet from cold was lost: %v\n%s", err, out)
	}
	t.Logf("first routed ping from cold answered in %s (process included)", time.Since(start).Round(time.Millisecond))
	if out, err := a.Exec("ping", "-c", "3", "-i", "0.2", "-W", "2", "-t", "50", ipOf(b)); err != nil {
		t.Fatalf("routed ping: %v\n%s", err, out)
	}
	// b's allowed-pair address is routed to b, as its ARP is answered.
	if _, err := b.Exec("ip", "addr", "add", "10.1.0.100/32", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	if out, err := a.Exec("ping", "-c", "2", "-i", "0.2", "-W", "2", "10.1.0.100"); err != nil {
		t.Errorf("routed ping to b's pair address: %v\n%s", err, out)
	}
	if out, err := a.Exec("ping", "-c", "2", "-i", "0.2", "-W", "2", ipOf(bLocal)); err != nil {
		t.Fatalf("routed ping within hv1: %v\n%s", err, out)
	}
	// The router answers pings to its gateways itself, in OVS.
	for _, gw := range []string{"10.0.0.1", "10.1.0.1"} {
		out, err := a.Exec("ping", "-c", "2", "-i", "0.2", "-W", "2", gw)
		if err != nil || !strings.Contains(out, "ttl=64") {
			t.Errorf("ping %s (a gateway of R) from a: %v\n%s", gw, err, out)
		}
	}
	out, _ := a.Exec("ping", "-c", "1", "-W", "2", "-t", "1", ipOf(b))
	if !strings.Contains(out, "From 10.0.0.1") || !strings.Contains(out, "Time to live exceeded") {
		t.Errorf("TTL 1 through the router: want time exceeded from 10.0.0.1, got\n%s", out)
	}

	// At b: TTL 50 - 1, from the router's MAC on B, to b's MAC.
	requests := atB.Lines("10.0.0.10 > 10.1.0.20: ICMP echo request")
	if len(requests) != 4 {
		t.Errorf("b saw %d echo requests, want 4:\n%s", len(requests), strings.Join(atB.Lines(), "\n"))
	}
	if len(requests) > 0 {
		t.Logf("at b: %s", requests[0])
	}
	for _, l := range requests {
		if f := strings.Fields(l); len(f) < 4 || f[1] != macB || strings.TrimSuffix(f[3], ",") != b.MAC || !strings.Contains(l, "ttl 49,") {
			t.Errorf("at b, want eth_src %s (R on B), eth_dst %s and ttl 49: %s", macB, b.MAC, l)
		}
	}
	// On the wire to hv2: straight from hv1, with hv1's DVR MAC, in B's
	// GRE key; the replies in A's VNI with hv2's DVR MAC.
	for _, c := range []struct {
		what, line, from, encap string
	}{
		{"request", "10.0.0.10 > 10.1.0.20: ICMP echo request", dvr["hv1"], "key=0xc8"},
		{"reply", "10.1.0.20 > 10.0.0.10: ICMP echo reply", dvr["hv2"], "vni 100"},
	} {
		seen := toHV2.Lines(c.line)
		if len(seen) > 0 {
			t.Logf("on the wire to hv2: %s", seen[0])
		}
		if len(seen) != 4 {
			t.Errorf("%d routed %ss on the wire to hv2, want 4:\n%s", len(seen), c.what, strings.Join(toHV2.Lines(), "\n"))
		}
		for _, l := range seen {
			if !strings.Contains(l, c.from+" > ") || !strings.Contains(l, c.encap) {
				t.Errorf("routed %s on the wire without source %s in %s: %s", c.what, c.from, c.encap, l)
			}
			if strings.Contains(l, macA) || strings.Contains(l, macB) {
				t.Errorf("a router MAC on the wire: %s", l)
			}
		}
	}
	if seen := toHV3.Lines("10.0.0.10"); len(seen) != 0 {
		t.Errorf("hv3 saw routed traffic between hv1 and hv2:\n%s", strings.Join(seen, "\n"))
	}
	if exceeded := toHV2.Lines("time exceeded"); len(exceeded) != 0 {
		t.Errorf("the ICMP time exceeded crossed the underlay: %v", exceeded)
	}

	// b's network (GRE) has an MTU of 1458, a's (VXLAN) 1450: a full-size
	// packet from b cannot fit A. The router answers it with fragmentation
	// needed and A's MTU; b learns the path MTU and fragments at the
	// source, so large packets then get through.
	out, _ = b.Exec("ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1430", ipOf(a))
	if !strings.Contains(out, "From 10.1.0.1") || !strings.Contains(out, "Frag needed") || !strings.Contains(out, "mtu = 1450") {
		t.Errorf("a 1458-byte packet from B to A: want fragmentation needed from 10.1.0.1 with mtu 1450, got\n%s", out)
	}
	if out, err := b.Exec("ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", "1430", ipOf(a)); err != nil {
		t.Errorf("a 1458-byte ping from B to A after the path MTU was learned: %v\n%s", err, out)
	}
	// The router cannot fragment either: a packet without DF, from a VM
	// that has learned nothing yet (bLocal, routed on hv1 itself), gets
	// the same answer.
	out, _ = bLocal.Exec("ping", "-c", "1", "-W", "2", "-M", "dont", "-s", "1430", ipOf(a))
	if !strings.Contains(out, "From 10.1.0.1") || !strings.Contains(out, "mtu = 1450") {
		t.Errorf("a 1458-byte packet without DF from B to A: want fragmentation needed from 10.1.0.1, got\n%s", out)
	}

	// Remove R from B: routing to B stops and nothing of it is left.
	tb.put("/v2.0/routers/"+rid+"/remove_router_interface", map[string]any{"subnet_id": subnetB})
	routedToB := []string{macB, "nw_dst=10.1.0.", "arp_tpa=10.1.0.1,"}
	ovstest.Eventually(t, 20*time.Second, "no flow for R on B on any bridge", func() bool {
		for _, h := range tb.hvs {
			if len(routerFlows(h, routedToB...)) != 0 {
				return false
			}
		}
		return true
	})
	if out, err := a.Exec("ping", "-c", "2", "-i", "0.2", "-W", "1", ipOf(b)); err == nil {
		t.Fatalf("a still reaches b with R gone from B:\n%s", out)
	}
	for _, h := range tb.hvs {
		if got := routerFlows(h, routedToB...); len(got) != 0 {
			t.Errorf("hv%d still routes to B: %v", h.n, got)
		}
	}
	var punts map[string]any
	if _, err := daemontest.Call(tb.client, "GET", hv1.api, "/debug/punts", nil, &punts); err != nil {
		t.Fatal(err)
	}
	if punts["icmp_time_exceeded_sent"].(float64) != 1 {
		t.Errorf("hv1 sent %v ICMP time exceeded, want 1", punts["icmp_time_exceeded_sent"])
	}
	if punts["icmp_frag_needed_sent"].(float64) != 1 {
		t.Errorf("hv1 sent %v ICMP fragmentation needed, want 1 (to bLocal)", punts["icmp_frag_needed_sent"])
	}
	var punts2 map[string]any
	if _, err := daemontest.Call(tb.client, "GET", hv2.api, "/debug/punts", nil, &punts2); err != nil {
		t.Fatal(err)
	}
	if punts2["icmp_frag_needed_sent"].(float64) != 1 {
		t.Errorf("hv2 sent %v ICMP fragmentation needed, want 1", punts2["icmp_frag_needed_sent"])
	}
	if mode == "reactive" && punts["unroutable"].(float64) < 1 {
		t.Errorf("hv1 counted %v unroutable punts after pinging b with R gone from B, want ≥ 1", punts["unroutable"])
	}
}

// TestFirstRoutedPacketBetweenStrangers: hv2 hosts only A and hv3 only B,
// and both are raft followers, so neither's network stack ever talks to
// the other; only R connects them. The tunnel probe, sent to chassis a
// router reaches too, resolves hv3 on hv2 before any VM traffic, and the
// first routed ping from cold is answered.
func TestFirstRoutedPacketBetweenStrangers(t *testing.T) {
	tb := newTestbed(t, 3)
	from, to := tb.hvs[1], tb.hvs[2]
	netA := tb.network("A", "vxlan", 100, "10.0.0.0/24")
	netB := tb.network("B", "gre", 200, "10.1.0.0/24")
	a, pa := tb.vm(from, netA, "10.0.0.10")
	b, pb := tb.vm(to, netB, "10.1.0.20")
	tb.waitActive(pa, pb)
	defaultRoutes(t, map[*ovstest.VM]string{a: "10.0.0.1", b: "10.1.0.1"})
	neighbour := tb.tunnelNeighbour(from, to)
	if neighbour() {
		t.Fatal("hv2 has a tunnel neighbour entry for hv3 before they are connected")
	}
	tb.router("R", netA, netB)
	ovstest.Eventually(t, 10*time.Second, "hv2's tunnel neighbour entry for hv3, from the probe", neighbour)
	ovstest.Eventually(t, 10*time.Second, "R's MAC on A in hv2's L2Lookup", func() bool {
		return len(portFlows(from, "goto_table:L3Lookup")) == 1
	})
	start := time.Now()
	if out, err := a.Exec("ping", "-c", "1", "-W", "1", ipOf(b)); err != nil {
		t.Fatalf("the first routed packet between hv2 and hv3 was lost: %v\n%s", err, out)
	}
	t.Logf("first routed ping between strangers answered in %s (process included)", time.Since(start).Round(time.Millisecond))
}

// routerFlows are portFlows but DHCP's: its requests to a gateway address
// and its server's ARP answer for it are the subnet's, not a router's.
func routerFlows(h *hypervisor, needles ...string) []string {
	return slices.DeleteFunc(portFlows(h, needles...), func(l string) bool {
		return strings.Contains(l, "table=DHCP") || strings.Contains(l, "02:77:79:")
	})
}
