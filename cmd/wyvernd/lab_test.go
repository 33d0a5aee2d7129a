package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
)

// The external lab: the physical world around a testbed, for north-south
// tests. Every hypervisor has an operator's bridge br-ex holding its
// uplink to a physical switch (br-phys, an OVS of its own) and runs
// wyvernd with --bridge-mappings physnet1:br-ex; the gateway hypervisors
// also with --gateway. On the physical network's external segment (flat,
// or a VLAN) sits the outside router, 203.0.113.1/24, and behind it "the
// internet", one host at 198.51.100.10/24. The lab makes no network
// through the API: tests do, and nothing in the physical world depends on
// Wyvern's flows.
//
//	hv1 br-int ═patch═ br-ex ─uplink─┐
//	hv2 br-int ═patch═ br-ex ─uplink─┤ br-phys ── outside router ── internet
//	                                 └ hosts (access ports, any VLAN)
const (
	labPhysnet    = "physnet1"        // the physical network every hypervisor maps
	labBridge     = "br-ex"           // the bridge it is mapped to
	labExternal   = "203.0.113.0/24"  // the external network's subnet
	labRouterIP   = "203.0.113.1"     // the outside router on it: the next hop out
	labUpstreamIP = "198.51.100.1"    // the outside router towards the internet
	labInternetIP = "198.51.100.10"   // the internet host
	labInternet   = "198.51.100.0/24" // its subnet
)

// externalLab is a testbed in its physical world.
type externalLab struct {
	*testbed
	phys     *ovstest.Physical
	uplinks  []*ovstest.Uplink // uplinks[i] is hvs[i]'s
	router   *ovstest.Router   // the outside router
	internet *ovstest.VM       // the internet host behind it
	vlan     int               // the external network's VLAN on the wire; 0: flat
}

// externalLabOptions change how a lab is set up.
type externalLabOptions struct {
	// gateways are the numbers of the hypervisors started with --gateway.
	gateways []int
	// externalVLAN is the VLAN the outside router sits on (0: untagged,
	// a flat external network).
	externalVLAN int
	// unmapped are the numbers of the hypervisors given an uplink but no
	// --bridge-mappings: chassis that cannot carry the physical network.
	unmapped []int
	// testbed's prepare runs in each hypervisor after the lab's own.
	testbed testbedOptions
}

// newExternalLab starts n hypervisors in the physical world, the ones
// numbered in gateways (1-based, as hypervisor.n) with --gateway; the
// external network is flat. extraArgs go to every wyvernd.
func newExternalLab(t testing.TB, n int, gateways []int, extraArgs ...string) *externalLab {
	return newExternalLabWith(t, n, externalLabOptions{gateways: gateways}, extraArgs...)
}

// newExternalLabWith is newExternalLab with options.
func newExternalLabWith(t testing.TB, n int, opts externalLabOptions, extraArgs ...string) *externalLab {
	t.Helper()
	ovstest.Require(t)
	lab := &externalLab{phys: ovstest.NewPhysical(t), vlan: opts.externalVLAN}
	lab.router = lab.phys.Router(labRouterOptions(opts.externalVLAN))
	lab.internet = lab.router.Internet
	tbOpts := opts.testbed
	then := tbOpts.prepare
	tbOpts.prepare = func(h *hypervisor) {
		lab.uplinks = append(lab.uplinks, lab.phys.Uplink(h.ovs, labBridge))
		if !slices.Contains(opts.unmapped, h.n) {
			h.m.args = append(h.m.args, "--bridge-mappings", labPhysnet+":"+labBridge)
		}
		if slices.Contains(opts.gateways, h.n) {
			h.m.args = append(h.m.args, "--gateway")
		}
		if then != nil {
			then(h)
		}
	}
	lab.testbed = newTestbedWith(t, n, tbOpts, extraArgs...)
	return lab
}

// labRouterOptions place the outside router and the internet host on
// the external network's VLAN.
func labRouterOptions(vlan int) ovstest.RouterOptions {
	return ovstest.RouterOptions{Name: "outr", VLAN: vlan, Address: labRouterIP + "/24",
		Upstream: labUpstreamIP + "/24", Internet: labInternetIP + "/24"}
}

// uplink is hypervisor h's uplink (its end on br-phys is where to
// capture what h puts on the wire).
func (lab *externalLab) uplink(h *hypervisor) *ovstest.Uplink { return lab.uplinks[h.n-1] }

