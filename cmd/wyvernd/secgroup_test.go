package main

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
)

// securityGroup creates a group and its rules; it returns the group's id.
func (tb *testbed) securityGroup(name string, rules ...map[string]any) string {
	tb.t.Helper()
	g := tb.create("/v2.0/security-groups", map[string]any{"security_group": map[string]any{"name": name}})
	id := g["id"].(string)
	for _, r := range rules {
		r["security_group_id"] = id
		if r["direction"] == nil {
			r["direction"] = "ingress"
		}
		tb.create("/v2.0/security-group-rules", map[string]any{"security_group_rule": r})
	}
	return id
}

// setGroups gives a port exactly these security groups.
func (tb *testbed) setGroups(port string, groups ...string) {
	tb.t.Helper()
	if groups == nil {
		groups = []string{}
	}
	if code, err := tb.call("PUT", "/v2.0/ports/"+port, map[string]any{"port": map[string]any{"security_groups": groups}}, nil); err != nil || code != http.StatusOK {
		tb.t.Fatalf("security groups of %s: %d %v", port, code, err)
	}
}

// reachTCP reports whether a TCP connection from vm to addr gets through
// (the server answers) within 300 ms: a filtered SYN gets no answer at all.
func reachTCP(vm *ovstest.VM, addr string) bool {
	return vm.ConnectTCP(addr, 300*time.Millisecond).Outcome == ovstest.TCPConnected
}

