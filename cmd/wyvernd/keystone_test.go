package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/keystonetest"
)

// keystoneCacheSeconds is the validation cache bound the node is given:
// a revoked token must be refused within it.
const keystoneCacheSeconds = 3

// keystoneNode is a wyvernd with --auth keystone against a real Keystone,
// with two member projects and the admin.
type keystoneNode struct {
	t       *testing.T
	ks      *keystonetest.Keystone
	m       *member
	alpha   string // project ids
	beta    string
	adminPW string
}

func startKeystoneNode(t *testing.T) *keystoneNode {
	ks := keystonetest.Start(t, keystonetest.Options{TokenTTL: 20 * time.Second})
	user, password, project := ks.ServiceUser(t)
	c := newCluster(t)
	conf := filepath.Join(c.dir, "wyvernd.yaml")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "keystone:\n  username: %s\n  password: %s\n  project_name: %s\n  cache_seconds: %d\n",
		user, password, project, keystoneCacheSeconds), 0o600); err != nil {
		t.Fatal(err)
	}
	m := c.add("auto", "--auth", "keystone", "--keystone-url", ks.URL(), "--config", conf)
	waitHealthy(t, m)
	ks.RegisterService(t, "network", "neutron", "http://"+m.api+"/")
	n := &keystoneNode{t: t, ks: ks, m: m}
	n.alpha, n.beta = ks.CreateProject(t, "alpha"), ks.CreateProject(t, "beta")
	ks.CreateUser(t, "alice", "alice-pw", n.alpha, "member")
	ks.CreateUser(t, "bob", "bob-pw", n.beta, "member")
	_, n.adminPW, _ = ks.Admin()
	return n
}

func (n *keystoneNode) token(user, password, project string) string {
	tok, _ := n.ks.Token(n.t, user, password, project)
	return tok
}

