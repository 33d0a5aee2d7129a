package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/daemontest"
	"github.com/wyvern-sdn/wyvern/internal/ovstest"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
)

// The north-south end-to-end tests, in the external lab (lab_test.go):
// provider networks on a real (OVS) physical switch, SNAT on a gateway
// chassis, distributed floating IPs and port forwarding, as the outside
// world sees them.

// providerNetwork creates a flat or vlan network on the lab's physical
// network, with one subnet; it returns the network and subnet ids.
func (lab *externalLab) providerNetwork(name, typ string, vlan int, cidr, gateway string, external bool) (string, string) {
	lab.t.Helper()
	body := map[string]any{"name": name, "provider:network_type": typ, "provider:physical_network": labPhysnet,
		"router:external": external}
	if typ == "vlan" {
		body["provider:segmentation_id"] = vlan
	}
	n := lab.create("/v2.0/networks", map[string]any{"network": body})
	s := lab.create("/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": n["id"], "cidr": cidr,
		"gateway_ip": gateway, "enable_dhcp": !external}})
	return n["id"].(string), s["id"].(string)
}

// overlay creates a vxlan network with one subnet; it returns both ids.
func (lab *externalLab) overlay(name, cidr string) (string, string) {
	lab.t.Helper()
	n := lab.create("/v2.0/networks", map[string]any{"network": map[string]any{"name": name}})
	s := lab.create("/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": n["id"], "cidr": cidr}})
	return n["id"].(string), s["id"].(string)
}

// router creates a router joining subnets; it returns its id.
func (lab *externalLab) newRouter(name string, subnets ...string) string {
	lab.t.Helper()
	r := lab.create("/v2.0/routers", map[string]any{"router": map[string]any{"name": name}})
	id := r["id"].(string)
	for _, sn := range subnets {
		if code, err := lab.call("PUT", "/v2.0/routers/"+id+"/add_router_interface", map[string]any{"subnet_id": sn}, nil); err != nil || code != 200 {
			lab.t.Fatalf("add_router_interface %s: %d %v", sn, code, err)
		}
	}
	return id
}

// setGateway gives a router its gateway on an external network and
// returns the router's address there.
func (lab *externalLab) setGateway(router, network string) string {
	lab.t.Helper()
	var out struct {
		Router struct {
			Gateway struct {
				IPs []struct {
					IP string `json:"ip_address"`
				} `json:"external_fixed_ips"`
			} `json:"external_gateway_info"`
		} `json:"router"`
	}
	body := map[string]any{"router": map[string]any{"external_gateway_info": map[string]any{"network_id": network}}}
	if code, err := lab.call("PUT", "/v2.0/routers/"+router, body, &out); err != nil || code != 200 || len(out.Router.Gateway.IPs) == 0 {
		lab.t.Fatalf("setting the gateway: %d %v %+v", code, err, out)
	}
	return out.Router.Gateway.IPs[0].IP
}

// routedVM is a VM of a subnet whose default route is its gateway.
func (lab *externalLab) routedVM(h *hypervisor, network, ip, gateway string) (*ovstest.VM, string) {
	lab.t.Helper()
	vm, port := lab.vm(h, network, ip)
	if _, err := vm.Exec("ip", "route", "add", "default", "via", gateway); err != nil {
		lab.t.Fatal(err)
	}
	return vm, port
}

// dvrMAC is a chassis' DVR MAC, as the API tells it.
func (lab *externalLab) dvrMAC(h *hypervisor) string {
	lab.t.Helper()
	var out struct {
		Chassis struct {
			MAC string `json:"dvr_mac"`
		} `json:"chassis"`
	}
	if code, err := lab.call("GET", "/v2.0/chassis/"+h.m.id, nil, &out); err != nil || code != 200 {
		lab.t.Fatalf("chassis %s: %d %v", h.m.id, code, err)
	}
	return out.Chassis.MAC
}

