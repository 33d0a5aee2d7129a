package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/daemontest"
	"github.com/wyvern-sdn/wyvern/internal/ovstest"
)

// hypervisor is one simulated hypervisor: OVS in a namespace on the
// underlay, and a wyvernd embedded next to it managing it through OVSDB.
type hypervisor struct {
	n   int
	ovs *ovstest.OVS
	m   *member
	api string
}

// testbed is a cloud of hypervisors whose wyvernds form one cluster.
type testbed struct {
	t        testing.TB
	underlay *ovstest.Underlay
	hvs      []*hypervisor
	client   *http.Client // dials from inside hv1's namespace
	c        *testCluster
	scheme   string // https when the nodes serve the API over TLS
}

// newTestbed starts count hypervisors, each with a wyvernd managing it,
// joined into one cluster; extraArgs go to every wyvernd.
func newTestbed(t testing.TB, count int, extraArgs ...string) *testbed {
	return newTestbedWith(t, count, testbedOptions{}, extraArgs...)
}

// testbedOptions change how a testbed is set up.
type testbedOptions struct {
	// token goes with the testbed's own API calls (an admin's, for
	// nodes with --auth keystone).
	token string
	// prepare runs in each hypervisor before its wyvernd starts.
	prepare func(h *hypervisor)
}

// tokenTransport sends every request with an X-Auth-Token.
type tokenTransport struct {
	base  http.RoundTripper
	token string
}

func (tt tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Auth-Token", tt.token)
	return tt.base.RoundTrip(r)
}

// newTestbedWith is newTestbed with options.
func newTestbedWith(t testing.TB, count int, opts testbedOptions, extraArgs ...string) *testbed {
	ovstest.Require(t)
	tb := &testbed{t: t, underlay: ovstest.NewUnderlay(t), c: newCluster(t), scheme: "http"}
	var roots *x509.CertPool
	for i, a := range extraArgs {
		if a == "--tls-ca" && i+1 < len(extraArgs) {
			pem, err := os.ReadFile(extraArgs[i+1])
			if err != nil {
				t.Fatal(err)
			}
			roots = x509.NewCertPool()
			roots.AppendCertsFromPEM(pem)
			tb.scheme = "https"
		}
	}
	for i := 1; i <= count; i++ {
		o := tb.underlay.AddHypervisor(i)
		ip := tb.underlay.IP(i)
		h := &hypervisor{n: i, ovs: o, api: ip + ":9696"}
		h.m = &member{ns: o.NS, id: fmt.Sprintf("hv%d", i), api: h.api, logPath: filepath.Join(tb.c.dir, fmt.Sprintf("hv%d.log", i))}
		h.m.args = []string{"--node-id", h.m.id, "--data-dir", filepath.Join(o.Dir, "data"),
			"--raft-addr", ip + ":7946", "--api-addr", h.api, "--openflow-addr", "tcp:127.0.0.1:6653",
			"--ovsdb", o.DB(), "--encap-ip", ip, "--datapath-type", "netdev"}
		h.m.args = append(h.m.args, extraArgs...)
		if i > 1 {
			h.m.args = append(h.m.args, "--join", tb.scheme+"://"+tb.hvs[0].api)
		}
		tb.c.members = append(tb.c.members, h.m)
		tb.hvs = append(tb.hvs, h)
		if i == 1 {
			var tr http.RoundTripper = &http.Transport{DialContext: o.NS.DialContext,
				TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}
			if opts.token != "" {
				tr = tokenTransport{tr, opts.token}
			}
			tb.client = &http.Client{Timeout: 10 * time.Second, Transport: tr}
		}
		if opts.prepare != nil {
			opts.prepare(h)
		}
		h.m.start(t)
		tb.waitHealthy(h)
	}
	// Every chassis registered, its bridge connected.
	ovstest.Eventually(t, 30*time.Second, "every chassis connected", func() bool {
		var out struct {
			Chassis []struct {
				Name      string `json:"name"`
				Connected bool   `json:"connected"`
			} `json:"chassis"`
		}
		if code, err := tb.call("GET", "/v2.0/chassis", nil, &out); err != nil || code != 200 {
			return false
		}
		n := 0
		for _, c := range out.Chassis {
			if c.Connected {
				n++
			}
		}
		return n == count
	})
	return tb
}

func (tb *testbed) call(method, path string, body, out any) (int, error) {
	return daemontest.Call(tb.client, method, tb.scheme+"://"+tb.hvs[0].api, path, body, out)
}

