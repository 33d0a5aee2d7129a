package main

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
)

// controllerRoles are a bridge's controllers as ovs-vsctl lists them:
// target → role.
func controllerRoles(t *testing.T, h *hypervisor) map[string]string {
	t.Helper()
	out := h.ovs.Vsctl("--format=csv", "--no-headings", "--columns=target,role,is_connected", "list", "controller")
	roles := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, ",")
		if len(f) == 3 && f[2] == "true" {
			roles[strings.Trim(f[0], `"`)] = f[1]
		}
	}
	return roles
}

// TestBridgeMastership: with routable OpenFlow addresses every bridge
// lists every member; its own node is master and the others slaves
// (ovs-vsctl list controller). SIGKILL of a bridge's master under a
// running ping loses no packet of the established flow; another node
// takes the bridge within a second, and a new conversation from a VM
// there works 1.5 s after the kill. The restarted node takes its bridge
// back, and the one that stood in for it is a slave again.
func TestBridgeMastership(t *testing.T) {
	tb := newTestbedWith(t, 3, testbedOptions{prepare: func(h *hypervisor) {
		h.m.args = append(h.m.args, "--openflow-addr", fmt.Sprintf("tcp:%s:6653", strings.Split(h.api, ":")[0]))
	}})
	target := func(h *hypervisor) string { return fmt.Sprintf("tcp:%s:6653", strings.Split(h.api, ":")[0]) }
	oneMaster := func(h *hypervisor, master *hypervisor) func() bool {
		return func() bool {
			roles := controllerRoles(t, h)
			if len(roles) != 3 {
				return false
			}
			for _, o := range tb.hvs {
				want := "slave"
				if o == master {
					want = "master"
				}
				if roles[target(o)] != want {
					return false
				}
			}
			return true
		}
	}
	for _, h := range tb.hvs {
		ovstest.Eventually(t, 30*time.Second, fmt.Sprintf("hv%d's bridge: its own node master, two slaves", h.n), oneMaster(h, h))
	}
	t.Logf("hv2's controllers: %v", controllerRoles(t, tb.hvs[1]))

	hv1, hv2, hv3 := tb.hvs[0], tb.hvs[1], tb.hvs[2]
	a := tb.network("A", "vxlan", 100, "10.0.0.0/24")
	vm1, p1 := tb.vm(hv1, a, "")
	vm2, p2 := tb.vm(hv2, a, "")
	vm3, p3 := tb.vm(hv2, a, "") // talks only after the kill
	tb.waitActive(p1, p2, p3)
	if err := ping(vm1, ipOf(vm2)); err != nil {
		t.Fatalf("ping before the kill: %v", err)
	}

	// A ping every 50 ms from vm1 to vm2 (on hv2) while hv2's node dies.
	pinger := vm1.Command("ping", "-i", "0.05", "-c", "80", "-W", "1", ipOf(vm2))
	var out strings.Builder
	pinger.Stdout, pinger.Stderr = &out, &out
	if err := pinger.Start(); err != nil {
		t.Fatal(err)
	}
	pingStart := time.Now()
	time.Sleep(time.Second)
	var chassis struct {
		Chassis struct {
			DatapathID string `json:"datapath_id"`
		} `json:"chassis"`
	}
	if _, err := tb.call("GET", "/v2.0/chassis/hv2", nil, &chassis); err != nil {
		t.Fatal(err)
	}
	dpid := chassis.Chassis.DatapathID
	killed := time.Now()
	hv2.m.kill()
	// Another node takes hv2's bridge: its own word, in its metrics.
	var standIn *hypervisor
	var tookOver time.Duration
	ovstest.Eventually(t, 5*time.Second, "a new master of hv2's bridge", func() bool {
		for _, o := range []*hypervisor{hv1, hv3} {
			resp, err := tb.client.Get("http://" + o.api + "/metrics")
			if err != nil {
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), `wyvern_bridge_role_changes_total{bridge="`+dpid+`",role="master"}`) {
				standIn, tookOver = o, time.Since(killed)
				return true
			}
		}
		return false
	})
	t.Logf("hv%d took hv2's bridge (its role request answered) %s after the kill", standIn.n, tookOver.Round(time.Millisecond))
	if tookOver > time.Second {
		t.Errorf("hv2's bridge had no master for %s, want under 1 s", tookOver.Round(time.Millisecond))
	}
	// A new conversation, 1.5 s after the kill.
	time.Sleep(time.Until(killed.Add(1500 * time.Millisecond)))
	start := time.Now()
	if _, err := vm3.Exec("ping", "-c", "1", "-W", "2", ipOf(vm1)); err != nil {
		t.Fatalf("vm3 (hv2) -> vm1, a new conversation 1.5 s after hv2's node died: %v", err)
	}
	t.Logf("vm3's first ping, sent %s after the kill, answered in %s", start.Sub(killed).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	ovstest.Eventually(t, 15*time.Second, "ovs-vsctl: the stand-in master of hv2's bridge", func() bool {
		return controllerRoles(t, hv2)[target(standIn)] == "master"
	})
	if err := pinger.Wait(); err != nil {
		t.Logf("ping: %v", err)
	}
	m := regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("ping output: %s", out.String())
	}
	sent, got := atoi(m[1]), atoi(m[2])
	t.Logf("the established flow through the kill: %d sent, %d received", sent, got)
	if sent != got {
		t.Errorf("the established flow lost %d of %d pings through the master's kill: %s", sent-got, sent, missingPings(out.String(), sent, pingStart, killed))
	}

	// hv2's node back: it takes its bridge back; the stand-in is a slave.
	hv2.m.start(t)
	tb.waitHealthy(hv2)
	ovstest.Eventually(t, 30*time.Second, "hv2 master of its bridge again", oneMaster(hv2, hv2))
	if err := ping(vm3, ipOf(vm1)); err != nil {
		t.Fatalf("vm3 -> vm1 after hv2's node is back: %v", err)
	}
}