// admitFromAnywhere adds to the default security group (of the ports'
// project, none under --auth none) a rule admitting anything from
// anywhere: what the outside world needs to reach VMs through floating
// IPs and provider networks, as a Neutron operator would allow it.
func (lab *externalLab) admitFromAnywhere() {
	lab.t.Helper()
	var groups struct {
		Groups []struct {
			ID string `json:"id"`
		} `json:"security_groups"`
	}
	if _, err := lab.call("GET", "/v2.0/security-groups?name=default", nil, &groups); err != nil || len(groups.Groups) != 1 {
		lab.t.Fatalf("the default security group: %v %+v", err, groups)
	}
	lab.create("/v2.0/security-group-rules", map[string]any{"security_group_rule": map[string]any{
		"security_group_id": groups.Groups[0].ID, "direction": "ingress", "remote_ip_prefix": "0.0.0.0/0"}})
}

// externalHost puts a host on the external network (on its VLAN) at ip,
// its default route via the outside router: a machine of the outside
// world next to the cloud's routers and floating IPs.
func (lab *externalLab) externalHost(ip string) *ovstest.VM {
	lab.t.Helper()
	return lab.phys.Host("xh", lab.vlan, ip+"/24", labRouterIP)
}

// TestExternalLabPlumbing proves the physical world on its own, without
// wyvernd: hypervisors' br-ex bridges (standalone, NORMAL) joined to
// br-phys by trunk uplinks carry a VLAN tagged and the flat network
// untagged, keep them apart, and the outside router leads to the
// internet host.
func TestExternalLabPlumbing(t *testing.T) {
	ovstest.Require(t)
	phys := ovstest.NewPhysical(t)
	hv1, hv2 := ovstest.Start(t), ovstest.Start(t)
	up1, up2 := phys.Uplink(hv1, labBridge), phys.Uplink(hv2, labBridge)
	router := phys.Router(labRouterOptions(0))

	// (a) VLAN 100: a physical host, and a port of hv1's br-ex.
	host100 := phys.Host("h100", 100, "192.0.2.100/24", "")
	vm100 := hv1.AddAccessHost(labBridge, 100, "192.0.2.11/24", "")
	// (b) the flat network: a physical host, and a port of hv2's br-ex.
	flat := phys.Host("flat", 0, "203.0.113.50/24", labRouterIP)
	vmFlat := hv2.AddAccessHost(labBridge, 0, "203.0.113.12/24", labRouterIP)

	sent1, got1 := up1.CaptureSent(""), up1.CaptureReceived("")
	wire2 := up2.Capture("")
	onFlat := vmFlat.Sniff(t, "eth0", "")
	on100 := vm100.Sniff(t, "eth0", "")

	// (a)
	if err := vm100.Ping("192.0.2.100"); err != nil {
		t.Fatalf("VLAN 100, hv1's br-ex -> physical host: %v", err)
	}
	if err := host100.Ping("192.0.2.11"); err != nil {
		t.Fatalf("VLAN 100, physical host -> hv1's br-ex: %v", err)
	}
	// A full 1500-byte packet fits tagged (veths take MTU + a VLAN tag).
	if out, err := vm100.Exec("ping", "-c", "1", "-W", "2", "-s", "1472", "-M", "do", "192.0.2.100"); err != nil {
		t.Fatalf("VLAN 100, a 1500-byte packet: %v\n%s", err, out)
	}
	sent1.Wait(`length 1518: vlan 100, .*192\.0\.2\.11 > 192\.0\.2\.100: ICMP echo request`, 5*time.Second)
	sent1.Wait(`ethertype 802\.1Q \(0x8100\), length \d+: vlan 100, p 0, ethertype IPv4 .*192\.0\.2\.11 > 192\.0\.2\.100: ICMP echo request`, 5*time.Second)
	got1.Wait(`vlan 100, p 0, ethertype IPv4 .*192\.0\.2\.100 > 192\.0\.2\.11: ICMP echo request`, 5*time.Second)
	for _, l := range append(sent1.Match(`192\.0\.2\.`), got1.Match(`192\.0\.2\.`)...) {
		if !strings.Contains(l, "vlan 100,") {
			t.Errorf("hv1's uplink carried VLAN 100's packet untagged: %s", l)
		}
	}
	// The direction of the captures is right: hv1 sent no reply it got.
	if l := sent1.Match(`192\.0\.2\.100 > 192\.0\.2\.11`); len(l) > 0 {
		t.Errorf("the capture of what hv1 sends shows what it received: %s", l[0])
	}

	// (b)
	if err := vmFlat.Ping(ipOf(flat)); err != nil {
		t.Fatalf("flat, hv2's br-ex -> physical host: %v", err)
	}
	if err := flat.Ping("203.0.113.12"); err != nil {
		t.Fatalf("flat, physical host -> hv2's br-ex: %v", err)
	}
	wire2.Wait(`ethertype IPv4 \(0x0800\), length \d+: 203\.0\.113\.12 > 203\.0\.113\.50: ICMP echo request`, 5*time.Second)
	wire2.Wait(`203\.0\.113\.50 > 203\.0\.113\.12: ICMP echo request`, 5*time.Second)
	for _, l := range wire2.Match(`203\.0\.113\.`) {
		if strings.Contains(l, "802.1Q") {
			t.Errorf("hv2's uplink carried the flat network tagged: %s", l)
		}
	}

	// (c) the internet through the outside router, ICMP and TCP, from
	// both the hypervisor's port and the physical host.
	srv := router.Internet.ServeTCP(t, labInternetIP+":8080")
	for _, from := range []*ovstest.VM{vmFlat, flat} {
		if err := from.Ping(labInternetIP); err != nil {
			t.Fatalf("%s -> the internet host: %v", from.IP, err)
		}
		if got := from.ConnectTCP(srv.Addr, 5*time.Second); got.Outcome != ovstest.TCPConnected || got.Answer != ipOf(from) {
			t.Fatalf("TCP %s -> %s: %v, want connected and seen from %s", from.IP, srv.Addr, got, ipOf(from))
		}
	}
	// hv2's port reached the internet through the router's MAC.
	wire2.Wait(fmt.Sprintf(`%s > %s, ethertype IPv4 .*203\.0\.113\.12 > 198\.51\.100\.10: ICMP echo request`, vmFlat.MAC, router.MAC), 5*time.Second)
	if got := vmFlat.Neighbour(labRouterIP); got != router.MAC {
		t.Errorf("hv2's port resolved the outside router to %q, want %q", got, router.MAC)
	}
	if got := vmFlat.ConnectTCP(labInternetIP+":8081", 3*time.Second); got.Outcome != ovstest.TCPRefused {
		t.Errorf("a closed port of the internet host: %v, want refused", got)
	}

	// Each network stayed in its lane: the flat port saw no tagged
	// frame and nothing of VLAN 100, the VLAN 100 port nothing of the
	// flat network; hv1, with no flat port, never saw the internet
	// host's address unicast.
	for _, l := range onFlat.Stop() {
		if strings.Contains(l, "802.1Q") || strings.Contains(l, "192.0.2.") {
			t.Errorf("hv2's flat port saw VLAN 100: %s", l)
		}
	}
	for _, l := range on100.Stop() {
		if strings.Contains(l, "203.0.113.") || strings.Contains(l, "198.51.100.") {
			t.Errorf("hv1's VLAN 100 port saw the flat network: %s", l)
		}
	}
	sent1.Stop()
	for _, l := range got1.Stop() {
		if strings.Contains(l, "198.51.100.10") {
			t.Errorf("hv1's uplink saw traffic for the internet host: %s", l)
		}
	}
}