// as sends one request with a token ("" for none).
func (n *keystoneNode) as(token, method, path string, body any) (int, map[string]any) {
	n.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+n.m.api+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := client.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

func (n *keystoneNode) create(token, path string, body map[string]any) map[string]any {
	n.t.Helper()
	code, out := n.as(token, "POST", path, body)
	if code != http.StatusCreated {
		n.t.Fatalf("POST %s %v: %d %v", path, body, code, out)
	}
	for _, v := range out {
		return v.(map[string]any)
	}
	return nil
}

// TestKeystoneScopesEveryRequest: tokens from a real Keystone work; no
// token, a bad one, a revoked one (within the cache bound) and an expired
// one get 401; project alpha cannot list, show, change or delete beta's
// network, subnet, port or router (404), nor plug into beta's private
// network; a member setting binding:host_id or provider:segmentation_id
// gets 403.
func TestKeystoneScopesEveryRequest(t *testing.T) {
	n := startKeystoneNode(t)
	early := n.token("bob", "bob-pw", "beta") // expires first; checked last
	_, earlyExp := n.ks.Token(t, "bob", "bob-pw", "beta")
	alice, bob := n.token("alice", "alice-pw", "alpha"), n.token("bob", "bob-pw", "beta")
	admin := n.token("admin", n.adminPW, "admin")

	for _, tok := range []string{"", "not-a-token", alice + "x"} {
		if code, _ := n.as(tok, "GET", "/v2.0/networks", nil); code != http.StatusUnauthorized {
			t.Errorf("token %.12q: %d, want 401", tok, code)
		}
	}
	if code, _ := n.as("", "GET", "/", nil); code != http.StatusOK {
		t.Errorf("version discovery without a token: %d", code)
	}

	// Beta's resources, made by bob.
	bnet := n.create(bob, "/v2.0/networks", map[string]any{"network": map[string]any{"name": "beta-net"}})
	if bnet["project_id"] != n.beta {
		t.Fatalf("bob's network belongs to %v, want beta %s", bnet["project_id"], n.beta)
	}
	bsub := n.create(bob, "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": bnet["id"], "cidr": "10.2.0.0/24", "ip_version": 4}})
	bport := n.create(bob, "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": bnet["id"]}})
	brouter := n.create(bob, "/v2.0/routers", map[string]any{"router": map[string]any{"name": "beta-r"}})
	anet := n.create(alice, "/v2.0/networks", map[string]any{"network": map[string]any{"name": "alpha-net"}})

	for plural, id := range map[string]any{"networks": bnet["id"], "subnets": bsub["id"], "ports": bport["id"], "routers": brouter["id"]} {
		path := fmt.Sprintf("/v2.0/%s/%s", plural, id)
		_, list := n.as(alice, "GET", "/v2.0/"+plural, nil)
		if strings.Contains(fmt.Sprint(list), fmt.Sprint(id)) {
			t.Errorf("alice lists beta's %s", plural)
		}
		if code, _ := n.as(alice, "GET", path, nil); code != http.StatusNotFound {
			t.Errorf("alice GET %s: %d, want 404", path, code)
		}
		singular := strings.TrimSuffix(plural, "s")
		if code, _ := n.as(alice, "PUT", path, map[string]any{singular: map[string]any{"name": "taken"}}); code != http.StatusNotFound {
			t.Errorf("alice PUT %s: %d, want 404", path, code)
		}
		if code, _ := n.as(alice, "DELETE", path, nil); code != http.StatusNotFound {
			t.Errorf("alice DELETE %s: %d, want 404", path, code)
		}
		if code, _ := n.as(bob, "GET", path, nil); code != http.StatusOK {
			t.Errorf("bob GET his own %s: %d", path, code)
		}
	}
	if code, out := n.as(alice, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": bnet["id"]}}); code != http.StatusNotFound {
		t.Errorf("alice plugs into beta's private network: %d %v, want 404", code, out)
	}
	if code, out := n.as(alice, "POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": anet["id"], "binding:host_id": "hv1"}}); code != http.StatusForbidden {
		t.Errorf("alice sets binding:host_id: %d %v, want 403", code, out)
	}
	if code, out := n.as(alice, "POST", "/v2.0/networks", map[string]any{"network": map[string]any{"provider:segmentation_id": 4242}}); code != http.StatusForbidden {
		t.Errorf("alice sets provider:segmentation_id: %d %v, want 403", code, out)
	}
	if code, _ := n.as(alice, "GET", "/v2.0/chassis", nil); code != http.StatusForbidden {
		t.Errorf("alice lists chassis: %d, want 403", code)
	}
	// The admin sees both projects and may set what members may not.
	_, all := n.as(admin, "GET", "/v2.0/networks", nil)
	if got := len(all["networks"].([]any)); got != 2 {
		t.Errorf("admin lists %d networks, want 2", got)
	}
	n.create(admin, "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": anet["id"], "binding:host_id": "hv1"}})

	// Revoked: refused within the cache bound.
	if code, _ := n.as(alice, "GET", "/v2.0/networks", nil); code != http.StatusOK {
		t.Fatalf("alice before revocation: %d", code)
	}
	n.ks.Revoke(t, alice)
	revoked := time.Now()
	for {
		code, _ := n.as(alice, "GET", "/v2.0/networks", nil)
		if code == http.StatusUnauthorized {
			t.Logf("revoked token refused %v after revocation (cache bound %ds)", time.Since(revoked).Round(time.Millisecond), keystoneCacheSeconds)
			break
		}
		if time.Since(revoked) > keystoneCacheSeconds*time.Second+2*time.Second {
			t.Fatalf("a revoked token still works %v after revocation", time.Since(revoked))
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Expired: refused once Keystone's expiry passes.
	if code, _ := n.as(early, "GET", "/v2.0/networks", nil); code != http.StatusOK {
		t.Fatalf("bob's early token: %d", code)
	}
	time.Sleep(time.Until(earlyExp) + 500*time.Millisecond)
	if code, _ := n.as(early, "GET", "/v2.0/networks", nil); code != http.StatusUnauthorized {
		t.Errorf("an expired token: %d, want 401", code)
	}
}

// TestOpenstackCLI drives Wyvern with the unmodified openstack CLI: with
// password auth through Keystone's catalog against --auth keystone, and
// with --os-auth-type none against an --auth none node.
func TestOpenstackCLI(t *testing.T) {
	n := startKeystoneNode(t)
	osc := func(env []string, args ...string) (string, error) {
		cmd := exec.Command("/usr/bin/openstack", args...)
		cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}, env...)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	creds := func(user, pw, project string) []string {
		return []string{"OS_AUTH_URL=" + n.ks.URL(), "OS_USERNAME=" + user, "OS_PASSWORD=" + pw, "OS_PROJECT_NAME=" + project,
			"OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=Default", "OS_IDENTITY_API_VERSION=3", "OS_INTERFACE=public"}
	}
	alice, bob := creds("alice", "alice-pw", "alpha"), creds("bob", "bob-pw", "beta")
	id, err := osc(alice, "network", "create", "cli-net", "-f", "value", "-c", "id")
	if err != nil {
		t.Fatalf("openstack network create as alice: %v\n%s", err, id)
	}
	if out, err := osc(alice, "subnet", "create", "cli-sub", "--network", id, "--subnet-range", "10.7.0.0/24", "-f", "value", "-c", "cidr"); err != nil || out != "10.7.0.0/24" {
		t.Fatalf("openstack subnet create: %v\n%s", err, out)
	}
	if out, err := osc(alice, "port", "create", "cli-port", "--network", id, "-f", "value", "-c", "status"); err != nil || out != "DOWN" {
		t.Fatalf("openstack port create: %v\n%s", err, out)
	}
	if out, err := osc(alice, "network", "list", "-f", "value", "-c", "Name"); err != nil || out != "cli-net" {
		t.Errorf("alice's network list: %v\n%s", err, out)
	}
	if out, err := osc(bob, "network", "list", "-f", "value", "-c", "Name"); err != nil || out != "" {
		t.Errorf("bob's network list shows alice's: %v\n%s", err, out)
	}
	if out, err := osc(bob, "network", "show", id); err == nil || !strings.Contains(out, "No Network found") && !strings.Contains(out, "404") {
		t.Errorf("bob shows alice's network: %v\n%s", err, out)
	}
	if out, err := osc(bob, "network", "delete", id); err == nil {
		t.Errorf("bob deleted alice's network: %s", out)
	}
	if out, err := osc(alice, "network", "create", "seg", "--provider-segment", "77", "--provider-network-type", "vxlan"); err == nil || !strings.Contains(out, "403") && !strings.Contains(strings.ToLower(out), "forbidden") && !strings.Contains(out, "policy") {
		t.Errorf("alice set a segmentation id: %v\n%q", err, out)
	}
	// Each project's default group, made by alice's first port and by
	// bob's first list; neither sees the other's.
	alpha, _ := osc(alice, "network", "show", id, "-f", "value", "-c", "project_id")
	if out, err := osc(alice, "security", "group", "list", "-f", "value", "-c", "Name", "-c", "Project"); err != nil || out != "default "+alpha {
		t.Errorf("alice's security groups: %v\n%s", err, out)
	}
	aliceDefault, _ := osc(alice, "security", "group", "show", "default", "-f", "value", "-c", "id")
	if out, err := osc(alice, "port", "show", "cli-port", "-f", "value", "-c", "security_group_ids"); err != nil || out != "['"+aliceDefault+"']" {
		t.Errorf("alice's port's groups: %v\n%s (her default group: %s)", err, out, aliceDefault)
	}
	if out, err := osc(bob, "security", "group", "list", "-f", "value", "-c", "ID", "-c", "Name"); err != nil || strings.Contains(out, aliceDefault) || !strings.HasSuffix(out, " default") {
		t.Errorf("bob's security groups: %v\n%s", err, out)
	}
	if out, err := osc(bob, "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", aliceDefault); err == nil {
		t.Errorf("bob added a rule to alice's default group: %s", out)
	}

	// --auth none, --os-auth-type none.
	c := newCluster(t)
	open := c.add("auto")
	waitHealthy(t, open)
	none := []string{}
	endpoint := []string{"--os-auth-type", "none", "--os-endpoint", "http://" + open.api + "/"}
	nid, err := osc(none, append(endpoint, "network", "create", "lab-net", "-f", "value", "-c", "id")...)
	if err != nil {
		t.Fatalf("openstack network create, no auth: %v\n%s", err, nid)
	}
	if out, err := osc(none, append(endpoint, "network", "show", nid, "-f", "value", "-c", "name")...); err != nil || out != "lab-net" {
		t.Errorf("openstack network show, no auth: %v\n%s", err, out)
	}
	// The fields DHCP, DNS and Nova read, as the CLI spells them.
	if out, err := osc(none, append(endpoint, "network", "set", nid, "--dns-domain", "lab.example.")...); err != nil {
		t.Errorf("openstack network set --dns-domain: %v\n%s", err, out)
	}
	if out, err := osc(none, append(endpoint, "subnet", "create", "lab-sub", "--network", nid, "--subnet-range", "10.5.0.0/24",
		"--dns-nameserver", "10.5.0.53", "--host-route", "destination=10.9.0.0/16,gateway=10.5.0.254", "-f", "value", "-c", "dns_nameservers")...); err != nil || out != "['10.5.0.53']" {
		t.Errorf("openstack subnet create with DNS servers and a host route: %v\n%s", err, out)
	}
	out, err := osc(none, append(endpoint, "port", "create", "lab-port", "--network", nid, "--dns-name", "vm1",
		"--extra-dhcp-option", "name=mtu,value=1400", "-f", "value", "-c", "dns_name", "-c", "extra_dhcp_opts", "-c", "binding_vif_type")...)
	if err != nil || !strings.Contains(out, "vm1") || !strings.Contains(out, "'opt_name': 'mtu'") || !strings.Contains(out, "unbound") {
		t.Errorf("openstack port create with a dns_name and an extra DHCP option: %v\n%s", err, out)
	}

	// The way out, as an operator and a tenant make it: an external flat
	// network, a router's gateway on it, a floating IP for a port.
	run := func(args ...string) string {
		t.Helper()
		out, err := osc(none, append(endpoint, args...)...)
		if err != nil {
			t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	ext := run("network", "create", "public", "--external", "--provider-network-type", "flat",
		"--provider-physical-network", "physnet1", "-f", "value", "-c", "id")
	run("subnet", "create", "public-v4", "--network", ext, "--subnet-range", "203.0.113.0/24", "--no-dhcp",
		"--gateway", "203.0.113.1")
	if out := run("network", "list", "--external", "-f", "value", "-c", "Name"); out != "public" {
		t.Errorf("openstack network list --external: %q", out)
	}
	run("router", "create", "edge")
	run("router", "add", "subnet", "edge", "lab-sub")
	run("router", "set", "edge", "--external-gateway", ext)
	gw := run("router", "show", "edge", "-f", "json", "-c", "external_gateway_info")
	if !strings.Contains(gw, ext) || !strings.Contains(gw, "203.0.113.") || !strings.Contains(gw, `"enable_snat": true`) {
		t.Errorf("the router's gateway: %s", gw)
	}
	fip := run("floating", "ip", "create", "public", "-f", "value", "-c", "floating_ip_address")
	if !strings.HasPrefix(fip, "203.0.113.") {
		t.Fatalf("the floating IP's address: %q", fip)
	}
	run("floating", "ip", "set", "--port", "lab-port", fip)
	if out := run("floating", "ip", "show", fip, "-f", "value", "-c", "fixed_ip_address", "-c", "status"); !strings.HasPrefix(out, "10.5.0.") || !strings.Contains(out, "ACTIVE") {
		t.Errorf("the associated floating IP: %q", out)
	}
	run("floating", "ip", "unset", "--port", fip)
	run("floating", "ip", "delete", fip)
	if out := run("floating", "ip", "list", "-f", "value", "-c", "ID"); out != "" {
		t.Errorf("floating IPs left after the delete: %q", out)
	}

	// Security groups, as the CLI makes and reads them. lab-port, of no
	// project, holds the default group of the objects of no project.
	web := run("security", "group", "create", "web", "-f", "value", "-c", "id")
	run("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", "--remote-ip", "10.0.0.0/8", "web")
	run("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "80", "--remote-group", "web", "web")
	run("security", "group", "rule", "create", "--protocol", "icmp", "web")
	run("port", "set", "--security-group", "web", "lab-port")
	labDefault := run("security", "group", "show", "default", "-f", "value", "-c", "id")
	if out := run("port", "show", "lab-port", "-f", "value", "-c", "security_group_ids"); out != "['"+labDefault+"', '"+web+"']" {
		t.Errorf("lab-port's groups: %s (default %s, web %s)", out, labDefault, web)
	}
	names := strings.Split(run("security", "group", "list", "-f", "value", "-c", "Name"), "\n")
	sort.Strings(names)
	if strings.Join(names, ",") != "default,web" {
		t.Errorf("openstack security group list: %q", names)
	}
	var rules []string
	for _, line := range strings.Split(run("security", "group", "rule", "list", "web", "-f", "value", "-c", "IP Protocol", "-c", "IP Range",
		"-c", "Port Range", "-c", "Direction", "-c", "Remote Security Group"), "\n") {
		rules = append(rules, strings.Join(strings.Fields(line), " "))
	}
	sort.Strings(rules)
	if want := []string{"None 0.0.0.0/0 egress None", "icmp 0.0.0.0/0 ingress None", "tcp 0.0.0.0/0 80:80 ingress " + web,
		"tcp 10.0.0.0/8 22:22 ingress None"}; strings.Join(rules, "|") != strings.Join(want, "|") {
		t.Errorf("openstack security group rule list web:\n got %q\nwant %q", rules, want)
	}
	var shown struct {
		Name, Description string
		Stateful          bool
		Rules             []struct {
			Protocol      string
			RemoteGroupID string `json:"remote_group_id"`
			PortMin       *int   `json:"port_range_min"`
		}
	}
	if err := json.Unmarshal([]byte(run("security", "group", "show", "web", "-f", "json")), &shown); err != nil {
		t.Fatal(err)
	}
	if shown.Name != "web" || shown.Description != "web" || !shown.Stateful || len(shown.Rules) != 4 {
		t.Errorf("openstack security group show web: %+v", shown)
	}
	for _, r := range shown.Rules {
		if r.Protocol == "tcp" && r.PortMin != nil && *r.PortMin == 80 && r.RemoteGroupID != web {
			t.Errorf("the rule for port 80 admits %q, not web's members", r.RemoteGroupID)
		}
	}
	if out, err := osc(none, append(endpoint, "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", "--remote-ip", "10.0.0.0/8", "web")...); err == nil || !strings.Contains(out, "409") {
		t.Errorf("the same rule twice: %v\n%s", err, out)
	}
	if out, err := osc(none, append(endpoint, "port", "set", "--disable-port-security", "lab-port")...); err == nil || !strings.Contains(out, "Port has security group associated") {
		t.Errorf("port security off with groups held: %v\n%s", err, out)
	}
	if out, err := osc(none, append(endpoint, "security", "group", "delete", "web")...); err == nil || !strings.Contains(out, "in use") {
		t.Errorf("deleting a group a port holds: %v\n%s", err, out)
	}
	run("port", "set", "--no-security-group", "--disable-port-security", "lab-port")
	run("security", "group", "delete", "web")
	if out := run("port", "show", "lab-port", "-f", "value", "-c", "port_security_enabled", "-c", "security_group_ids"); out != "False\n[]" {
		t.Errorf("lab-port without port security: %q", out)
	}
}