// connects waits until a TCP connection from ns to addr works and the
// server saw it come from want ("" for any); it returns the time taken.
// Each attempt gets 300 ms (a new connection, not a SYN retransmitted a
// second later), so the time says when the path came back.
func connects(t *testing.T, ns *ovstest.NetNS, addr, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last ovstest.TCPResult
	for time.Since(start) < within {
		last = ns.ConnectTCP(addr, 300*time.Millisecond)
		if last.Outcome == ovstest.TCPConnected && (want == "" || last.Answer == want) {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("TCP from %s to %s: %v after %s, want connected and seen from %q", ns.Name, addr, last, within, want)
	return 0
}

// dumpOnFailure logs, when the test fails, the bridges' flows of the
// north-south tables and the stages around them.
func (lab *externalLab) dumpOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, h := range lab.hvs {
			lines, err := h.ovs.DumpFlowsErr("br-int")
			if err != nil {
				continue
			}
			var keep []string
			for _, l := range lines {
				for _, s := range []string{"table=Uplink", "table=11,", "table=L3Lookup", "table=66", "table=SNAT", "table=76", "table=77", "table=Classifier"} {
					if strings.Contains(l, s) {
						keep = append(keep, l)
						break
					}
				}
			}
			var punts map[string]any
			_, _ = daemontestCall(lab.testbed, h, "/debug/punts", &punts)
			t.Logf("%s north-south flows:\n%s\npunts: %v", h.m.id, strings.Join(keep, "\n"), punts)
		}
	})
}

func daemontestCall(tb *testbed, h *hypervisor, path string, out any) (int, error) {
	return daemontest.Call(tb.client, "GET", tb.scheme+"://"+h.api, path, nil, out)
}

