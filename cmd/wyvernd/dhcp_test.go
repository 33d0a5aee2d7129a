package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
)

// udhcpcScript records what busybox udhcpc was given and configures eth0
// with it: address, MTU, classless routes (option 121, which holds the
// default route too).
const udhcpcScript = `#!/bin/sh
event=$1
case "$1" in
bound|renew)
  ip addr flush dev "$interface"
  ip addr add "$ip/$mask" dev "$interface"
  [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
  set -- $staticroutes
  while [ $# -ge 2 ]; do ip route replace "$1" via "$2" dev "$interface"; shift 2; done
  ;;
esac
# Last, once eth0 is configured: the test reads this as done.
env | grep -E '^(ip|mask|subnet|router|dns|domain|hostname|mtu|staticroutes|lease|serverid)=' | sort > "$OUT.$event.tmp"
mv "$OUT.$event.tmp" "$OUT.$event"
`

// dhclientScript is the same for ISC dhclient, which hands option 121 over
// as a list of bytes: prefix length, its significant octets, the router.
// dhclient gives its script an environment of its own: OUT is written in.
const dhclientScript = `#!/bin/sh
case "$reason" in
BOUND|RENEW|REBIND|REBOOT)
  ip addr flush dev "$interface"
  ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"
  [ -n "$new_interface_mtu" ] && ip link set dev "$interface" mtu "$new_interface_mtu"
  set -- $new_rfc3442_classless_static_routes
  while [ $# -gt 0 ]; do
    len=$1; shift; n=$(( (len + 7) / 8 )); dst=""
    for i in 1 2 3 4; do
      if [ "$i" -le "$n" ]; then o=$1; shift; else o=0; fi
      dst="$dst${dst:+.}$o"
    done
    ip route replace "$dst/$len" via "$1.$2.$3.$4" dev "$interface"; shift 4
  done
  ;;
esac
env | grep -E '^(reason|new_)' | sort > "OUT.$reason.tmp"
mv "OUT.$reason.tmp" "OUT.$reason"
`

const dhclientConf = `option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers, interface-mtu, rfc3442-classless-static-routes;
`

// syncBuffer is a bytes.Buffer a running command writes while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// bareVM creates a port and plugs a VM namespace for it with no address:
// one that will ask DHCP.
func (tb *testbed) bareVM(h *hypervisor, port map[string]any) (*ovstest.VM, map[string]any) {
	tb.t.Helper()
	p := tb.create("/v2.0/ports", map[string]any{"port": port})
	ovstest.Eventually(tb.t, 20*time.Second, "br-int on hv"+fmt.Sprint(h.n), func() bool {
		_, err := h.ovs.VsctlErr("br-exists", "br-int")
		return err == nil
	})
	vm := h.ovs.AddVM("br-int", p["id"].(string), p["mac_address"].(string), "")
	return vm, p
}

func fixedIP(p map[string]any) string {
	return p["fixed_ips"].([]any)[0].(map[string]any)["ip_address"].(string)
}

