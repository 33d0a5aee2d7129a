package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/daemontest"
	"github.com/wyvern-sdn/wyvern/internal/ovstest"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// TestVMsPingAcrossVXLANAndGRE: VMs on hv1 and hv2 reach each other over a
// VXLAN network and over a GRE network, ICMP and TCP; every bridge has
// exactly one vxlan and one gre port, however many chassis there are.
func TestVMsPingAcrossVXLANAndGRE(t *testing.T) {
	tb := newTestbed(t, 3)
	hv1, hv2 := tb.hvs[0], tb.hvs[1]
	a := tb.network("A", "vxlan", 100, "10.0.0.0/24")
	b := tb.network("B", "gre", 200, "10.1.0.0/24")
	a1, pa1 := tb.vm(hv1, a, "")
	a2, pa2 := tb.vm(hv2, a, "")
	b1, pb1 := tb.vm(hv1, b, "")
	b2, pb2 := tb.vm(hv2, b, "")
	tb.waitActive(pa1, pa2, pb1, pb2)
	if err := ping(a1, ipOf(a2)); err != nil {
		t.Fatalf("VXLAN ping hv1 -> hv2: %v", err)
	}
	if err := ping(b2, ipOf(b1)); err != nil {
		t.Fatalf("GRE ping hv2 -> hv1: %v", err)
	}
	for _, h := range tb.hvs {
		show := h.ovs.Vsctl("show")
		if strings.Count(show, "type: vxlan") != 1 || strings.Count(show, "type: gre") != 1 {
			t.Errorf("hv%d: want exactly one vxlan and one gre port:\n%s", h.n, show)
		}
	}
	// TCP across the tunnel: a few hundred kilobytes, checksummed.
	srv := a2.Command("python3", "-c", `import socket,hashlib
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0",7000)); s.listen(1)
c,_=s.accept(); h=hashlib.sha256(); n=0
while True:
    d=c.recv(65536)
    if not d: break
    h.update(d); n+=len(d)
c.sendall((h.hexdigest()+" %d" % n).encode()); c.close()`)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	out, err := a1.Exec("python3", "-c", fmt.Sprintf(`import socket,hashlib,time
data=bytes(range(256))*1200
for i in range(50):
    try:
        c=socket.create_connection((%q,7000),timeout=5); break
    except OSError: time.sleep(0.1)
c.sendall(data); c.shutdown(socket.SHUT_WR); r=c.recv(200).decode()
print(r == hashlib.sha256(data).hexdigest()+" %%d" %% len(data), r)`, ipOf(a2)))
	if err != nil || !strings.HasPrefix(out, "True") {
		t.Fatalf("TCP over VXLAN: %v %s", err, out)
	}
}