// eventuallyTCP waits until TCP from vm to addr works (want) or is
// filtered (!want), and returns how long it took.
func eventuallyTCP(t *testing.T, vm *ovstest.VM, addr string, want bool, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if reachTCP(vm, addr) == want {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("TCP from %s to %s: want reachable=%v after %s", vm.IP, addr, want, within)
	return 0
}

// TestSecurityGroups: a stateful firewall per port on real OVS — a group
// admitting TCP 8080 from anywhere admits 8080 and nothing else (not
// 8081, not ping), same chassis, across chassis and routed; the default
// group admits its members and no one else; a remote-group rule follows
// membership; a VM's outbound connections get their replies while
// unsolicited inbound is refused; removing a rule stops new connections
// at once and an established one only it admitted.
func TestSecurityGroups(t *testing.T) {
	tb := newTestbed(t, 2)
	hv1, hv2 := tb.hvs[0], tb.hvs[1]
	a := tb.network("A", "vxlan", 100, "10.0.0.0/24")
	b := tb.network("B", "vxlan", 200, "10.1.0.0/24")
	var subnets struct {
		Subnets []struct {
			ID        string `json:"id"`
			NetworkID string `json:"network_id"`
		} `json:"subnets"`
	}
	if _, err := tb.call("GET", "/v2.0/subnets", nil, &subnets); err != nil {
		t.Fatal(err)
	}
	r := tb.create("/v2.0/routers", map[string]any{"router": map[string]any{"name": "R"}})
	for _, sn := range subnets.Subnets {
		if code, err := tb.call("PUT", "/v2.0/routers/"+r["id"].(string)+"/add_router_interface", map[string]any{"subnet_id": sn.ID}, nil); err != nil || code != 200 {
			t.Fatalf("add_router_interface: %d %v", code, err)
		}
	}
	vm1, p1 := tb.vm(hv1, a, "10.0.0.11") // default group
	vm2, p2 := tb.vm(hv2, a, "10.0.0.12") // web
	vm3, p3 := tb.vm(hv1, a, "10.0.0.13") // web, same chassis as vm1
	vm4, p4 := tb.vm(hv1, b, "10.1.0.14") // default group, routed
	tb.waitActive(p1, p2, p3, p4)
	if _, err := vm4.Exec("ip", "route", "add", "default", "via", "10.1.0.1"); err != nil {
		t.Fatal(err)
	}
	for _, vm := range []*ovstest.VM{vm1, vm2, vm3} {
		if _, err := vm.Exec("ip", "route", "add", "10.1.0.0/24", "via", "10.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	for _, vm := range []*ovstest.VM{vm1, vm2, vm3, vm4} {
		for _, port := range []string{"8080", "8081", "9000"} {
			vm.ServeTCP(t, ipOf(vm)+":"+port)
		}
	}

	// The default group: its members reach each other.
	if !reachTCP(vm1, "10.0.0.12:8080") || ping(vm1, "10.0.0.12") != nil {
		t.Fatal("default group: vm1 does not reach vm2")
	}

	web := tb.securityGroup("web", map[string]any{"protocol": "tcp", "port_range_min": 8080, "port_range_max": 8080, "remote_ip_prefix": "0.0.0.0/0"})
	tb.setGroups(p2, web)
	tb.setGroups(p3, web)
	for _, from := range []*ovstest.VM{vm1, vm4} { // across chassis, same chassis (vm1 → vm3), routed (vm4)
		for _, to := range []string{"10.0.0.12", "10.0.0.13"} {
			eventuallyTCP(t, from, to+":8080", true, 5*time.Second)
			if reachTCP(from, to+":8081") {
				t.Errorf("%s reached %s:8081, which web does not admit", from.IP, to)
			}
			if ping(from, to) == nil {
				t.Errorf("%s pinged %s, which web does not admit", from.IP, to)
			}
		}
	}
	// vm2 is no member of default any more: vm1 (default) refuses it.
	if reachTCP(vm2, "10.0.0.11:9000") {
		t.Errorf("vm2 (web only) reached vm1 of the default group")
	}

	// Stateful: vm2 opens connections out (web lets anything out) to vm4,
	// opened to anyone, and gets its replies; unsolicited inbound to vm2
	// on 9000 is refused.
	open := tb.securityGroup("open", map[string]any{"remote_ip_prefix": "0.0.0.0/0"})
	tb.setGroups(p4, open)
	eventuallyTCP(t, vm2, "10.1.0.14:9000", true, 5*time.Second)
	if reachTCP(vm4, "10.0.0.12:9000") {
		t.Errorf("unsolicited inbound reached vm2:9000")
	}

	// A remote group: vm3 admits TCP 9000 from members of app; vm1 joins
	// app and is admitted, leaves and is refused.
	app := tb.securityGroup("app")
	db := tb.securityGroup("db", map[string]any{"protocol": "tcp", "port_range_min": 9000, "port_range_max": 9000, "remote_group_id": app})
	tb.setGroups(p3, web, db)
	if reachTCP(vm1, "10.0.0.13:9000") {
		t.Fatal("vm1 reached db before joining app")
	}
	var defaultGroup struct {
		Port struct {
			Groups []string `json:"security_groups"`
		} `json:"port"`
	}
	if _, err := tb.call("GET", "/v2.0/ports/"+p1, nil, &defaultGroup); err != nil || len(defaultGroup.Port.Groups) != 1 {
		t.Fatalf("vm1's groups: %v %+v", err, defaultGroup)
	}
	tb.setGroups(p1, defaultGroup.Port.Groups[0], app)
	took := eventuallyTCP(t, vm1, "10.0.0.13:9000", true, 5*time.Second)
	t.Logf("vm1 joined app: admitted to db after %s", took)
	tb.setGroups(p1, defaultGroup.Port.Groups[0])
	took = eventuallyTCP(t, vm1, "10.0.0.13:9000", false, 5*time.Second)
	t.Logf("vm1 left app: refused by db after %s", took)

	// Removing a rule: an established connection it alone admitted stops,
	// and new ones fail at once.
	vm2.Serve(t, "10.0.0.12:7", func(c net.Conn) { _, _ = io.Copy(c, c) })
	var webRules struct {
		Group struct {
			Rules []struct {
				ID      string `json:"id"`
				PortMin *int   `json:"port_range_min"`
			} `json:"security_group_rules"`
		} `json:"security_group"`
	}
	tb.create("/v2.0/security-group-rules", map[string]any{"security_group_rule": map[string]any{"security_group_id": web,
		"direction": "ingress", "protocol": "tcp", "port_range_min": 7, "port_range_max": 7}})
	ovstest.Eventually(t, 5*time.Second, "echo admitted", func() bool { return roundTrip(dialFrom(t, vm1.NetNS, "10.0.0.12:7"), "hi") == nil })
	conn := dialFrom(t, vm1.NetNS, "10.0.0.12:7")
	if err := roundTrip(conn, "before"); err != nil {
		t.Fatalf("echo before the rule is removed: %v", err)
	}
	if _, err := tb.call("GET", "/v2.0/security-groups/"+web, nil, &webRules); err != nil {
		t.Fatal(err)
	}
	var echoRule string
	for _, r := range webRules.Group.Rules {
		if r.PortMin != nil && *r.PortMin == 7 {
			echoRule = r.ID
		}
	}
	if code, err := tb.call("DELETE", "/v2.0/security-group-rules/"+echoRule, nil, nil); err != nil || code != http.StatusNoContent {
		t.Fatalf("delete rule: %d %v", code, err)
	}
	took = eventuallyTCP(t, vm1, "10.0.0.12:7", false, 5*time.Second)
	t.Logf("rule removed: new connections refused after %s", took)
	if err := roundTrip(conn, "after"); err == nil {
		t.Errorf("the established connection the removed rule admitted still echoes")
	}
	if !reachTCP(vm1, "10.0.0.12:8080") {
		t.Errorf("8080, which another rule admits, stopped too")
	}
}
