package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
)

// keysInOrder are a JSON object's keys as they stand in the text.
func keysInOrder(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	var keys []string
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", raw)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// TestCLIOutputFormats: -f json|yaml|value and -c on lists, shows and
// the answers of create and set, against a real node.
func TestCLIOutputFormats(t *testing.T) {
	api := startDaemon(t)
	mustRun(t, api, "network", "create", "blue", "--mtu", "1400")
	mustRun(t, api, "network", "create", "red", "--type", "gre", "--segmentation-id", "77")

	// json: the objects, with -c only the fields asked, in their order.
	var rows []json.RawMessage
	out := mustRun(t, api, "network", "list", "-f", "json", "-c", "name", "-c", "id", "-c", "provider:segmentation_id")
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 2 {
		t.Fatalf("list -f json -c: %v\n%s", err, out)
	}
	for _, r := range rows {
		if got := keysInOrder(t, r); !reflect.DeepEqual(got, []string{"name", "id", "provider:segmentation_id"}) {
			t.Errorf("list -f json -c name -c id -c provider:segmentation_id: keys %v", got)
		}
	}
	// Without -c, json gives the objects whole.
	var whole []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, api, "network", "list", "-f", "json")), &whole); err != nil || len(whole) != 2 || whole[0]["revision_number"] == nil {
		t.Fatalf("list -f json: %v %v", err, whole)
	}
	// An empty list is [], not null.
	if out := mustRun(t, api, "port", "list", "-f", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("an empty list as json: %q", out)
	}

	// yaml: the same objects.
	var ys []map[string]any
	out = mustRun(t, api, "network", "list", "-f", "yaml", "-c", "name", "-c", "mtu")
	if err := yaml.Unmarshal([]byte(out), &ys); err != nil || len(ys) != 2 {
		t.Fatalf("list -f yaml: %v\n%s", err, out)
	}
	got := map[string]any{}
	for _, y := range ys {
		if len(y) != 2 {
			t.Errorf("list -f yaml -c name -c mtu: %v", y)
		}
		got[y["name"].(string)] = y["mtu"]
	}
	if got["blue"] != 1400 || got["red"] != 1458 {
		t.Errorf("list -f yaml: %v\n%s", got, out)
	}
	var y map[string]any
	out = mustRun(t, api, "network", "show", "red", "-f", "yaml")
	if err := yaml.Unmarshal([]byte(out), &y); err != nil || y["provider:segmentation_id"] != 77 || y["name"] != "red" {
		t.Fatalf("show -f yaml: %v %v\n%s", err, y, out)
	}

	// value: values only, one row per line, in -c order.
	out = mustRun(t, api, "network", "list", "-f", "value", "-c", "name", "-c", "mtu", "-c", "provider:network_type")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 || !slices.Contains(lines, "blue 1400 vxlan") || !slices.Contains(lines, "red 1458 gre") {
		t.Fatalf("list -f value: %q", out)
	}
	id := strings.TrimSpace(mustRun(t, api, "network", "show", "red", "-f", "value", "-c", "id"))
	if len(id) != 36 {
		t.Fatalf("show -f value -c id: %q", id)
	}
	if out := mustRun(t, api, "network", "show", id, "-f", "value", "-c", "name", "-c", "mtu"); out != "red\n1458\n" {
		t.Errorf("show -f value -c name -c mtu: %q", out)
	}
	// The answer of a create and of a set, as the openstack CLI's
	// `-f value -c id`.
	created := strings.TrimSpace(mustRun(t, api, "network", "create", "green", "-f", "value", "-c", "id"))
	if created == "" || strings.ContainsAny(created, " \n") {
		t.Errorf("create -f value -c id: %q", created)
	}
	if out := mustRun(t, api, "network", "set", created, "--mtu", "1300", "-f", "value", "-c", "mtu", "-c", "name"); out != "1300\ngreen\n" {
		t.Errorf("set -f value: %q", out)
	}

	// table with -c: those columns only.
	out = mustRun(t, api, "network", "list", "-c", "name", "-c", "mtu")
	if header := strings.Fields(strings.SplitN(out, "\n", 2)[0]); !reflect.DeepEqual(header, []string{"NAME", "MTU"}) {
		t.Errorf("list -c name -c mtu: header %v\n%s", header, out)
	}
	if out := mustRun(t, api, "network", "show", "red", "-c", "mtu"); strings.Fields(out)[0] != "mtu" || len(strings.Fields(out)) != 2 {
		t.Errorf("show -c mtu: %q", out)
	}
	// Other commands: the cluster's members.
	if out := mustRun(t, api, "cluster", "member", "list", "-f", "value", "-c", "id", "-c", "state"); out != "cli leader\n" {
		t.Errorf("cluster member list -f value: %q", out)
	}
	if out := mustRun(t, api, "cluster", "status", "-f", "value", "-c", "leader"); out != "cli\n" {
		t.Errorf("cluster status -f value -c leader: %q", out)
	}

	// An unknown column is an error naming it; so is an unknown format.
	for _, args := range [][]string{
		{"network", "list", "-c", "name", "-c", "colour"},
		{"network", "show", "red", "-f", "json", "-c", "colour"},
		{"network", "set", "red", "--description", "d", "-c", "colour"},
	} {
		_, _, err := run(t, api, args...)
		if err == nil || !strings.Contains(err.Error(), "-c colour: no such column") || !strings.Contains(err.Error(), "mtu") {
			t.Errorf("wyvern %s: %v", strings.Join(args, " "), err)
		}
	}
	if _, _, err := run(t, api, "network", "list", "-f", "xml"); err == nil || !strings.Contains(err.Error(), `-f "xml"`) {
		t.Errorf("-f xml: %v", err)
	}
	// The older -o still works.
	if out := mustRun(t, api, "network", "show", "red", "-o", "json"); !strings.Contains(out, `"name": "red"`) {
		t.Errorf("-o json: %s", out)
	}
}

