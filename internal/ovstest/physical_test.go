package ovstest

import (
	"strings"
	"testing"
	"time"
)

// TestPhysicalAccessPorts: hosts on br-phys reach the hosts of their own
// VLAN only, and a host on VLAN 0 (untagged) never sees a tagged frame,
// while a trunk port sees the VLAN's frames tagged and the flat network's
// untagged.
func TestPhysicalAccessPorts(t *testing.T) {
	Require(t)
	p := NewPhysical(t)
	a := p.Host("va", 100, "192.0.2.1/24", "")
	b := p.Host("vb", 100, "192.0.2.2/24", "")
	c := p.Host("vc", 200, "192.0.2.3/24", "") // same subnet, other VLAN
	flat := p.Host("fl", 0, "192.0.2.4/24", "")
	p.Host("fl", 0, "192.0.2.5/24", "")
	// A trunk port: a host with no tag (OVS: vlan_mode trunk, all VLANs).
	trunk := p.Host("tr", 0, "", "")
	p.OVS.Vsctl("clear", "port", trunk.Tap, "tag")

	onFlat := flat.Sniff(t, "eth0", "")
	onC := c.Sniff(t, "eth0", "arp or icmp")
	onTrunk := trunk.Sniff(t, "eth0", "")

	if err := a.Ping("192.0.2.2"); err != nil {
		t.Fatalf("VLAN 100 a -> b: %v", err)
	}
	if err := flat.Ping("192.0.2.5"); err != nil {
		t.Fatalf("untagged flat -> flat2: %v", err)
	}
	if err := a.Ping("192.0.2.3"); err == nil {
		t.Fatal("VLAN 100 reached VLAN 200")
	}
	if err := a.Ping("192.0.2.4"); err == nil {
		t.Fatal("VLAN 100 reached the untagged host")
	}
	// The trunk port gets what is flooded: the ARP requests.
	onTrunk.Wait(`vlan 100, .*Request who-has 192\.0\.2\.2 tell 192\.0\.2\.1`, 5*time.Second)
	untagged := onTrunk.Wait(`Request who-has 192\.0\.2\.5 tell 192\.0\.2\.4`, 5*time.Second)
	if strings.Contains(untagged, "vlan") || strings.Contains(untagged, "802.1Q") {
		t.Errorf("the trunk got the flat network's frame tagged: %s", untagged)
	}
	onFlat.Stop()
	for _, l := range onFlat.Match(`802\.1Q|\b192\.0\.2\.[123]\b`) {
		t.Errorf("the untagged host saw VLAN 100 or 200: %s", l)
	}
	if len(onFlat.Lines("192.0.2.4 > 192.0.2.5")) == 0 {
		t.Error("the untagged host's own capture saw none of its own pings")
	}
	for _, l := range onC.Stop() {
		if strings.Contains(l, "ICMP") {
			t.Errorf("VLAN 200 saw VLAN 100's pings: %s", l)
		}
	}
	// The ARP entry names b's MAC.
	if got := a.Neighbour("192.0.2.2"); got != b.MAC {
		t.Errorf("a's neighbour 192.0.2.2 = %q, want %q", got, b.MAC)
	}
}

// TestPhysicalRouterTCP: through the outside router, a host on the
// external network reaches the internet host over TCP, and ConnectTCP
// tells connected, refused, unreachable and timed out apart.
func TestPhysicalRouterTCP(t *testing.T) {
	Require(t)
	p := NewPhysical(t)
	r := p.Router(RouterOptions{VLAN: 0, Address: "203.0.113.1/24", Upstream: "198.51.100.1/24", Internet: "198.51.100.10/24"})
	h := p.Host("ext", 0, "203.0.113.50/24", "203.0.113.1")
	srv := r.Internet.ServeTCP(t, "198.51.100.10:8080")
	if err := h.Ping("198.51.100.10"); err != nil {
		t.Fatalf("ping through the router: %v", err)
	}
	got := h.ConnectTCP(srv.Addr, 3*time.Second)
	if got.Outcome != TCPConnected || got.Answer != "203.0.113.50" {
		t.Fatalf("connect to the internet host: %v, want connected from 203.0.113.50", got)
	}
	if peers := srv.Peers(); len(peers) != 1 || peers[0] != "203.0.113.50" {
		t.Errorf("server saw %v", peers)
	}
	if got := h.ConnectTCP("198.51.100.10:8081", 3*time.Second); got.Outcome != TCPRefused {
		t.Errorf("closed port: %v, want refused", got)
	}
	// No route at the router: it answers ICMP net unreachable.
	if got := h.ConnectTCP("192.0.2.99:80", 3*time.Second); got.Outcome != TCPUnreachable {
		t.Errorf("unroutable: %v, want unreachable", got)
	}
	// A blackhole at the router: silence.
	if _, err := r.Exec("ip", "route", "add", "blackhole", "198.51.100.200/32"); err != nil {
		t.Fatal(err)
	}
	if got := h.ConnectTCP("198.51.100.200:80", time.Second); got.Outcome != TCPTimedOut {
		t.Errorf("blackholed: %v, want timed out", got)
	}
	if got := r.Neighbour("203.0.113.50"); got != h.MAC {
		t.Errorf("router's neighbour 203.0.113.50 = %q, want %q", got, h.MAC)
	}
}