// TestProviderNetworks: a VM on a vlan network and one on a flat network
// reach hosts of the physical network, the vlan network's frames leave
// tagged and the flat network's untagged; a VM on an overlay network
// routes to the vlan network's host through the distributed router,
// which learns the host's MAC by ARP and sends with its chassis' DVR MAC.
func TestProviderNetworks(t *testing.T) {
	lab := newExternalLabWith(t, 3, externalLabOptions{unmapped: []int{3}})
	lab.dumpOnFailure(t)
	hv1, hv2, hv3 := lab.hvs[0], lab.hvs[1], lab.hvs[2]
	vlan, vlanSub := lab.providerNetwork("v100", "vlan", 100, "10.2.0.0/24", "10.2.0.1", false)
	flat, _ := lab.providerNetwork("flat", "flat", 0, labExternal, labRouterIP, false)
	host := lab.phys.Host("vh", 100, "10.2.0.100/24", "10.2.0.1")

	vmV, pV := lab.vm(hv2, vlan, "10.2.0.10")
	vmF, pF := lab.vm(hv1, flat, "203.0.113.30")
	lab.waitActive(pV, pF)
	lab.admitFromAnywhere()
	sent1, sent2 := lab.uplink(hv1).CaptureSent(""), lab.uplink(hv2).CaptureSent("")

	ovstest.Eventually(t, 10*time.Second, "the vlan VM reaches the vlan host", func() bool { return vmV.Ping("10.2.0.100") == nil })
	ovstest.Eventually(t, 10*time.Second, "the flat VM reaches the outside router", func() bool { return vmF.Ping(labRouterIP) == nil })
	sent2.Wait(`vlan 100, p 0, ethertype IPv4 .*10\.2\.0\.10 > 10\.2\.0\.100: ICMP echo request`, 5*time.Second)
	sent1.Wait(`ethertype IPv4 \(0x0800\), length \d+: 203\.0\.113\.30 > 203\.0\.113\.1: ICMP echo request`, 5*time.Second)
	for _, l := range sent1.Match(`203\.0\.113\.30`) {
		if strings.Contains(l, "802.1Q") {
			t.Errorf("the flat network left hv1 tagged: %s", l)
		}
	}
	for _, l := range sent2.Match(`10\.2\.0\.`) {
		if !strings.Contains(l, "vlan 100,") {
			t.Errorf("the vlan network left hv2 untagged: %s", l)
		}
	}

	// Two VMs of the vlan network on different chassis: through the
	// physical network, tagged, each ARP answered on its own chassis.
	vmV1, pV1 := lab.vm(hv1, vlan, "10.2.0.11")
	lab.waitActive(pV1)
	ovstest.Eventually(t, 10*time.Second, "the vlan VMs reach each other", func() bool { return vmV1.Ping("10.2.0.10") == nil })
	sent1.Wait(`vlan 100, p 0, ethertype IPv4 .*10\.2\.0\.11 > 10\.2\.0\.10: ICMP echo request`, 5*time.Second)

	// hv3 maps no physical network: a port of the vlan network plugged
	// there is refused, with a reason, and nothing reaches it.
	var refused struct {
		Port struct {
			Status     string         `json:"status"`
			Host       string         `json:"binding:host_id"`
			VIFType    string         `json:"binding:vif_type"`
			VIFDetails map[string]any `json:"binding:vif_details"`
		} `json:"port"`
	}
	vm3, p3 := lab.vm(hv3, vlan, "10.2.0.13")
	ovstest.Eventually(t, 10*time.Second, "the binding on hv3 refused", func() bool {
		_, err := lab.call("GET", "/v2.0/ports/"+p3, nil, &refused)
		return err == nil && refused.Port.Host == hv3.m.id && refused.Port.VIFType == "binding_failed"
	})
	if refused.Port.Status != "DOWN" || !strings.Contains(fmt.Sprint(refused.Port.VIFDetails), labPhysnet) {
		t.Errorf("the refused port: %+v", refused.Port)
	}
	if err := host.Ping("10.2.0.13"); err == nil {
		t.Errorf("the vlan host reached a port its chassis cannot carry")
	}
	_ = vm3

	// An overlay VM on hv1 routes to the vlan host through R: hv1 asks
	// the host's MAC (the first packets wait for it), then sends with its
	// own DVR MAC, tagged; the host answers through R's interface on the
	// vlan network, which one chassis answers for.
	a, aSub := lab.overlay("A", "10.0.0.0/24")
	lab.newRouter("R", aSub, vlanSub)
	vmA, pA := lab.routedVM(hv1, a, "10.0.0.10", "10.0.0.1")
	lab.waitActive(pA)
	ovstest.Eventually(t, 15*time.Second, "the overlay VM reaches the vlan host through R", func() bool {
		return vmA.Ping("10.2.0.100") == nil
	})
	sent1.Wait(fmt.Sprintf(`%s > %s, ethertype 802\.1Q \(0x8100\), length \d+: vlan 100, p 0, ethertype IPv4 .*10\.0\.0\.10 > 10\.2\.0\.100: ICMP echo request`,
		regexp.QuoteMeta(lab.dvrMAC(hv1)), regexp.QuoteMeta(host.MAC)), 5*time.Second)
	srv := host.ServeTCP(t, "10.2.0.100:8080")
	connects(t, vmA.NetNS, srv.Addr, "10.0.0.10", 10*time.Second)

	// A static route of R: 10.99.0.0/24 via a VM of A (on hv2) that owns
	// 10.99.0.1; its port allows the prefix as an address pair.
	vmB, pB := lab.vmPort(hv2, a, map[string]any{"network_id": a, "fixed_ips": []map[string]string{{"ip_address": "10.0.0.20"}},
		"allowed_address_pairs": []map[string]string{{"ip_address": "10.99.0.0/24"}}})
	lab.waitActive(pB)
	for _, cmd := range [][]string{{"ip", "addr", "add", "10.99.0.1/32", "dev", "lo"}, {"ip", "route", "add", "default", "via", "10.0.0.1"}} {
		if out, err := vmB.Exec(cmd...); err != nil {
			t.Fatalf("%v: %v %s", cmd, err, out)
		}
	}
	var routers struct {
		Routers []struct {
			ID string `json:"id"`
		} `json:"routers"`
	}
	if _, err := lab.call("GET", "/v2.0/routers?name=R", nil, &routers); err != nil || len(routers.Routers) != 1 {
		t.Fatalf("router R: %v %+v", err, routers)
	}
	if code, err := lab.call("PUT", "/v2.0/routers/"+routers.Routers[0].ID, map[string]any{"router": map[string]any{
		"routes": []map[string]string{{"destination": "10.99.0.0/24", "nexthop": "10.0.0.20"}}}}, nil); err != nil || code != 200 {
		t.Fatalf("routes: %d %v", code, err)
	}
	ovstest.Eventually(t, 10*time.Second, "the static route to 10.99.0.1", func() bool { return vmA.Ping("10.99.0.1") == nil })
}