// TestL2PopulationAndIsolation: broadcast in network A reaches hv2, which
// hosts A, and never hv3, which does not (a capture on hv3's underlay link
// sees no packet with A's VNI). A (VXLAN) and B (GRE) use the same CIDR
// and the same addresses and stay isolated.
func TestL2PopulationAndIsolation(t *testing.T) {
	tb := newTestbed(t, 3)
	hv1, hv2, hv3 := tb.hvs[0], tb.hvs[1], tb.hvs[2]
	a := tb.network("A", "vxlan", 100, "10.0.0.0/24")
	b := tb.network("B", "gre", 200, "10.0.0.0/24")
	c := tb.network("C", "vxlan", 300, "10.3.0.0/24")
	a1, pa1 := tb.vm(hv1, a, "10.0.0.10")
	a2, pa2 := tb.vm(hv2, a, "10.0.0.11")
	b1, pb1 := tb.vm(hv1, b, "10.0.0.10")
	_, pb2 := tb.vm(hv2, b, "10.0.0.20")
	_, pc3 := tb.vm(hv3, c, "")
	tb.waitActive(pa1, pa2, pb1, pb2, pc3)

	toHV2 := tb.underlay.Capture(2, "udp port 4789", 4*time.Second).Started()
	toHV3 := tb.underlay.Capture(3, "udp port 4789", 4*time.Second).Started()
	// ARP for an address nobody has: broadcast, flooded by l2pop.
	_, _ = a1.Exec("arping", "-c", "4", "-w", "3", "-I", "eth0", "10.0.0.99") // nobody answers: exit 1
	seen2 := toHV2.Lines("vni 100", "who-has 10.0.0.99")
	seen3 := toHV3.Lines("vni 100")
	if len(seen2) < 4 {
		t.Errorf("hv2 hosts A but received %d of A's 4 broadcasts", len(seen2))
	}
	if len(seen3) != 0 {
		t.Errorf("hv3 does not host A but received %d of its packets: %v", len(seen3), seen3)
	}
	t.Logf("A's broadcasts: %d to hv2, %d to hv3", len(seen2), len(seen3))

	// Isolation: same addresses, different networks.
	if err := ping(a1, "10.0.0.11"); err != nil {
		t.Fatalf("A: 10.0.0.10 -> 10.0.0.11: %v", err)
	}
	if err := ping(b1, "10.0.0.20"); err != nil {
		t.Fatalf("B: 10.0.0.10 -> 10.0.0.20: %v", err)
	}
	if err := ping(a1, "10.0.0.20"); err == nil {
		t.Fatal("a VM of A reached 10.0.0.20, which only B has")
	}
	if err := ping(b1, "10.0.0.11"); err == nil {
		t.Fatal("a VM of B reached 10.0.0.11, which only A has")
	}
	_ = a2
}