func (tb *testbed) waitHealthy(h *hypervisor) {
	tb.t.Helper()
	ovstest.Eventually(tb.t, 30*time.Second, h.m.id+" healthy", func() bool {
		code, _ := daemontest.Call(tb.client, "GET", tb.scheme+"://"+h.api, "/healthz", nil, nil)
		return code == 200
	})
}

func (tb *testbed) create(path string, body map[string]any) map[string]any {
	tb.t.Helper()
	var out map[string]any
	var code int
	var err error
	// 503 means an election is under way: retry, as a CMS would.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out = nil
		code, err = tb.call("POST", path, body, &out)
		if code != http.StatusServiceUnavailable && err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || code != http.StatusCreated {
		tb.t.Fatalf("POST %s %v: %d %v %v", path, body, code, err, out)
	}
	for _, v := range out {
		return v.(map[string]any)
	}
	return nil
}

// network creates a network of a type with one /24 subnet.
func (tb *testbed) network(name, typ string, seg int, cidr string) string {
	n := tb.create("/v2.0/networks", map[string]any{"network": map[string]any{"name": name,
		"provider:network_type": typ, "provider:segmentation_id": seg}})
	tb.create("/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": n["id"], "cidr": cidr}})
	return n["id"].(string)
}

// vm creates a port and plugs a VM namespace for it into a hypervisor.
func (tb *testbed) vm(h *hypervisor, network, ip string) (*ovstest.VM, string) {
	tb.t.Helper()
	port := map[string]any{"network_id": network}
	if ip != "" {
		port["fixed_ips"] = []map[string]string{{"ip_address": ip}}
	}
	return tb.vmPort(h, network, port)
}

// vmPort is vm with the whole port body given.
func (tb *testbed) vmPort(h *hypervisor, network string, port map[string]any) (*ovstest.VM, string) {
	tb.t.Helper()
	p := tb.create("/v2.0/ports", map[string]any{"port": port})
	addr := p["fixed_ips"].([]any)[0].(map[string]any)["ip_address"].(string)
	ovstest.Eventually(tb.t, 20*time.Second, "br-int on hv"+fmt.Sprint(h.n), func() bool {
		_, err := h.ovs.VsctlErr("br-exists", "br-int")
		return err == nil
	})
	vm := h.ovs.AddVM("br-int", p["id"].(string), p["mac_address"].(string), addr+"/24")
	// The network's MTU, as a CMS hands it to a VM (Neutron: by DHCP).
	var nw struct {
		Network struct {
			MTU int `json:"mtu"`
		} `json:"network"`
	}
	if _, err := tb.call("GET", "/v2.0/networks/"+network, nil, &nw); err != nil {
		tb.t.Fatal(err)
	}
	if _, err := vm.Exec("ip", "link", "set", "eth0", "mtu", fmt.Sprint(nw.Network.MTU)); err != nil {
		tb.t.Fatal(err)
	}
	return vm, p["id"].(string)
}

func (tb *testbed) waitActive(ports ...string) {
	tb.t.Helper()
	for _, id := range ports {
		ovstest.Eventually(tb.t, 30*time.Second, "port "+id+" ACTIVE", func() bool {
			var out struct {
				Port struct {
					Status string `json:"status"`
				} `json:"port"`
			}
			code, err := tb.call("GET", "/v2.0/ports/"+id, nil, &out)
			return err == nil && code == 200 && out.Port.Status == "ACTIVE"
		})
	}
}

func ipOf(vm *ovstest.VM) string { return strings.Split(vm.IP, "/")[0] }

func ping(vm *ovstest.VM, ip string) error {
	_, err := vm.Exec("ping", "-c", "3", "-i", "0.2", "-W", "2", ip)
	return err
}

// puntCounters are a node's /debug/punts, as far as the tests read them.
type puntCounters struct {
	Received uint64 `json:"received"`
	Switches []struct {
		Sources []struct {
			PortID   string `json:"port_id"`
			Received uint64 `json:"received"`
			Dropped  uint64 `json:"dropped"`
		} `json:"sources"`
		Meters []struct {
			PortID  string `json:"port_id"`
			Packets uint64 `json:"packets"`
			Dropped uint64 `json:"dropped"`
		} `json:"meters"`
	} `json:"switches"`
}

// punts reads a hypervisor's punt counters; it has one switch.
func (tb *testbed) punts(h *hypervisor) puntCounters {
	tb.t.Helper()
	var p puntCounters
	if _, err := daemontest.Call(tb.client, "GET", h.api, "/debug/punts", nil, &p); err != nil || len(p.Switches) != 1 {
		tb.t.Fatalf("/debug/punts of hv%d: %v %+v", h.n, err, p)
	}
	return p
}