// missingPings names the pings a ping's output has no reply for, each
// with about when it was sent (every 50 ms from start) against the kill.
func missingPings(out string, sent int, start, killed time.Time) string {
	answered := map[int]bool{}
	for _, m := range regexp.MustCompile(`icmp_seq=(\d+)`).FindAllStringSubmatch(out, -1) {
		answered[atoi(m[1])] = true
	}
	var missing []string
	for seq := 1; seq <= sent; seq++ {
		if !answered[seq] {
			at := start.Add(time.Duration(seq-1) * 50 * time.Millisecond).Sub(killed)
			missing = append(missing, fmt.Sprintf("icmp_seq=%d (sent about %+dms from the kill)", seq, at.Milliseconds()))
		}
	}
	return strings.Join(missing, ", ")
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// TestCentralModeChassis: a chassis no Wyvern node runs on — an OVS the
// operator set up by hand, its bridge listing the three members —
// registered through the API, gets one master and two slaves, the full
// pipeline from its master, and its VM (a tap named as Nova names it)
// bound, ACTIVE and pinging a VM on another chassis.
func TestCentralModeChassis(t *testing.T) {
	tb := newTestbedWith(t, 3, testbedOptions{prepare: func(h *hypervisor) {
		h.m.args = append(h.m.args, "--openflow-addr", fmt.Sprintf("tcp:%s:6653", strings.Split(h.api, ":")[0]))
	}})
	hv1 := tb.hvs[0]
	o := tb.underlay.AddHypervisor(4)
	var targets []string
	for _, h := range tb.hvs {
		targets = append(targets, fmt.Sprintf("tcp:%s:6653", strings.Split(h.api, ":")[0]))
	}
	o.Vsctl(append([]string{"add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev", "fail_mode=secure",
		"protocols=OpenFlow13,OpenFlow15", "--", "set-controller", "br-int"}, targets...)...)
	for _, typ := range []string{"vxlan", "gre"} {
		o.Vsctl("add-port", "br-int", "wyv-"+typ, "--", "set", "interface", "wyv-"+typ, "type="+typ,
			"options:remote_ip=flow", "options:key=flow")
	}
	dpid := strings.Trim(strings.TrimSpace(o.Vsctl("get", "bridge", "br-int", "datapath_id")), `"`)
	reg := map[string]any{"chassis": map[string]any{"name": "hv4", "encap_ip": tb.underlay.IP(4), "datapath_id": dpid, "datapath_type": "netdev"}}
	// A 503 (no leader for a moment: three nodes and four OVS starting on
	// two cores may miss raft's 400 ms lease) is retried, as a CMS would.
	// A registration answered 503 may still have committed: a retry then
	// finds hv4 there (409), which is as good.
	code, err := tb.call("POST", "/v2.0/chassis", reg, nil)
	retried := false
	for attempt := 0; err == nil && code == http.StatusServiceUnavailable && attempt < 50; attempt++ {
		time.Sleep(100 * time.Millisecond)
		retried = true
		code, err = tb.call("POST", "/v2.0/chassis", reg, nil)
	}
	if retried && err == nil && code == http.StatusConflict {
		code, err = tb.call("GET", "/v2.0/chassis/hv4", nil, nil)
		if code == http.StatusOK {
			code = http.StatusCreated
		}
	}
	if err != nil || code != http.StatusCreated {
		t.Fatalf("registering hv4: %d %v", code, err)
	}
	// Bad registrations change nothing.
	for _, bad := range []map[string]any{
		{"chassis": map[string]any{"name": "hv5", "encap_ip": "172.31.0.5", "datapath_id": "nothex"}},
		{"chassis": map[string]any{"name": "hv1", "encap_ip": "172.31.0.9", "datapath_id": "00000000000000ff"}}, // a node's own
		{"chassis": map[string]any{"name": "hv5", "encap_ip": "172.31.0.5", "datapath_id": dpid}},               // hv4's
		{"chassis": map[string]any{"name": "hv5", "encap_ip": "172.31.0.5", "datapath_id": "ff", "color": "red"}},
	} {
		if code, _ := tb.call("POST", "/v2.0/chassis", bad, nil); code < 400 || code >= 500 {
			t.Errorf("POST /v2.0/chassis %v: %d, want 4xx", bad, code)
		}
	}
	if code, _ := tb.call("GET", "/v2.0/chassis/hv5", nil, nil); code != 404 {
		t.Errorf("a refused registration left chassis hv5 (%d)", code)
	}
	hv4 := &hypervisor{n: 4, ovs: o}
	ovstest.Eventually(t, 30*time.Second, "hv4's bridge: one master, two slaves", func() bool {
		roles := controllerRoles(t, hv4)
		masters, slaves := 0, 0
		for _, r := range roles {
			switch r {
			case "master":
				masters++
			case "slave":
				slaves++
			}
		}
		return masters == 1 && slaves == 2
	})
	t.Logf("hv4's controllers: %v", controllerRoles(t, hv4))

	a := tb.network("A", "vxlan", 100, "10.0.0.0/24")
	vm1, p1 := tb.vm(hv1, a, "")
	port := tb.create("/v2.0/ports", map[string]any{"port": map[string]any{"network_id": a, "binding:host_id": "hv4"}})
	id := port["id"].(string)
	addr := port["fixed_ips"].([]any)[0].(map[string]any)["ip_address"].(string)
	vm4 := o.NewVM(port["mac_address"].(string), addr+"/24")
	tap := "tap" + id[:11]
	if _, err := o.NS.Exec("ip", "link", "set", vm4.Tap, "name", tap); err != nil {
		t.Fatal(err)
	}
	o.Vsctl("add-port", "br-int", tap)
	if _, err := o.NS.Exec("ip", "link", "set", tap, "up"); err != nil {
		t.Fatal(err)
	}
	tb.waitActive(p1, id)
	var got struct {
		Port struct {
			HostID string `json:"binding:host_id"`
			Status string `json:"status"`
		} `json:"port"`
	}
	if _, err := tb.call("GET", "/v2.0/ports/"+id, nil, &got); err != nil || got.Port.Status != "ACTIVE" {
		t.Fatalf("hv4's port: %+v %v", got, err)
	}
	if err := ping(vm4, ipOf(vm1)); err != nil {
		t.Fatalf("vm on hv4 (no node there) -> vm1 on hv1: %v", err)
	}
	if err := ping(vm1, addr); err != nil {
		t.Fatalf("vm1 -> the vm on hv4: %v", err)
	}
	flows := o.Ofctl("dump-flows", "br-int")
	if n := strings.Count(flows, "cookie="); n < 40 {
		t.Errorf("hv4's bridge holds %d flows; want the full pipeline", n)
	}

	// hv4 taken out of service: the cluster forgets it, every bridge
	// drops what led there, and its port stays, unplugged.
	hv4IP := tb.underlay.IP(4)
	if !strings.Contains(hv1.ovs.Ofctl("dump-flows", "br-int"), hv4IP) {
		t.Fatalf("hv1's bridge has no flow toward hv4 (%s) before hv4 goes", hv4IP)
	}
	servesTap := func() bool { return strings.Contains(strings.Join(o.DumpFlows("br-int"), "\n"), `in_port="`+tap+`"`) }
	if !servesTap() {
		t.Fatalf("hv4's bridge has no flow for its tap %s before hv4 goes:\n%s", tap, strings.Join(o.DumpFlows("br-int"), "\n"))
	}
	if code, _ := tb.call("DELETE", "/v2.0/chassis/hv1", nil, nil); code != 409 {
		t.Errorf("DELETE of hv1, a member's own chassis: %d, want 409", code)
	}
	if code, _ := tb.call("GET", "/v2.0/chassis/hv1", nil, nil); code != 200 {
		t.Errorf("the refused delete left hv1 %d", code)
	}
	if code, err := tb.call("DELETE", "/v2.0/chassis/hv4", nil, nil); err != nil || code != 204 {
		t.Fatalf("DELETE /v2.0/chassis/hv4: %d %v", code, err)
	}
	if code, _ := tb.call("DELETE", "/v2.0/chassis/hv4", nil, nil); code != 404 {
		t.Errorf("hv4 deleted twice: %d, want 404", code)
	}
	var after struct {
		Port struct {
			HostID  string `json:"binding:host_id"`
			Status  string `json:"status"`
			VIFType string `json:"binding:vif_type"`
		} `json:"port"`
	}
	if _, err := tb.call("GET", "/v2.0/ports/"+id, nil, &after); err != nil || after.Port.Status != "DOWN" ||
		after.Port.HostID != "hv4" || after.Port.VIFType != "binding_failed" {
		t.Errorf("hv4's port after hv4 went: %+v %v", after.Port, err)
	}
	for _, h := range tb.hvs {
		ovstest.Eventually(t, 10*time.Second, h.m.id+"'s bridge forgets hv4", func() bool {
			return !strings.Contains(h.ovs.Ofctl("dump-flows", "br-int"), hv4IP)
		})
	}
	ovstest.Eventually(t, 10*time.Second, "hv4's bridge no longer serves its tap", func() bool {
		return !servesTap()
	})
	if err := ping(vm1, addr); err == nil {
		t.Errorf("vm1 still reaches the vm on hv4 after hv4 was taken out of service")
	}

	// hv4 back in service through the thin agent, `wyvern chassis join`,
	// run on hv4 against an OVS left half set up: no controllers, no GRE
	// port, fail_mode standalone. It corrects the bridge, lists every
	// member, registers hv4, and waits for its master; hv4's port, still
	// plugged there, is bound again and reached.
	o.Vsctl("del-controller", "br-int", "--", "set", "bridge", "br-int", "fail_mode=standalone", "--", "del-port", "br-int", "wyv-gre")
	cli := buildWyvern(t)
	join := func(args ...string) (string, error) {
		return o.NS.Exec(append([]string{cli, "--api", "http://" + hv1.api, "chassis", "join"}, args...)...)
	}
	if out, err := join("hv4", "--encap-ip", "not-an-address", "--ovsdb", o.DB()); err == nil || !strings.Contains(out, "--encap-ip") {
		t.Errorf("join with a bad --encap-ip: %v\n%s", err, out)
	}
	if code, _ := tb.call("GET", "/v2.0/chassis/hv4", nil, nil); code != 404 {
		t.Errorf("a refused join registered hv4 (%d)", code)
	}
	out, err := join("hv4", "--encap-ip", hv4IP, "--datapath-type", "netdev", "--ovsdb", o.DB())
	if err != nil {
		t.Fatalf("wyvern chassis join hv4: %v\n%s", err, out)
	}
	t.Logf("wyvern chassis join hv4:\n%s", out)
	if got := strings.Fields(o.Vsctl("get-controller", "br-int")); len(got) != len(targets) {
		t.Errorf("after join, hv4's controllers: %v, want %v", got, targets)
	}
	if fm := o.Vsctl("get", "bridge", "br-int", "fail_mode"); fm != "secure" {
		t.Errorf("after join, hv4's fail_mode: %s", fm)
	}
	if typ := o.Vsctl("get", "interface", "wyv-gre", "type"); typ != "gre" {
		t.Errorf("after join, wyv-gre's type: %s", typ)
	}
	tb.waitActive(id)
	if err := ping(vm1, addr); err != nil {
		t.Errorf("vm1 -> the vm on hv4 after hv4 joined again: %v", err)
	}
	// Again: the same registration, hv4 keeps its DVR MAC. Its bridge
	// under another name is refused, and registers nothing.
	dvrMAC := func(name string) string {
		var c struct {
			Chassis struct {
				DVRMAC string `json:"dvr_mac"`
			} `json:"chassis"`
		}
		if code, err := tb.call("GET", "/v2.0/chassis/"+name, nil, &c); err != nil || code != 200 {
			t.Fatalf("GET chassis %s: %d %v", name, code, err)
		}
		return c.Chassis.DVRMAC
	}
	mac := dvrMAC("hv4")
	if out, err := join("hv4", "--encap-ip", hv4IP, "--datapath-type", "netdev", "--ovsdb", o.DB()); err != nil || !strings.Contains(out, "registered chassis hv4") {
		t.Errorf("a second join: %v\n%s", err, out)
	}
	if again := dvrMAC("hv4"); again != mac || mac == "" {
		t.Errorf("hv4's DVR MAC %q after a second join, %q before", again, mac)
	}
	if out, err := join("hv5", "--encap-ip", hv4IP, "--datapath-type", "netdev", "--ovsdb", o.DB(), "--wait", "0"); err == nil || !strings.Contains(out, "DatapathInUse") {
		t.Errorf("hv4's bridge joined as hv5: %v\n%s", err, out)
	}
	if code, _ := tb.call("GET", "/v2.0/chassis/hv5", nil, nil); code != 404 {
		t.Errorf("a refused join registered hv5 (%d)", code)
	}
}