// portFlows returns the flows of a bridge that mention a MAC or a port key.
func portFlows(h *hypervisor, needles ...string) []string {
	var out []string
	for _, l := range h.ovs.DumpFlows("br-int") {
		for _, n := range needles {
			if strings.Contains(l, n) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// TestPortMovesAndDeletes: a VM's interface moves from hv2 to hv3 with the
// same iface-id; traffic follows and no flow for the old location remains
// anywhere. Then the port is deleted and no flow for it remains.
func TestPortMovesAndDeletes(t *testing.T) {
	tb := newTestbed(t, 3)
	hv1, hv2, hv3 := tb.hvs[0], tb.hvs[1], tb.hvs[2]
	a := tb.network("A", "vxlan", 100, "10.0.0.0/24")
	a1, pa1 := tb.vm(hv1, a, "")
	a2, pa2 := tb.vm(hv2, a, "")
	tb.waitActive(pa1, pa2)
	if err := ping(a1, ipOf(a2)); err != nil {
		t.Fatalf("before the move: %v", err)
	}
	// Migrate: the interface leaves hv2 and appears on hv3.
	hv2.ovs.Vsctl("del-port", "br-int", a2.Tap)
	moved := hv3.ovs.AddVM("br-int", pa2, a2.MAC, a2.IP)
	_, _ = moved.Exec("ip", "link", "set", "eth0", "mtu", "1450")
	ovstest.Eventually(t, 30*time.Second, "port bound on hv3 and ACTIVE", func() bool {
		var out struct {
			Port struct {
				Host   string `json:"binding:host_id"`
				Status string `json:"status"`
			} `json:"port"`
		}
		_, err := tb.call("GET", "/v2.0/ports/"+pa2, nil, &out)
		return err == nil && out.Port.Host == "hv3" && out.Port.Status == "ACTIVE"
	})
	if err := ping(a1, ipOf(moved)); err != nil {
		t.Fatalf("after the move: %v", err)
	}
	// hv2 hosts nothing any more: the base pipeline only, but for reactive
	// flows towards a1 that expire with their idle timeout; none for a2.
	ovstest.Eventually(t, 10*time.Second, "hv2 back to the base pipeline", func() bool {
		n := 0
		for _, l := range hv2.ovs.DumpFlows("br-int") {
			if !strings.Contains(l, "idle_timeout") {
				n++
			}
		}
		return n == len(pipeline.MissFlows(pipeline.Reactive, 0)) && len(portFlows(hv2, a2.MAC)) == 0
	})
	for _, l := range hv1.ovs.DumpFlows("br-int") {
		if strings.Contains(l, tb.underlay.IP(2)) {
			t.Errorf("hv1 still steers to hv2: %s", l)
		}
	}
	// Delete the port: no bridge keeps a flow for its MAC.
	hv3.ovs.Vsctl("del-port", "br-int", moved.Tap)
	if code, err := tb.call("DELETE", "/v2.0/ports/"+pa2, nil, nil); err != nil || code != 204 {
		t.Fatalf("delete: %d %v", code, err)
	}
	ovstest.Eventually(t, 10*time.Second, "no flow for the deleted port", func() bool {
		for _, h := range tb.hvs {
			if len(portFlows(h, a2.MAC)) > 0 {
				return false
			}
		}
		return true
	})
}

// TestVswitchdRestart: ovs-vswitchd restarts on hv1; the bridge comes back
// from OVSDB, reconnects, is replayed, and traffic resumes, with nobody
// touching the controller. Then ovsdb-server restarts; the agent
// reconnects, and a VM plugged afterwards is bound and reachable.
func TestVswitchdRestart(t *testing.T) {
	tb := newTestbed(t, 2)
	hv1, hv2 := tb.hvs[0], tb.hvs[1]
	a := tb.network("A", "vxlan", 100, "10.0.0.0/24")
	a1, pa1 := tb.vm(hv1, a, "")
	a2, pa2 := tb.vm(hv2, a, "")
	tb.waitActive(pa1, pa2)
	if err := ping(a1, ipOf(a2)); err != nil {
		t.Fatalf("before the restart: %v", err)
	}
	permanent := func(lines []string) int { // reactive flows come back with traffic
		n := 0
		for _, l := range lines {
			if !strings.Contains(l, "idle_timeout") {
				n++
			}
		}
		return n
	}
	before := permanent(hv1.ovs.DumpFlows("br-int"))
	hv1.ovs.RestartVswitchd()
	tb.underlay.RestoreAddress(hv1.ovs, 1)
	ovstest.Eventually(t, 30*time.Second, "hv1's flows back", func() bool {
		lines, err := hv1.ovs.DumpFlowsErr("br-int")
		return err == nil && permanent(lines) == before
	})
	ovstest.Eventually(t, 30*time.Second, "ping after the restart", func() bool { return ping(a1, ipOf(a2)) == nil })

	hv2.ovs.RestartOVSDB()
	a3, pa3 := tb.vm(hv2, a, "")
	tb.waitActive(pa3)
	if err := ping(a1, ipOf(a3)); err != nil {
		t.Fatalf("a VM plugged after ovsdb-server restarted: %v", err)
	}
}

// TestARPAnsweredLocally: a VM's ARP request for a known address is
// answered by OVS on its own chassis with the right MAC; a capture on the
// underlay sees no ARP inside the tunnel traffic. An unknown address is
// still flooded to the chassis hosting the network.
func TestARPAnsweredLocally(t *testing.T) {
	tb := newTestbed(t, 2)
	hv1, hv2 := tb.hvs[0], tb.hvs[1]
	a := tb.network("A", "vxlan", 100, "10.0.0.0/24")
	a1, pa1 := tb.vm(hv1, a, "")
	a2, pa2 := tb.vm(hv2, a, "")
	tb.waitActive(pa1, pa2)
	onWire := tb.underlay.Capture(2, "udp port 4789", 11*time.Second).Started()
	out, err := a1.Exec("arping", "-c", "3", "-w", "3", "-I", "eth0", ipOf(a2))
	if err != nil || !strings.Contains(strings.ToLower(out), strings.ToLower(a2.MAC)) {
		t.Fatalf("arping %s: %v\n%s", ipOf(a2), err, out)
	}
	// The first request was punted and answered with a flow; later ones
	// are answered by that flow without the controller.
	punts := func() float64 {
		var out map[string]any
		if _, err := daemontest.Call(tb.client, "GET", hv1.api, "/debug/punts", nil, &out); err != nil {
			t.Fatal(err)
		}
		return out["answered"].(float64)
	}
	before := punts()
	if out, err := a1.Exec("arping", "-c", "3", "-w", "3", "-I", "eth0", ipOf(a2)); err != nil {
		t.Fatalf("second arping: %v\n%s", err, out)
	}
	if after := punts(); after != before {
		t.Errorf("ARP for %s still punts after the first answer: %v -> %v answered punts", ipOf(a2), before, after)
	}
	if got := portFlows(hv1, "arp_tpa="+ipOf(a2)); len(got) != 1 || !strings.Contains(got[0], "idle_timeout=") {
		t.Errorf("hv1's reactive ARP reply flow: %v", got)
	}
	_, _ = a1.Exec("arping", "-c", "2", "-w", "2", "-I", "eth0", "10.0.0.99") // unknown: flooded
	if arp := onWire.Lines("who-has " + ipOf(a2)); len(arp) != 0 {
		t.Errorf("ARP for a known address crossed the underlay: %v", arp)
	}
	if flooded := onWire.Lines("who-has 10.0.0.99"); len(flooded) < 1 {
		t.Errorf("ARP for an unknown address was not flooded to hv2")
	}
	t.Logf("arping answered locally:\n%s", out)
}

// TestPortSecurity: a VM sending from a spoofed MAC or IP reaches nobody,
// and the drops are counted; with port security disabled it does reach.
func TestPortSecurity(t *testing.T) {
	tb := newTestbed(t, 2)
	hv1, hv2 := tb.hvs[0], tb.hvs[1]
	a := tb.network("A", "vxlan", 100, "10.0.0.0/24")
	a1, pa1 := tb.vm(hv1, a, "10.0.0.10")
	a2, pa2 := tb.vm(hv2, a, "10.0.0.11")
	tb.waitActive(pa1, pa2)
	if err := ping(a1, ipOf(a2)); err != nil {
		t.Fatalf("honest ping: %v", err)
	}
	drops := 0
	for _, l := range hv1.ovs.DumpFlows("br-int") {
		if strings.Contains(l, "table=PortSecurity") && strings.Contains(l, "priority=1,") && strings.HasSuffix(l, "actions=drop") {
			drops++
		}
	}
	if drops != 1 {
		t.Fatalf("hv1 should hold one counting drop flow for its one secured port, has %d", drops)
	}
	countDropped := func() int {
		out, err := hv1.ovs.OfctlErr("dump-flows", "br-int", fmt.Sprintf("table=%d", pipeline.Table(pipeline.PortSecurity)))
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, l := range strings.Split(out, "\n") {
			if !strings.Contains(l, "priority=1,") {
				continue
			}
			if i := strings.Index(l, "n_packets="); i >= 0 {
				var n int
				fmt.Sscanf(l[i+len("n_packets="):], "%d", &n)
				total += n
			}
		}
		return total
	}
	before := countDropped()
	// Spoofed source IP.
	if _, err := a1.Exec("ip", "addr", "add", "10.0.0.77/24", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	if _, err := a1.Exec("ping", "-c", "2", "-W", "1", "-I", "10.0.0.77", ipOf(a2)); err == nil {
		t.Fatal("a VM reached its neighbour from an address it does not own")
	}
	// Spoofed source MAC.
	if _, err := a1.Exec("ip", "link", "set", "eth0", "address", "fa:16:3e:66:66:66"); err != nil {
		t.Fatal(err)
	}
	if err := ping(a1, ipOf(a2)); err == nil {
		t.Fatal("a VM reached its neighbour from a MAC that is not its port's")
	}
	if _, err := a1.Exec("ip", "link", "set", "eth0", "address", a1.MAC); err != nil {
		t.Fatal(err)
	}
	if dropped := countDropped() - before; dropped < 2 {
		t.Errorf("spoofed packets were not counted: %d", dropped)
	} else {
		t.Logf("spoofed packets dropped and counted: %d", dropped)
	}
	// Port security off: the spoofed address gets through.
	var out map[string]any
	// a2's default group admits its members' addresses only: a spoofed
	// one is let in by taking a2 out of filtering too.
	if code, err := tb.call("PUT", "/v2.0/ports/"+pa2, map[string]any{"port": map[string]any{"security_groups": []string{}}}, nil); err != nil || code != 200 {
		t.Fatalf("a2 out of its groups: %d %v", code, err)
	}
	if code, err := tb.call("PUT", "/v2.0/ports/"+pa1, map[string]any{"port": map[string]any{"port_security_enabled": false, "security_groups": []string{}}}, &out); err != nil || code != 200 {
		t.Fatalf("disable port security: %d %v %v", code, err, out)
	}
	ovstest.Eventually(t, 20*time.Second, "spoofed source reaches with port security off", func() bool {
		_, err := a1.Exec("ping", "-c", "1", "-W", "1", "-I", "10.0.0.77", ipOf(a2))
		return err == nil
	})
}

// TestReactiveFirstPacket: from cold (no per-destination flow), a single
// ping across chassis succeeds -- the punted first packet is re-injected,
// not lost; afterwards the bridges hold the reactive flows with their idle
// timeout, and they disappear once traffic stops.
func TestReactiveFirstPacket(t *testing.T) {
	for _, typ := range []string{"vxlan", "gre"} {
		t.Run(typ, func(t *testing.T) { testReactiveFirstPacket(t, typ) })
	}
}

// tunnelNeighbour reports whether from's OVS has a tunnel neighbour entry
// for to: to's underlay address at the MAC of to's br-phy, which
// terminates tunnels.
func (tb *testbed) tunnelNeighbour(from, to *hypervisor) func() bool {
	tb.t.Helper()
	phyMAC, err := to.ovs.NS.Exec("cat", "/sys/class/net/br-phy/address")
	if err != nil {
		tb.t.Fatal(err)
	}
	return func() bool {
		out, _ := from.ovs.Appctl("tnl/neigh/show")
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == tb.underlay.IP(to.n) && f[1] == strings.TrimSpace(phyMAC) {
				return true
			}
		}
		return false
	}
}

func testReactiveFirstPacket(t *testing.T, typ string) {
	// hv2 and hv3 are raft followers of hv1: their own network stacks never
	// talk to each other, so nothing but the node's tunnel probe resolves
	// one's underlay address on the other.
	tb := newTestbed(t, 3, "--idle-timeout", "3")
	from, to := tb.hvs[1], tb.hvs[2] // hv2, hv3
	a := tb.network("A", typ, 100, "10.0.0.0/24")
	a1, pa1 := tb.vm(from, a, "")
	a2, pa2 := tb.vm(to, a, "")
	tb.waitActive(pa1, pa2)
	if got := portFlows(from, "dl_dst="+a2.MAC); len(got) != 0 {
		t.Fatalf("hv2 knows a2 before any traffic: %v", got)
	}
	// Userspace tunneling drops a packet whose remote it has no neighbour
	// entry for, while it ARPs. The probe resolves hv3 on hv2 -- to the MAC
	// of hv3's br-phy, which terminates tunnels -- before any VM traffic.
	ovstest.Eventually(t, 10*time.Second, "hv2's tunnel neighbour entry for hv3", tb.tunnelNeighbour(from, to))
	if out, _ := from.ovs.NS.Exec("ip", "neigh", "show", tb.underlay.IP(to.n)); strings.TrimSpace(out) != "" {
		t.Logf("hv2's kernel talked to hv3 (a leader change?), so snooping may have helped: %s", out)
	}
	start := time.Now()
	if _, err := a1.Exec("ping", "-c", "1", "-W", "1", ipOf(a2)); err != nil {
		t.Fatalf("the first packet was lost: %v", err)
	}
	t.Logf("first ping from cold answered in %s (process included)", time.Since(start).Round(time.Millisecond))
	reactive := portFlows(from, "dl_dst="+a2.MAC)
	if len(reactive) != 1 || !strings.Contains(reactive[0], "idle_timeout=3") {
		t.Fatalf("hv2's reactive flow for a2: %v", reactive)
	}
	if got := portFlows(to, "dl_dst="+a1.MAC); len(got) != 1 {
		t.Fatalf("hv3's reactive flow for a1 (the reply): %v", got)
	}
	ovstest.Eventually(t, 15*time.Second, "reactive flows expire without traffic", func() bool {
		return len(portFlows(from, "dl_dst="+a2.MAC)) == 0 && len(portFlows(to, "dl_dst="+a1.MAC)) == 0
	})
}

// TestVIPFollowsGratuitousARP: two ports share a VIP in their allowed
// address pairs, keepalived style. The holder announces it with a
// gratuitous ARP and OVS answers ARP for the VIP with its MAC; the holder
// goes away, the other takes the VIP and announces it, and a third VM
// reaches the VIP at the new holder within a second.
func TestVIPFollowsGratuitousARP(t *testing.T) {
	tb := newTestbed(t, 2)
	hv1, hv2 := tb.hvs[0], tb.hvs[1]
	a := tb.network("A", "vxlan", 100, "10.0.0.0/24")
	const vip = "10.0.0.100"
	pair := []map[string]string{{"ip_address": vip}}
	c, pc := tb.vm(hv1, a, "10.0.0.10")
	va, pa := tb.vmPort(hv2, a, map[string]any{"network_id": a, "fixed_ips": []map[string]string{{"ip_address": "10.0.0.11"}}, "allowed_address_pairs": pair})
	vb, pb := tb.vmPort(hv1, a, map[string]any{"network_id": a, "fixed_ips": []map[string]string{{"ip_address": "10.0.0.12"}}, "allowed_address_pairs": pair})
	tb.waitActive(pc, pa, pb)
	answeredBy := func() string { // who OVS says holds the VIP
		_, _ = c.Exec("ip", "neigh", "flush", "dev", "eth0")
		out, _ := c.Exec("arping", "-c", "1", "-w", "1", "-I", "eth0", vip)
		return strings.ToLower(out)
	}
	// a takes the VIP.
	if _, err := va.Exec("ip", "addr", "add", vip+"/24", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	// Debian's arping announces its interface's first address unless told.
	_, _ = va.Exec("arping", "-U", "-S", vip, "-c", "2", "-w", "2", "-I", "eth0", vip)
	ovstest.Eventually(t, 10*time.Second, "OVS answers for the VIP with a's MAC", func() bool {
		return strings.Contains(answeredBy(), strings.ToLower(va.MAC))
	})
	if err := ping(c, vip); err != nil {
		t.Fatalf("VIP at a: %v", err)
	}
	// a goes away; b takes over and announces.
	if _, err := va.Exec("ip", "link", "set", "eth0", "down"); err != nil {
		t.Fatal(err)
	}
	if _, err := vb.Exec("ip", "addr", "add", vip+"/24", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	// The announcement leaves at once; arping then waits a second for an
	// answer that never comes, so time it from the start, in the background.
	announce := vb.Command("arping", "-U", "-S", vip, "-c", "1", "-I", "eth0", vip)
	start := time.Now()
	if err := announce.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = announce.Wait() }()
	for {
		if _, err := c.Exec("ping", "-c", "1", "-W", "0.2", vip); err == nil {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("the VIP is unreachable at b five seconds after its announcement")
		}
	}
	took := time.Since(start)
	t.Logf("VIP reached at b %s after b's gratuitous ARP", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("failover took %s, want within 1 s", took)
	}
	if by := answeredBy(); !strings.Contains(by, strings.ToLower(vb.MAC)) {
		t.Errorf("after failover ARP for the VIP is answered with: %s (want b's %s)", by, vb.MAC)
	}
	// Both announcements were learned (hv2 saw a's, hv1 saw b's).
	learned := 0.0
	for _, h := range tb.hvs {
		var out map[string]any
		if _, err := daemontest.Call(tb.client, "GET", h.api, "/debug/punts", nil, &out); err != nil {
			t.Fatal(err)
		}
		learned += out["vips_learned"].(float64)
	}
	if learned < 2 {
		t.Errorf("VIP holders learned from gratuitous ARP: %v, want a's and b's", learned)
	}
}