// TestExternalLabChassis: in the lab, every wyvernd reports its mapping of
// physnet1 to br-ex, the gateway hypervisor its --gateway, and the
// integration bridge is patched to br-ex, the uplink still on it.
func TestExternalLabChassis(t *testing.T) {
	lab := newExternalLab(t, 2, []int{2})
	var out struct {
		Chassis []struct {
			Name           string            `json:"name"`
			BridgeMappings map[string]string `json:"bridge_mappings"`
			Gateway        bool              `json:"gateway"`
		} `json:"chassis"`
	}
	if code, err := lab.call("GET", "/v2.0/chassis", nil, &out); err != nil || code != 200 {
		t.Fatalf("GET /v2.0/chassis: %d %v", code, err)
	}
	gateways := map[string]bool{}
	for _, c := range out.Chassis {
		if c.BridgeMappings[labPhysnet] != labBridge {
			t.Errorf("chassis %s: bridge_mappings %v, want %s:%s", c.Name, c.BridgeMappings, labPhysnet, labBridge)
		}
		gateways[c.Name] = c.Gateway
	}
	if len(out.Chassis) != 2 || gateways["hv1"] || !gateways["hv2"] {
		t.Errorf("gateway chassis %v, want hv2 only", gateways)
	}
	for _, h := range lab.hvs {
		ovstest.Eventually(t, 20*time.Second, fmt.Sprintf("hv%d's br-ex patched to br-int", h.n), func() bool {
			ports, err := h.ovs.VsctlErr("list-ports", labBridge)
			if err != nil || !strings.Contains(ports, lab.uplink(h).HVPort) {
				return false
			}
			for _, p := range strings.Fields(ports) {
				ids, _ := h.ovs.VsctlErr("get", "interface", p, "external_ids:wyvern-physnet")
				peer, _ := h.ovs.VsctlErr("get", "interface", p, "options:peer")
				if strings.Contains(ids, labPhysnet) && strings.TrimSpace(peer) != "" {
					inInt, _ := h.ovs.VsctlErr("port-to-br", strings.Trim(strings.TrimSpace(peer), `"`))
					return strings.TrimSpace(inInt) == "br-int"
				}
			}
			return false
		})
	}
	// The outside world is there, whatever Wyvern does.
	x := lab.externalHost("203.0.113.60")
	if err := x.Ping(labInternetIP); err != nil {
		t.Fatalf("external host -> internet host: %v", err)
	}
}