// TestSNATAndFloatingIPs: a VM without a floating IP reaches the internet
// through SNAT on the gateway chassis, seen as the router's gateway
// address; a VM with one is reached by the outside at it, answers from
// it, and is served on its own chassis alone — ARP answered with that
// chassis' DVR MAC, traffic on its uplink only — and follows the VM when
// it migrates. A port forwarding reaches a VM's TCP service; a deleted
// floating IP is reached no more.
func TestSNATAndFloatingIPs(t *testing.T) {
	lab := newExternalLab(t, 3, []int{3})
	lab.dumpOnFailure(t)
	hv1, hv2, hv3 := lab.hvs[0], lab.hvs[1], lab.hvs[2]
	ext, _ := lab.providerNetwork("public", "flat", 0, labExternal, labRouterIP, true)
	a, aSub := lab.overlay("A", "10.0.0.0/24")
	r := lab.newRouter("R", aSub)
	gw := lab.setGateway(r, ext)
	vm1, p1 := lab.routedVM(hv1, a, "10.0.0.11", "10.0.0.1")
	vm2, p2 := lab.routedVM(hv2, a, "10.0.0.12", "10.0.0.1")
	lab.waitActive(p1, p2)
	internet := lab.internet.ServeTCP(t, labInternetIP+":8080")
	sent := []*ovstest.LiveCapture{lab.uplink(hv1).CaptureSent(""), lab.uplink(hv2).CaptureSent(""), lab.uplink(hv3).CaptureSent("")}

	// SNAT: out through hv3, seen as the gateway address.
	took := connects(t, vm1.NetNS, internet.Addr, gw, 15*time.Second)
	t.Logf("first SNAT connection from hv1 through hv3: %s", took)
	sent[2].Wait(regexp.QuoteMeta(gw)+`\.\d+ > 198\.51\.100\.10\.8080: Flags \[S\]`, 5*time.Second)
	for i := 0; i < 2; i++ {
		if l := sent[i].Match(`> 198\.51\.100\.10\.8080`); len(l) > 0 {
			t.Errorf("hv%d put SNAT traffic on its uplink: %s", i+1, l[0])
		}
	}

	// A floating IP on vm2 (hv2).
	var fip struct {
		FloatingIP struct {
			ID      string `json:"id"`
			Address string `json:"floating_ip_address"`
		} `json:"floatingip"`
	}
	if code, err := lab.call("POST", "/v2.0/floatingips", map[string]any{"floatingip": map[string]any{
		"floating_network_id": ext, "port_id": p2}}, &fip); err != nil || code != http.StatusCreated {
		t.Fatalf("floating IP: %d %v", code, err)
	}
	f := fip.FloatingIP.Address
	web := vm2.ServeTCP(t, "10.0.0.12:8080")
	// vm2's default group admits its members only: the outside is
	// filtered on the way in through the floating IP too, until a rule
	// lets it in.
	time.Sleep(500 * time.Millisecond)
	if r := lab.internet.ConnectTCP(f+":8080", time.Second); r.Outcome == ovstest.TCPConnected {
		t.Fatalf("the outside reached vm2 through its floating IP past its security group: %v", r)
	}
	lab.admitFromAnywhere()
	took = connects(t, lab.internet.NetNS, f+":8080", labInternetIP, 10*time.Second)
	t.Logf("the outside reached the floating IP %s after %s", f, took)
	if err := lab.internet.Ping(f); err != nil {
		t.Errorf("the outside pings the floating IP: %v", err)
	}
	connects(t, vm2.NetNS, internet.Addr, f, 5*time.Second) // vm2 goes out as its floating IP
	hv2MAC := lab.dvrMAC(hv2)
	if got := lab.router.Neighbour(f); got != hv2MAC {
		t.Errorf("the outside router has %s at %q, want hv2's DVR MAC %s", f, got, hv2MAC)
	}
	sent[1].Wait(regexp.QuoteMeta(hv2MAC)+` > .* `+regexp.QuoteMeta(f)+`\.8080 > 198\.51\.100\.10\.\d+: Flags \[S\.\]`, 5*time.Second)
	for _, i := range []int{0, 2} {
		if l := sent[i].Match(regexp.QuoteMeta(f) + `[ .]`); len(l) > 0 {
			t.Errorf("hv%d put the floating IP's traffic on its uplink: %s", i+1, l[0])
		}
	}
	_ = web
	// From inside to the floating IP: vm1 (SNAT on hv3) reaches vm2 at
	// it, hairpinning through both NATs on the physical network.
	connects(t, vm1.NetNS, f+":8080", gw, 5*time.Second)

	// ICMP errors come back through the NAT, to the VM behind the
	// floating IP and to the one behind SNAT: TTL exceeded from the
	// outside router, and fragmentation needed from a smaller MTU past
	// it (path MTU discovery).
	for _, vm := range []*ovstest.VM{vm1, vm2} {
		// Three tries: the outside router rate-limits its ICMP errors.
		out, _ := vm.Exec("ping", "-c", "3", "-i", "0.5", "-W", "3", "-t", "2", labInternetIP)
		if !strings.Contains(out, "Time to live exceeded") {
			t.Errorf("%s, TTL 2 to the internet: want time exceeded from the outside router, got\n%s", vm.IP, out)
		}
	}
	for _, cmd := range [][]string{{"ip", "link", "set", ovstest.RouterUpstream, "mtu", "1300"}} {
		if out, err := lab.router.Exec(cmd...); err != nil {
			t.Fatalf("%v: %v %s", cmd, err, out)
		}
	}
	if out, err := lab.internet.Exec("ip", "link", "set", "eth0", "mtu", "1300"); err != nil {
		t.Fatalf("internet MTU: %v %s", err, out)
	}
	for _, vm := range []*ovstest.VM{vm1, vm2} {
		out, _ := vm.Exec("ping", "-c", "2", "-i", "0.3", "-W", "3", "-M", "do", "-s", "1400", labInternetIP)
		if !strings.Contains(out, "mtu = 1300") && !strings.Contains(out, "mtu=1300") {
			t.Errorf("%s, 1428 bytes with DF past an MTU of 1300: want fragmentation needed (mtu 1300), got\n%s", vm.IP, out)
		}
	}

	// The VM migrates to hv1: hv1 announces the floating IP with its own
	// DVR MAC and serves it.
	hv1MAC := lab.dvrMAC(hv1)
	hv2.ovs.Vsctl("del-port", "br-int", vm2.Tap)
	start := time.Now()
	moved := hv1.ovs.AddVM("br-int", p2, vm2.MAC, vm2.IP)
	_, _ = moved.Exec("ip", "link", "set", "eth0", "mtu", "1450")
	_, _ = moved.Exec("ip", "route", "add", "default", "via", "10.0.0.1")
	moved.ServeTCP(t, "10.0.0.12:8080")
	ovstest.Eventually(t, 10*time.Second, "the outside router learns the floating IP at hv1", func() bool {
		return lab.router.Neighbour(f) == hv1MAC
	})
	t.Logf("migration: the outside router had the floating IP at hv1's DVR MAC %s after plugging", time.Since(start))
	connects(t, lab.internet.NetNS, f+":8080", labInternetIP, 10*time.Second)
	t.Logf("migration: the outside reached the floating IP on hv1 %s after plugging", time.Since(start))

	// A port forwarding: TCP 2222 of a second floating IP to vm1's 8080.
	var fip2 struct {
		FloatingIP struct {
			ID      string `json:"id"`
			Address string `json:"floating_ip_address"`
		} `json:"floatingip"`
	}
	if code, err := lab.call("POST", "/v2.0/floatingips", map[string]any{"floatingip": map[string]any{"floating_network_id": ext}}, &fip2); err != nil || code != http.StatusCreated {
		t.Fatalf("second floating IP: %d %v", code, err)
	}
	if code, err := lab.call("POST", "/v2.0/floatingips/"+fip2.FloatingIP.ID+"/port_forwardings", map[string]any{"port_forwarding": map[string]any{
		"protocol": "tcp", "external_port": 2222, "internal_port": 8080, "internal_port_id": p1, "internal_ip_address": "10.0.0.11"}}, nil); err != nil || code != http.StatusCreated {
		t.Fatalf("port forwarding: %d %v", code, err)
	}
	vm1.ServeTCP(t, "10.0.0.11:8080")
	connects(t, lab.internet.NetNS, fip2.FloatingIP.Address+":2222", labInternetIP, 10*time.Second)

	// Deleting the first floating IP: the outside reaches it no more, and
	// a connection open through it stops.
	moved.Serve(t, "10.0.0.12:7", func(c net.Conn) { _, _ = io.Copy(c, c) }) // echo
	conn := dialFrom(t, lab.internet.NetNS, f+":7")
	if err := roundTrip(conn, "before"); err != nil {
		t.Fatalf("an echo through the floating IP: %v", err)
	}
	if code, err := lab.call("DELETE", "/v2.0/floatingips/"+fip.FloatingIP.ID, nil, nil); err != nil || code != http.StatusNoContent {
		t.Fatalf("delete floating IP: %d %v", code, err)
	}
	ovstest.Eventually(t, 10*time.Second, "the deleted floating IP unreachable", func() bool {
		return lab.internet.ConnectTCP(f+":8080", time.Second).Outcome != ovstest.TCPConnected
	})
	if err := roundTrip(conn, "after"); err == nil {
		t.Errorf("the connection through the deleted floating IP still echoes")
	}

	// SNAT off: the router routes its subnet out untranslated, and the
	// outside (routing 10.0.0.0/24 to the router's gateway) sees the VM.
	if out, err := lab.router.Exec("ip", "route", "add", "10.0.0.0/24", "via", gw); err != nil {
		t.Fatalf("outside route: %v %s", err, out)
	}
	if code, err := lab.call("PUT", "/v2.0/routers/"+r, map[string]any{"router": map[string]any{"external_gateway_info": map[string]any{
		"network_id": ext, "enable_snat": false}}}, nil); err != nil || code != 200 {
		t.Fatalf("enable_snat false: %d %v", code, err)
	}
	connects(t, vm1.NetNS, internet.Addr, "10.0.0.11", 10*time.Second)
}