// script writes an executable file.
func script(t *testing.T, dir, name, body string) string {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitFile waits for a file and returns it.
func waitFile(t *testing.T, path string, within time.Duration) string {
	t.Helper()
	var b []byte
	ovstest.Eventually(t, within, filepath.Base(path), func() bool {
		var err error
		b, err = os.ReadFile(path)
		return err == nil && len(b) > 0
	})
	return string(b)
}

// TestVMsBootWithDHCP: VMs with no address get their port's address,
// mask, router, MTU, DNS server, domain and host routes from their own
// chassis — busybox udhcpc on hv1, ISC dhclient on hv2 — and the routes
// and MTU are installed; then they ping across chassis. No DHCP crosses
// the underlay and nothing listens on UDP 67. dhclient, asking first for
// an address it does not have, is refused (NAK) and then bound. A RENEW
// after dns_nameservers changed brings the new servers. Internal DNS
// resolves a VM's dns_name and address in its network's dns_domain, and
// not a name of another network.
func TestVMsBootWithDHCP(t *testing.T) {
	tb := newTestbed(t, 2)
	hv1, hv2 := tb.hvs[0], tb.hvs[1]
	dir := t.TempDir()
	netA := tb.create("/v2.0/networks", map[string]any{"network": map[string]any{"name": "A", "mtu": 1400, "dns_domain": "cloud.example."}})
	subA := tb.create("/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": netA["id"], "cidr": "10.20.0.0/24",
		"host_routes": []any{map[string]any{"destination": "10.99.0.0/16", "nexthop": "10.20.0.254"}}}})
	// A router on A's gateway, as a cloud has: it answers ARP for the
	// DHCP server's address, where unicast RENEWs and DNS queries go.
	router := tb.create("/v2.0/routers", map[string]any{"router": map[string]any{"name": "r"}})
	tb.put("/v2.0/routers/"+router["id"].(string)+"/add_router_interface", map[string]any{"subnet_id": subA["id"]})
	netB := tb.create("/v2.0/networks", map[string]any{"network": map[string]any{"name": "B", "dns_domain": "cloud.example."}})
	tb.create("/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": netB["id"], "cidr": "10.30.0.0/24"}})
	tb.create("/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netB["id"], "dns_name": "gamma"}})

	alpha, pAlpha := tb.bareVM(hv1, map[string]any{"network_id": netA["id"], "dns_name": "alpha"})
	beta, pBeta := tb.bareVM(hv2, map[string]any{"network_id": netA["id"], "dns_name": "beta"})
	tb.waitActive(pAlpha["id"].(string), pBeta["id"].(string))
	ipAlpha, ipBeta := fixedIP(pAlpha), fixedIP(pBeta)

	wire1 := tb.underlay.Capture(1, "", 12*time.Second).Started()
	wire2 := tb.underlay.Capture(2, "", 12*time.Second).Started()

	// busybox udhcpc, kept running for the RENEW below.
	out := filepath.Join(dir, "alpha")
	udhcpc := alpha.Command("env", "OUT="+out, "busybox", "udhcpc", "-f", "-i", "eth0", "-s", script(t, dir, "udhcpc.sh", udhcpcScript), "-t", "5", "-T", "1")
	var udhcpcLog syncBuffer
	udhcpc.Stdout, udhcpc.Stderr = &udhcpcLog, &udhcpcLog
	start := time.Now()
	if err := udhcpc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = udhcpc.Process.Kill(); _ = udhcpc.Wait() })
	bound := waitFile(t, out+".bound", 10*time.Second)
	t.Logf("udhcpc bound in %v:\n%s", time.Since(start).Round(time.Millisecond), bound)
	for _, want := range []string{"ip=" + ipAlpha, "mask=24", "router=10.20.0.1", "dns=10.20.0.1", "domain=cloud.example", "hostname=alpha",
		"mtu=1400", "lease=86400", "serverid=10.20.0.1", "10.99.0.0/16 10.20.0.254", "0.0.0.0/0 10.20.0.1"} {
		if !strings.Contains(bound, want) {
			t.Errorf("udhcpc was not given %q", want)
		}
	}
	routes, _ := alpha.Exec("ip", "route")
	link, _ := alpha.Exec("ip", "link", "show", "eth0")
	if !strings.Contains(routes, "10.99.0.0/16 via 10.20.0.254") || !strings.Contains(routes, "default via 10.20.0.1") || !strings.Contains(link, "mtu 1400") {
		t.Errorf("alpha's routes and MTU:\n%s\n%s", routes, link)
	}

	// ISC dhclient, with a lease for an address that is not its port's:
	// it asks for that first (INIT-REBOOT), is refused, then binds.
	bout := filepath.Join(dir, "beta")
	lease := filepath.Join(dir, "beta.leases")
	if err := os.WriteFile(lease, []byte(`lease {
  interface "eth0";
  fixed-address 10.20.0.200;
  option subnet-mask 255.255.255.0;
  renew 4 2036/01/01 00:00:00;
  rebind 4 2036/01/01 00:00:00;
  expire 4 2036/01/01 00:00:00;
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "dhclient.pid")
	dhclient := beta.Command("dhclient", "-1", "-v", "-cf", script(t, dir, "dhclient.conf", dhclientConf),
		"-sf", script(t, dir, "dhclient.sh", strings.ReplaceAll(dhclientScript, "OUT", bout)), "-lf", lease, "-pf", pidFile, "eth0")
	log, err := dhclient.CombinedOutput()
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			var pid int
			if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGTERM)
			}
		}
	})
	if err != nil {
		t.Fatalf("dhclient: %v\n%s", err, log)
	}
	if !strings.Contains(string(log), "DHCPNAK from 10.20.0.1") {
		t.Errorf("dhclient asking for 10.20.0.200 was not refused:\n%s", log)
	}
	bBound := waitFile(t, bout+".BOUND", 10*time.Second)
	for _, want := range []string{"new_ip_address=" + ipBeta, "new_subnet_mask=255.255.255.0", "new_routers=10.20.0.1",
		"new_domain_name_servers=10.20.0.1", "new_domain_name=cloud.example", "new_interface_mtu=1400",
		"new_rfc3442_classless_static_routes=16 10 99 10 20 0 254 0 10 20 0 1"} {
		if !strings.Contains(bBound, want) {
			t.Errorf("dhclient was not given %q:\n%s", want, bBound)
		}
	}
	routes, _ = beta.Exec("ip", "route")
	if !strings.Contains(routes, "10.99.0.0/16 via 10.20.0.254") || !strings.Contains(routes, "default via 10.20.0.1") {
		t.Errorf("beta's routes:\n%s", routes)
	}

	if err := ping(alpha, ipBeta); err != nil {
		t.Errorf("alpha (hv1) to beta (hv2) after DHCP: %v", err)
	}

	// Internal DNS, from alpha, at the address DHCP gave it.
	dig := func(args ...string) string {
		o, _ := alpha.Exec(append([]string{"dig", "@10.20.0.1", "+time=2", "+tries=1"}, args...)...)
		return o
	}
	if got := strings.TrimSpace(dig("+short", "beta.cloud.example")); got != ipBeta {
		t.Errorf("beta.cloud.example resolved to %q, want %s", got, ipBeta)
	}
	if got := strings.TrimSpace(dig("+short", "-x", ipBeta)); got != "beta.cloud.example." {
		t.Errorf("%s resolved back to %q, want beta.cloud.example.", ipBeta, got)
	}
	if got := dig("gamma.cloud.example"); !strings.Contains(got, "status: NXDOMAIN") {
		t.Errorf("gamma, of another network, resolved from A:\n%s", got)
	}

	// RENEW after dns_nameservers changed: the new servers.
	code, err := tb.call("PUT", "/v2.0/subnets/"+subA["id"].(string), map[string]any{"subnet": map[string]any{"dns_nameservers": []string{"10.20.0.1", "10.20.0.53"}}}, nil)
	if err != nil || code != 200 {
		t.Fatalf("changing dns_nameservers: %d %v", code, err)
	}
	// The new reply reaches hv1's flows within moments; renew until it
	// is what comes back.
	var renew string
	ovstest.Eventually(t, 10*time.Second, "a RENEW bringing the new servers", func() bool {
		_ = os.Remove(out + ".renew")
		if err := udhcpc.Process.Signal(syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if b, err := os.ReadFile(out + ".renew"); err == nil && len(b) > 0 {
				renew = string(b)
				return strings.Contains(renew, "dns=10.20.0.1 10.20.0.53")
			}
		}
		return false
	})
	if !strings.Contains(udhcpcLog.String(), "sending renew to server 10.20.0.1") {
		t.Errorf("udhcpc did not renew by unicast to the server:\n%s", udhcpcLog.String())
	}

	// Nothing of it crossed the underlay, and no process serves DHCP.
	for i, c := range []*ovstest.Capture{wire1, wire2} {
		if lines := c.Lines("BOOTP"); len(lines) != 0 {
			t.Errorf("DHCP on hv%d's underlay link: %v", i+1, lines)
		}
	}
	for _, h := range tb.hvs {
		ss, err := h.ovs.NS.Exec("ss", "-lun")
		if err != nil || strings.Contains(ss, ":67 ") {
			t.Errorf("hv%d listens on UDP 67 (%v):\n%s", h.n, err, ss)
		}
	}
}
