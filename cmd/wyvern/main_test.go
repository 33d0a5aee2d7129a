package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/wyvern-sdn/wyvern/internal/daemontest"
	"github.com/wyvern-sdn/wyvern/internal/ovstest"
	"github.com/wyvern-sdn/wyvern/internal/tlsconfig/tlstest"
)

var wyvernd string // built once by TestMain

func TestMain(m *testing.M) {
	// Run as the CLI itself (asExecutable), so that a test sees its exit
	// status.
	if os.Getenv("WYVERN_TEST_AS_CLI") == "1" {
		main()
		os.Exit(0)
	}
	daemontest.Main(m, "../wyvernd", &wyvernd)
}

// startDaemon runs a one-node wyvernd for the CLI to talk to, with extra
// flags; health is asked through hc (nil: plain HTTP).
func startDaemon(t *testing.T, extra ...string) string {
	return startDaemonWith(t, http.DefaultClient, "http://", extra...)
}

func startDaemonWith(t *testing.T, hc *http.Client, scheme string, extra ...string) string {
	t.Helper()
	return startNode(t, "cli", hc, scheme, extra...)
}

// startNode runs a wyvernd with this node id.
func startNode(t *testing.T, id string, hc *http.Client, scheme string, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	api := ovstest.FreeAddr(t)
	cmd := exec.Command(wyvernd, append([]string{"--node-id", id, "--data-dir", filepath.Join(dir, "data"), "--raft-addr", ovstest.FreeAddr(t),
		"--api-addr", api, "--openflow-addr", "tcp:" + ovstest.FreeAddr(t)}, extra...)...)
	logf, _ := os.Create(filepath.Join(dir, "wyvernd.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_, _ = cmd.Process.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := hc.Get(scheme + api + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return api
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "wyvernd.log"))
			t.Fatalf("wyvernd not ready:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func run(t *testing.T, api string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRoot(&out, &errb)
	root.SetArgs(append([]string{"--api", api}, args...))
	err := root.Execute()
	return out.String(), errb.String(), err
}

func mustRun(t *testing.T, api string, args ...string) string {
	t.Helper()
	out, errOut, err := run(t, api, args...)
	if err != nil {
		t.Fatalf("wyvern %s: %v %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

func TestCLIAgainstARealNode(t *testing.T) {
	api := startDaemon(t)
	mustRun(t, api, "network", "create", "blue")
	mustRun(t, api, "network", "create", "red", "--type", "gre", "--segmentation-id", "77")
	mustRun(t, api, "subnet", "create", "--network", "blue", "--cidr", "10.1.0.0/24", "--name", "blue-v4")
	mustRun(t, api, "subnet", "create", "--network", "red", "--cidr", "10.2.0.0/24", "--name", "red-v4")
	mustRun(t, api, "port", "create", "--network", "blue", "--name", "vm1", "--fixed-ip", "subnet=blue-v4,ip=10.1.0.10", "--host", "hv1")
	mustRun(t, api, "router", "create", "r1")
	mustRun(t, api, "router", "add-interface", "r1", "blue-v4")
	mustRun(t, api, "router", "add-interface", "r1", "red-v4")

	table := mustRun(t, api, "network", "list")
	if !strings.Contains(table, "ID") || !strings.Contains(table, "blue") || !strings.Contains(table, "gre") || !strings.Contains(table, "77") {
		t.Fatalf("network table:\n%s", table)
	}
	js := mustRun(t, api, "port", "list", "--filter", "binding:host_id=hv1", "-o", "json")
	var ports []map[string]any
	if err := json.Unmarshal([]byte(js), &ports); err != nil || len(ports) != 1 || ports[0]["name"] != "vm1" {
		t.Fatalf("port list -o json with a filter: %v\n%s", err, js)
	}
	if ips := fmt.Sprint(ports[0]["fixed_ips"]); !strings.Contains(ips, "10.1.0.10") {
		t.Fatalf("fixed ip: %s", ips)
	}
	show := mustRun(t, api, "network", "show", "red")
	if !strings.Contains(show, "provider:segmentation_id") || !strings.Contains(show, "77") {
		t.Fatalf("show by name:\n%s", show)
	}
	routerPorts := mustRun(t, api, "port", "list", "--filter", "device_owner=network:router_interface_distributed")
	if strings.Count(routerPorts, "10.1.0.1") != 1 || strings.Count(routerPorts, "10.2.0.1") != 1 {
		t.Fatalf("router interfaces hold the gateways:\n%s", routerPorts)
	}
	status := mustRun(t, api, "cluster", "status")
	if !strings.Contains(status, "leader: cli") || !strings.Contains(status, "voter") {
		t.Fatalf("cluster status:\n%s", status)
	}

	// A refused request: a clear one-line error, non-zero exit.
	_, _, err := run(t, api, "network", "delete", "blue")
	if err == nil || !strings.Contains(err.Error(), "NetworkInUse") {
		t.Fatalf("deleting a network in use: %v", err)
	}
	_, _, err = run(t, api, "port", "show", "nope")
	if err == nil || !strings.Contains(err.Error(), "no port") {
		t.Fatalf("show of a missing port: %v", err)
	}
	mustRun(t, api, "router", "remove-interface", "r1", "blue-v4")
	mustRun(t, api, "port", "delete", "vm1")
	mustRun(t, api, "network", "delete", "blue")
	if out := mustRun(t, api, "network", "list", "-o", "json"); strings.Contains(out, `"blue"`) {
		t.Fatalf("blue survived its delete: %s", out)
	}
}

// TestCLIFloatingIPs: an external network, a router's gateway on it and
// a floating IP for a port behind the router, named by its address.
func TestCLIFloatingIPs(t *testing.T) {
	api := startDaemon(t)
	mustRun(t, api, "network", "create", "public", "--type", "flat", "--physical-network", "physnet1", "--external")
	mustRun(t, api, "subnet", "create", "--network", "public", "--cidr", "192.0.2.0/24", "--name", "public-v4")
	mustRun(t, api, "network", "create", "inner")
	mustRun(t, api, "subnet", "create", "--network", "inner", "--cidr", "10.1.0.0/24", "--name", "inner-v4")
	mustRun(t, api, "port", "create", "--network", "inner", "--name", "vm1", "--fixed-ip", "subnet=inner-v4,ip=10.1.0.10")
	mustRun(t, api, "router", "create", "r1")
	mustRun(t, api, "router", "add-interface", "r1", "inner-v4")
	if out := mustRun(t, api, "router", "set-gateway", "r1", "public", "--fixed-ip", "subnet=public-v4,ip=192.0.2.2"); !strings.Contains(out, "192.0.2.2") {
		t.Fatalf("set-gateway:\n%s", out)
	}
	if out := mustRun(t, api, "network", "list", "--filter", "router:external=True"); !strings.Contains(out, "public") || strings.Contains(out, "inner") {
		t.Fatalf("external networks:\n%s", out)
	}

	js := mustRun(t, api, "floatingip", "create", "public", "--port", "vm1", "-o", "json")
	var fip map[string]any
	if err := json.Unmarshal([]byte(js), &fip); err != nil || fip["fixed_ip_address"] != "10.1.0.10" || fip["status"] != "ACTIVE" {
		t.Fatalf("floatingip create: %v\n%s", err, js)
	}
	addr := fip["floating_ip_address"].(string)
	if table := mustRun(t, api, "floatingip", "list"); !strings.Contains(table, addr) || !strings.Contains(table, "10.1.0.10") {
		t.Fatalf("floatingip list:\n%s", table)
	}
	if show := mustRun(t, api, "floatingip", "show", addr); !strings.Contains(show, fip["id"].(string)) {
		t.Fatalf("floatingip show by address:\n%s", show)
	}
	if _, _, err := run(t, api, "router", "clear-gateway", "r1"); err == nil || !strings.Contains(err.Error(), "RouterExternalGatewayInUseByFloatingIp") {
		t.Fatalf("clearing a gateway a floating IP needs: %v", err)
	}
	mustRun(t, api, "floatingip", "delete", addr)
	mustRun(t, api, "router", "clear-gateway", "r1")
	js = mustRun(t, api, "router", "show", "r1", "-o", "json")
	var r map[string]any
	if err := json.Unmarshal([]byte(js), &r); err != nil || r["external_gateway_info"] != nil {
		t.Fatalf("router after clear-gateway: %v\n%s", err, js)
	}
}

// TestCLIOverHTTPS: against a node serving its API over TLS, the CLI
// trusts the cluster CA given with --cacert, and refuses the connection
// without it.
func TestCLIOverHTTPS(t *testing.T) {
	ca := tlstest.NewCA(t, t.TempDir(), "cloud")
	files := ca.Issue(t, "api")
	pem, _ := os.ReadFile(files.CA)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	api := startDaemonWith(t, hc, "https://", "--tls-cert", files.Cert, "--tls-key", files.Key, "--tls-ca", files.CA)
	mustRun(t, "https://"+api, "--cacert", files.CA, "network", "create", "secure")
	if out := mustRun(t, "https://"+api, "--cacert", files.CA, "network", "list"); !strings.Contains(out, "secure") {
		t.Errorf("network list over HTTPS:\n%s", out)
	}
	if _, _, err := run(t, "https://"+api, "network", "list"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("the CLI trusted an unknown CA: %v", err)
	}
	if _, _, err := run(t, "http://"+api, "network", "list"); err == nil {
		t.Error("plain HTTP to an HTTPS API answered")
	}
}

// TestCLISecurityGroups: a group, rules of each kind, a port that holds
// it, and the refusals a client sees.
func TestCLISecurityGroups(t *testing.T) {
	api := startDaemon(t)
	mustRun(t, api, "network", "create", "blue")
	mustRun(t, api, "subnet", "create", "--network", "blue", "--cidr", "10.1.0.0/24")
	if out := mustRun(t, api, "security-group", "create", "web", "--description", "front ends"); !strings.Contains(out, "front ends") || !strings.Contains(out, "egress") {
		t.Fatalf("security-group create:\n%s", out)
	}
	mustRun(t, api, "security-group", "add-rule", "web", "--protocol", "tcp", "--port", "22", "--remote-ip", "10.0.0.0/8")
	mustRun(t, api, "security-group", "add-rule", "web", "--protocol", "tcp", "--port", "8000:8080", "--remote-group", "web")
	mustRun(t, api, "security-group", "add-rule", "web", "--protocol", "icmp", "--icmp-type", "8")
	js := mustRun(t, api, "security-group", "rules", "web", "-o", "json")
	var rules []map[string]any
	if err := json.Unmarshal([]byte(js), &rules); err != nil || len(rules) != 4 {
		t.Fatalf("rules: %v\n%s", err, js)
	}
	got := map[string]bool{}
	for _, r := range rules {
		got[fmt.Sprintf("%v %v %v %v %v %v", r["direction"], r["protocol"], r["port_range_min"], r["port_range_max"], r["remote_ip_prefix"], r["remote_group_id"] != nil)] = true
	}
	for _, want := range []string{"egress <nil> <nil> <nil> <nil> false", "ingress tcp 22 22 10.0.0.0/8 false", "ingress tcp 8000 8080 <nil> true", "ingress icmp 8 <nil> <nil> false"} {
		if !got[want] {
			t.Errorf("no rule %q among %v", want, got)
		}
	}
	if _, _, err := run(t, api, "security-group", "add-rule", "web", "--protocol", "tcp", "--port", "22", "--remote-ip", "10.0.0.0/8"); err == nil || !strings.Contains(err.Error(), "SecurityGroupRuleExists") {
		t.Errorf("the same rule twice: %v", err)
	}
	if _, _, err := run(t, api, "security-group", "add-rule", "web", "--protocol", "gre", "--port", "22"); err == nil || !strings.Contains(err.Error(), "SecurityGroupInvalidProtocolForPort") {
		t.Errorf("ports of GRE: %v", err)
	}
	// A port named no group gets the default one; set-groups replaces it.
	out := mustRun(t, api, "port", "create", "--network", "blue", "--name", "vm1", "-o", "json")
	var port map[string]any
	if err := json.Unmarshal([]byte(out), &port); err != nil || len(port["security_groups"].([]any)) != 1 {
		t.Fatalf("port create: %v\n%s", err, out)
	}
	if out := mustRun(t, api, "port", "set-groups", "vm1", "web", "-o", "json"); !strings.Contains(out, `"security_groups": [`) || strings.Contains(out, port["security_groups"].([]any)[0].(string)) {
		t.Fatalf("set-groups:\n%s", out)
	}
	if _, _, err := run(t, api, "security-group", "delete", "web"); err == nil || !strings.Contains(err.Error(), "SecurityGroupInUse") {
		t.Errorf("deleting a group a port holds: %v", err)
	}
	mustRun(t, api, "port", "create", "--network", "blue", "--name", "vm2", "--no-port-security", "--no-security-group")
	if _, _, err := run(t, api, "port", "create", "--network", "blue", "--no-port-security", "--security-group", "web"); err == nil || !strings.Contains(err.Error(), "PortSecurityAndIPRequiredForSecurityGroups") {
		t.Errorf("a group without port security: %v", err)
	}
	mustRun(t, api, "port", "set-groups", "vm1")
	mustRun(t, api, "security-group", "delete", "web")
	if out := mustRun(t, api, "security-group", "list"); strings.Contains(out, "web") || !strings.Contains(out, "default") {
		t.Errorf("security-group list after the delete:\n%s", out)
	}
}

// TestEveryCommandsHelp: every command's --help works — no flag of a
// command clashes with a global one (cobra panics on a shorthand used
// twice, only when that command runs).
func TestEveryCommandsHelp(t *testing.T) {
	var walk func(path []string, cmd *cobra.Command)
	n := 0
	walk = func(path []string, cmd *cobra.Command) {
		for _, sub := range cmd.Commands() {
			p := append(append([]string(nil), path...), sub.Name())
			var out, errOut bytes.Buffer
			root := newRoot(&out, &errOut)
			root.SetArgs(append(p, "--help"))
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("wyvern %s --help panics: %v", strings.Join(p, " "), r)
					}
				}()
				if err := root.Execute(); err != nil {
					t.Errorf("wyvern %s --help: %v", strings.Join(p, " "), err)
				}
			}()
			n++
			walk(p, sub)
		}
	}
	walk(nil, newRoot(io.Discard, io.Discard))
	if n < 40 {
		t.Errorf("only %d commands", n)
	}
	t.Logf("%d commands", n)
}