// dialFrom opens a TCP connection from ns.
func dialFrom(t *testing.T, ns *ovstest.NetNS, addr string) net.Conn {
	t.Helper()
	c, err := ns.DialContext(context.Background(), "tcp4", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, ns.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends a line and waits up to 2 s for its echo.
func roundTrip(c net.Conn, line string) error {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if got != line+"\n" {
		return fmt.Errorf("echo %q, want %q", got, line)
	}
	return nil
}

// TestSNATFailoverWithTheLeader: the gateway chassis is the raft
// leader's (the router's id is chosen so): killing it costs an election
// before the new leader can record the chassis lost, and new outbound
// connections work again through the other gateway chassis.
func TestSNATFailoverWithTheLeader(t *testing.T) {
	lab := newExternalLab(t, 3, []int{1, 2})
	lab.dumpOnFailure(t)
	hv1, hv3 := lab.hvs[0], lab.hvs[2]
	var status struct {
		Cluster struct {
			Leader string `json:"leader"`
		} `json:"cluster"`
	}
	if _, err := lab.call("GET", "/v2.0/cluster", nil, &status); err != nil || status.Cluster.Leader != "hv1" {
		t.Skipf("hv1 is not the leader (%q, %v)", status.Cluster.Leader, err)
	}
	ext, _ := lab.providerNetwork("public", "flat", 0, labExternal, labRouterIP, true)
	a, aSub := lab.overlay("A", "10.0.0.0/24")
	id := ""
	for i := 0; id == ""; i++ {
		c := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		if view.GatewayScore(c, "hv1") > view.GatewayScore(c, "hv2") {
			id = c
		}
	}
	lab.create("/v2.0/routers", map[string]any{"router": map[string]any{"id": id, "name": "R"}})
	if code, err := lab.call("PUT", "/v2.0/routers/"+id+"/add_router_interface", map[string]any{"subnet_id": aSub}, nil); err != nil || code != 200 {
		t.Fatalf("add_router_interface: %d %v", code, err)
	}
	gw := lab.setGateway(id, ext)
	vm, p := lab.routedVM(hv3, a, "10.0.0.13", "10.0.0.1")
	lab.waitActive(p)
	internet := lab.internet.ServeTCP(t, labInternetIP+":8080")
	c := lab.uplink(hv1).CaptureSent("tcp port 8080")
	connects(t, vm.NetNS, internet.Addr, gw, 15*time.Second)
	time.Sleep(300 * time.Millisecond)
	if len(c.Stop()) == 0 {
		t.Fatal("the leader's chassis did not carry the SNAT traffic")
	}
	kill := time.Now()
	hv1.m.kill()
	hv1.ovs.Stop()
	lab.hvs = lab.hvs[1:] // the API through hv2 from now on
	connects(t, vm.NetNS, internet.Addr, gw, 20*time.Second)
	t.Logf("failover with the leader: new outbound connections through hv2 work %s after the kill (%s)", time.Since(kill).Round(time.Millisecond), kill.UTC().Format("15:04:05.000"))
	logLiveness(t, lab.hvs)
}

// logLiveness logs what the nodes' logs say of elections and chassis
// reachability: where a failover's time went.
func logLiveness(t *testing.T, hvs []*hypervisor) {
	for _, h := range hvs {
		b, err := os.ReadFile(h.m.logPath)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "reachability") || strings.Contains(l, "election") || strings.Contains(l, "entering leader") ||
				strings.Contains(l, "leader changed") {
				t.Logf("%s: %s", h.m.id, l)
			}
		}
	}
}