// TestCLIPunts: `wyvern punts` shows a real node's counters as a table,
// -f json gives the answer as it is, -c picks counters.
func TestCLIPunts(t *testing.T) {
	api := startDaemon(t)
	out := mustRun(t, api, "punts")
	for _, want := range []string{"node: cli", "COUNTER", "held_dropped", "no bridge connected"} {
		if !strings.Contains(out, want) {
			t.Errorf("punts: no %q in\n%s", want, out)
		}
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, api, "punts", "-f", "json")), &raw); err != nil || raw["node"] != "cli" || raw["switches"] == nil || raw["received"] == nil {
		t.Fatalf("punts -f json: %v %v", err, raw)
	}
	if out := mustRun(t, api, "punts", "-f", "value", "-c", "node", "-c", "received"); out != "cli\n0\n" {
		t.Errorf("punts -f value -c node -c received: %q", out)
	}
}

// runCLI runs the CLI as a process of its own (this test binary, as
// main), for its exit status.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "WYVERN_TEST_AS_CLI=1", "WYVERN_API=http://127.0.0.1:1")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// TestCLIExitStatus: an unknown command at any level, a missing
// argument and an unknown flag exit 1 with a message naming them; a
// parent command alone prints its help, saying how to list, and exits 0.
func TestCLIExitStatus(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus" for "wyvern"`},
		{[]string{"network", "bogus"}, `unknown command "bogus" for "wyvern network"`},
		{[]string{"cluster", "member", "bogus"}, `unknown command "bogus" for "wyvern cluster member"`},
		{[]string{"floatingip", "port-forwarding", "bogus", "x"}, `unknown command "bogus" for "wyvern floatingip port-forwarding"`},
		{[]string{"network", "show"}, "usage: wyvern network show ID|NAME"},
		{[]string{"cluster", "member", "remove"}, "usage: wyvern cluster member remove ID"},
		{[]string{"port", "set", "a", "b"}, "accepts 1 arg(s), received 2"},
		{[]string{"network", "list", "--colour"}, "unknown flag: --colour"},
		{[]string{"help", "network", "bogus"}, `unknown help topic "network bogus"`},
	} {
		out, errOut, code := runCLI(t, tc.args...)
		if code != 1 || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("wyvern %s: exit %d, stdout %q, stderr %q; want exit 1 and %q", strings.Join(tc.args, " "), code, out, errOut, tc.want)
		}
	}
	for _, tc := range []struct{ args []string }{{[]string{"network"}}, {[]string{"cluster", "member"}}, {nil}, {[]string{"help", "network", "set"}}} {
		out, errOut, code := runCLI(t, tc.args...)
		if code != 0 || !strings.Contains(out, "Usage:") || errOut != "" {
			t.Errorf("wyvern %s: exit %d, stdout %q, stderr %q; want its help, exit 0", strings.Join(tc.args, " "), code, out, errOut)
		}
	}
	if out, _, _ := runCLI(t, "network"); !strings.Contains(out, "wyvern network list") {
		t.Errorf("wyvern network: the help does not say how to list:\n%s", out)
	}
}