// TestSNATFailover: with two gateway chassis, the router's SNAT runs on
// one; stopping that chassis' wyvernd and OVS moves it to the other, and
// new outbound connections work again (the time it took is logged).
func TestSNATFailover(t *testing.T) {
	lab := newExternalLab(t, 3, []int{2, 3})
	lab.dumpOnFailure(t)
	hv1 := lab.hvs[0]
	ext, _ := lab.providerNetwork("public", "flat", 0, labExternal, labRouterIP, true)
	a, aSub := lab.overlay("A", "10.0.0.0/24")
	r := lab.newRouter("R", aSub)
	gw := lab.setGateway(r, ext)
	vm, p := lab.routedVM(hv1, a, "10.0.0.11", "10.0.0.1")
	lab.waitActive(p)
	internet := lab.internet.ServeTCP(t, labInternetIP+":8080")
	connects(t, vm.NetNS, internet.Addr, gw, 15*time.Second)

	// Which gateway chassis carried it: the one whose uplink sent it.
	var active *hypervisor
	for _, h := range lab.hvs[1:] {
		c := lab.uplink(h).CaptureSent("tcp port 8080")
		connects(t, vm.NetNS, internet.Addr, gw, 5*time.Second)
		time.Sleep(300 * time.Millisecond)
		if len(c.Stop()) > 0 {
			active = h
		}
	}
	if active == nil {
		t.Fatal("no gateway chassis carried the SNAT traffic")
	}
	standby := lab.hvs[1]
	if active == standby {
		standby = lab.hvs[2]
	}
	t.Logf("SNAT on %s; stopping its wyvernd and OVS", active.m.id)
	kill := time.Now()
	active.m.kill()
	active.ovs.Stop()
	took := connects(t, vm.NetNS, internet.Addr, gw, 20*time.Second)
	t.Logf("failover: new outbound connections through %s work %s after the kill", standby.m.id, time.Since(kill).Round(time.Millisecond))
	_ = took
	logLiveness(t, lab.hvs)
	c := lab.uplink(standby).CaptureSent("tcp port 8080")
	connects(t, vm.NetNS, internet.Addr, gw, 5*time.Second)
	c.Wait(regexp.QuoteMeta(gw)+`\.\d+ > 198\.51\.100\.10\.8080`, 5*time.Second)

	// The chassis comes back (OVS, then its node): the leader finds its
	// heartbeats answered and records it reachable again.
	unreachable := func() bool {
		var out struct {
			Chassis struct {
				Unreachable bool `json:"unreachable"`
			} `json:"chassis"`
		}
		_, err := lab.call("GET", "/v2.0/chassis/"+active.m.id, nil, &out)
		return err == nil && out.Chassis.Unreachable
	}
	if !unreachable() {
		t.Fatalf("%s is not recorded unreachable", active.m.id)
	}
	active.ovs.RestartOVSDB()
	active.ovs.RestartVswitchd()
	active.m.start(t)
	ovstest.Eventually(t, 30*time.Second, active.m.id+" reachable again", func() bool { return !unreachable() })
	connects(t, vm.NetNS, internet.Addr, gw, 10*time.Second)
}