// TestCLIMemberRemove: a two-node cluster; removing an id that is no
// member is an error naming the members, exit 1, and removes nothing;
// removing the second node leaves the first alone.
func TestCLIMemberRemove(t *testing.T) {
	first := startNode(t, "m1", http.DefaultClient, "http://")
	startNode(t, "m2", http.DefaultClient, "http://", "--join", "http://"+first)
	if out := mustRun(t, first, "cluster", "member", "list", "-f", "value", "-c", "id"); out != "m1\nm2\n" {
		t.Fatalf("members: %q", out)
	}
	_, _, err := run(t, first, "cluster", "member", "remove", "m3")
	if err == nil || !strings.Contains(err.Error(), "no such member") || !strings.Contains(err.Error(), "m1, m2") {
		t.Fatalf("removing a non-member: %v", err)
	}
	_, errOut, code := runCLI(t, "--api", first, "cluster", "member", "remove", "m3")
	if code != 1 || !strings.Contains(errOut, "removing member m3: no such member") {
		t.Fatalf("removing a non-member, as a process: exit %d, %q", code, errOut)
	}
	if out := mustRun(t, first, "cluster", "member", "remove", "m2"); !strings.Contains(out, "removed member m2") {
		t.Fatalf("member remove: %q", out)
	}
	if out := mustRun(t, first, "cluster", "member", "list", "-f", "value", "-c", "id"); out != "m1\n" {
		t.Fatalf("members after the removal: %q", out)
	}
}

// TestCLIPuntsOfABridge: a real OVS bridge managed by the node, a VM
// that ARPs for an address nobody holds: `wyvern punts` shows the bridge,
// the VM's port among the punt sources with what it punted, and its
// meter.
func TestCLIPuntsOfABridge(t *testing.T) {
	o := ovstest.Start(t)
	of := ovstest.FreeAddr(t)
	o.NS.Forward(t, of, of) // ovs-vswitchd, in its namespace, reaches the node's OpenFlow
	api := startNode(t, "hv1", http.DefaultClient, "http://", "--ovsdb", o.DB(), "--encap-ip", "127.0.0.1",
		"--datapath-type", "netdev", "--openflow-addr", "tcp:"+of)
	mustRun(t, api, "network", "create", "blue")
	mustRun(t, api, "subnet", "create", "--network", "blue", "--cidr", "10.1.0.0/24")
	port := showJSON(t, api, "port", "create", "--network", "blue", "--name", "vm1", "--host", "hv1")
	id := port["id"].(string)
	vm := o.AddVM("br-int", id, port["mac_address"].(string), cell(port["fixed_ips"])+"/24")
	ovstest.Eventually(t, 20*time.Second, "vm1 ACTIVE", func() bool {
		return strings.TrimSpace(mustRun(t, api, "port", "show", id, "-f", "value", "-c", "status")) == "ACTIVE"
	})
	var out string
	ovstest.Eventually(t, 20*time.Second, "vm1's punts counted", func() bool {
		_, _ = vm.Exec("arping", "-c", "1", "-w", "1", "-I", "eth0", "10.1.0.77")
		out = mustRun(t, api, "punts")
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) >= 3 && f[0] == id && f[len(f)-2] != "0" {
				return true
			}
		}
		return false
	})
	for _, want := range []string{"node: hv1", "bridge ", "punts_received", "punt sources (fair queue):", "PORT_ID", "RECEIVED", "punt meters (datapath):", "SERVES", "rejected flows: none"} {
		if !strings.Contains(out, want) {
			t.Errorf("punts: no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "no bridge connected") || strings.Contains(out, "e+") {
		t.Errorf("punts: the bridge is missing, or a number in exponent form\n%s", out)
	}
}
