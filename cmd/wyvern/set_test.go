package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
)

// showJSON is `wyvern KIND show REF -f json`.
func showJSON(t *testing.T, api string, args ...string) map[string]any {
	t.Helper()
	var obj map[string]any
	out := mustRun(t, api, append(args, "-f", "json")...)
	if err := json.Unmarshal([]byte(out), &obj); err != nil {
		t.Fatalf("wyvern %s -f json: %v\n%s", strings.Join(args, " "), err, out)
	}
	return obj
}

// changed are the fields that differ, bookkeeping aside.
func changed(before, after map[string]any) []string {
	var keys []string
	for k := range after {
		if k == "revision_number" || k == "updated_at" {
			continue
		}
		if !reflect.DeepEqual(before[k], after[k]) {
			keys = append(keys, k)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// anyValue, in setChanges' want, is a field that changes to what the
// test checks itself.
const anyValue = "(any value)"

// setChanges runs a set command and checks, on the object the server
// shows afterwards, that exactly the fields want changed, to the values
// given.
func setChanges(t *testing.T, api string, show []string, set []string, want map[string]any) map[string]any {
	t.Helper()
	before := showJSON(t, api, show...)
	answer := mustRun(t, api, append(set, "-f", "json")...)
	var answered map[string]any
	if err := json.Unmarshal([]byte(answer), &answered); err != nil {
		t.Fatalf("wyvern %s: %v\n%s", strings.Join(set, " "), err, answer)
	}
	after := showJSON(t, api, show...)
	if !reflect.DeepEqual(answered, after) {
		t.Errorf("wyvern %s answered\n%v\nbut the server then shows\n%v", strings.Join(set, " "), answered, after)
	}
	var keys []string
	for k, v := range want {
		keys = append(keys, k)
		if v == anyValue {
			continue
		}
		got, _ := json.Marshal(after[k])
		exp, _ := json.Marshal(v)
		if string(got) != string(exp) {
			t.Errorf("wyvern %s: %s is %s, want %s", strings.Join(set, " "), k, got, exp)
		}
	}
	sort.Strings(keys)
	if got := changed(before, after); !reflect.DeepEqual(got, keys) {
		t.Errorf("wyvern %s changed %v, want exactly %v", strings.Join(set, " "), got, keys)
	}
	if before["revision_number"] == after["revision_number"] {
		t.Errorf("wyvern %s: revision_number stayed %v", strings.Join(set, " "), after["revision_number"])
	}
	return after
}

// TestCLISetChangesExactlyWhatIsGiven: set on every kind the API updates
// sends only the flags given; the server shows those fields changed and
// every other as it was.
func TestCLISetChangesExactlyWhatIsGiven(t *testing.T) {
	api := startDaemon(t)
	mustRun(t, api, "network", "create", "blue")
	mustRun(t, api, "network", "create", "public", "--type", "flat", "--physical-network", "physnet1", "--external")
	mustRun(t, api, "subnet", "create", "--network", "public", "--cidr", "192.0.2.0/24", "--name", "public-v4")
	mustRun(t, api, "subnet", "create", "--network", "blue", "--cidr", "10.1.0.0/24", "--name", "blue-v4")
	mustRun(t, api, "port", "create", "--network", "blue", "--name", "vm1", "--fixed-ip", "subnet=blue-v4,ip=10.1.0.10", "--host", "hv1")
	// --allowed-address as the openstack CLI spells it, and the shorter form.
	vm2 := showJSON(t, api, "port", "create", "--network", "blue", "--name", "vm2", "--fixed-ip", "subnet=blue-v4,ip=10.1.0.11",
		"--allowed-address", "ip-address=10.1.0.200", "--allowed-address", "10.1.0.201,fa:16:3e:00:02:01")
	if got := cell(vm2["allowed_address_pairs"]); got != "10.1.0.200,10.1.0.201" || !strings.Contains(fmt.Sprint(vm2["allowed_address_pairs"]), "fa:16:3e:00:02:01") {
		t.Fatalf("port create --allowed-address: %v", vm2["allowed_address_pairs"])
	}
	mustRun(t, api, "router", "create", "r1")
	mustRun(t, api, "router", "add-interface", "r1", "blue-v4")
	mustRun(t, api, "security-group", "create", "web")

	setChanges(t, api, []string{"network", "show", "blue"}, []string{"network", "set", "blue", "--mtu", "1400", "--description", "the blue one"},
		map[string]any{"mtu": 1400, "description": "the blue one"})
	blue := showJSON(t, api, "network", "show", "blue")["id"].(string)
	setChanges(t, api, []string{"network", "show", blue}, []string{"network", "update", "blue", "--disable", "--name", "azure"},
		map[string]any{"admin_state_up": false, "name": "azure"})
	setChanges(t, api, []string{"subnet", "show", "blue-v4"}, []string{"subnet", "set", "blue-v4", "--dns-nameserver", "192.0.2.53", "--dns-nameserver", "192.0.2.54",
		"--host-route", "destination=10.9.0.0/16,gateway=10.1.0.5", "--no-dhcp"},
		map[string]any{"dns_nameservers": []string{"192.0.2.53", "192.0.2.54"}, "host_routes": []map[string]string{{"destination": "10.9.0.0/16", "nexthop": "10.1.0.5"}}, "enable_dhcp": false})
	setChanges(t, api, []string{"subnet", "show", "blue-v4"}, []string{"subnet", "set", "blue-v4", "--no-dns-nameservers"},
		map[string]any{"dns_nameservers": []string{}})
	port := setChanges(t, api, []string{"port", "show", "vm1"}, []string{"port", "set", "vm1", "--host", "hv2", "--disable", "--dns-name", "vm-one",
		"--allowed-address", "ip-address=10.1.0.99,mac-address=fa:16:3e:00:00:99"},
		map[string]any{"binding:host_id": "hv2", "admin_state_up": false, "dns_name": "vm-one",
			"allowed_address_pairs": []map[string]string{{"ip_address": "10.1.0.99", "mac_address": "fa:16:3e:00:00:99"}}})
	// DHCP options merge: one added, another added, the first removed.
	optNames := func(p map[string]any) []string {
		var names []string
		for _, o := range p["extra_dhcp_opts"].([]any) {
			names = append(names, o.(map[string]any)["opt_name"].(string))
		}
		sort.Strings(names)
		return names
	}
	setChanges(t, api, []string{"port", "show", "vm1"}, []string{"port", "set", "vm1", "--extra-dhcp-option", "name=mtu,value=1400"},
		map[string]any{"extra_dhcp_opts": []map[string]any{{"opt_name": "mtu", "opt_value": "1400", "ip_version": 4}}})
	if p := setChanges(t, api, []string{"port", "show", "vm1"}, []string{"port", "set", "vm1", "--extra-dhcp-option", "name=ntp-server,value=192.0.2.123"},
		map[string]any{"extra_dhcp_opts": anyValue}); !reflect.DeepEqual(optNames(p), []string{"mtu", "ntp-server"}) {
		t.Errorf("a second DHCP option: %v", p["extra_dhcp_opts"])
	}
	if p := setChanges(t, api, []string{"port", "show", "vm1"}, []string{"port", "set", "vm1", "--extra-dhcp-option", "name=mtu"},
		map[string]any{"extra_dhcp_opts": anyValue}); !reflect.DeepEqual(optNames(p), []string{"ntp-server"}) {
		t.Errorf("a DHCP option removed: %v", p["extra_dhcp_opts"])
	}
	web := showJSON(t, api, "security-group", "show", "web")["id"]
	setChanges(t, api, []string{"port", "show", "vm1"}, []string{"port", "set", port["id"].(string), "--security-group", "web"},
		map[string]any{"security_groups": []any{web}})
	setChanges(t, api, []string{"router", "show", "r1"}, []string{"router", "set", "r1", "--route", "destination=10.8.0.0/16,gateway=10.1.0.7", "--description", "edge"},
		map[string]any{"routes": []map[string]string{{"destination": "10.8.0.0/16", "nexthop": "10.1.0.7"}}, "description": "edge"})
	// The gateway through set, as set-gateway gives it.
	r := setChanges(t, api, []string{"router", "show", "r1"}, []string{"router", "set", "r1", "--external-gateway", "public", "--fixed-ip", "subnet=public-v4,ip=192.0.2.2"},
		map[string]any{"external_gateway_info": anyValue})
	if g := cell(r["external_gateway_info"]); !strings.Contains(g, "192.0.2.2") {
		t.Fatalf("router set --external-gateway: gateway %s", g)
	}
	setChanges(t, api, []string{"security-group", "show", web.(string)}, []string{"security-group", "set", "web", "--name", "front", "--description", "web servers"},
		map[string]any{"name": "front", "description": "web servers"})
	// A group no port holds may change its statefulness (Neutron: only such a group).
	mustRun(t, api, "security-group", "create", "spare")
	setChanges(t, api, []string{"security-group", "show", "spare"}, []string{"security-group", "set", "spare", "--stateless"},
		map[string]any{"stateful": false})

	fip := showJSON(t, api, "floatingip", "create", "public")
	addr := fip["floating_ip_address"].(string)
	setChanges(t, api, []string{"floatingip", "show", addr}, []string{"floatingip", "set", addr, "--port", "vm2", "--description", "for vm2"},
		map[string]any{"port_id": showJSON(t, api, "port", "show", "vm2")["id"], "fixed_ip_address": "10.1.0.11", "router_id": r["id"],
			"description": "for vm2", "status": "ACTIVE"})
	setChanges(t, api, []string{"floatingip", "show", addr}, []string{"floatingip", "set", addr, "--no-port"},
		map[string]any{"port_id": nil, "fixed_ip_address": nil, "router_id": nil, "status": "DOWN"})

	pf := showJSON(t, api, "floatingip", "port-forwarding", "create", addr, "--protocol", "tcp", "--external-protocol-port", "2222",
		"--internal-protocol-port", "22", "--port", "vm1", "--internal-ip-address", "10.1.0.10")
	pfID := pf["id"].(string)
	answer := mustRun(t, api, "floatingip", "port-forwarding", "set", addr, pfID, "--external-protocol-port", "2200", "-f", "json")
	after := showJSON(t, api, "floatingip", "port-forwarding", "show", addr, pfID)
	if !strings.Contains(answer, `"external_port": 2200`) || !reflect.DeepEqual(changed(pf, after), []string{"external_port"}) || after["external_port"] != float64(2200) {
		t.Errorf("port-forwarding set: answered %s, then shows %v (was %v)", answer, after, pf)
	}
	if out := mustRun(t, api, "floatingip", "port-forwarding", "list", addr, "-f", "value", "-c", "id", "-c", "external_port"); out != pfID+" 2200\n" {
		t.Errorf("port-forwarding list: %q", out)
	}

	// Bad input: a clear error, and nothing changes.
	before := showJSON(t, api, "network", "show", "azure")
	for _, bad := range [][]string{
		{"network", "set", "azure"},                                 // nothing to change
		{"network", "set", "azure", "--enable", "--disable"},        // both at once
		{"router", "set", "r1", "--disable-snat"},                   // without its gateway
		{"subnet", "set", "blue-v4", "--host-route", "10.9.0.0/16"}, // not destination=,gateway=
		{"port", "set", "vm1", "--security-group", "no-such-group"}, // resolved before sending
		{"network", "set", "azure", "--mtu", "100000"},              // refused by the server
		{"network", "set", "no-such-network", "--description", "x"}, // no such object
		{"floatingip", "set", addr, "--port", "vm1", "--no-port"},   // both at once
		{"port", "set", "vm1", "--allowed-address", "ip=10.1.0.5"},  // not ip-address=
	} {
		if _, _, err := run(t, api, bad...); err == nil {
			t.Errorf("wyvern %s: no error", strings.Join(bad, " "))
		}
	}
	if got := changed(before, showJSON(t, api, "network", "show", "azure")); len(got) > 0 {
		t.Errorf("refused sets changed %v", got)
	}
	if _, _, err := run(t, api, "network", "set", "azure"); err == nil || !strings.Contains(err.Error(), "nothing to change") || !strings.Contains(err.Error(), "--mtu") {
		t.Errorf("set with no flag: %v", err)
	}
}

// TestCLIIfRevision: --if-revision sends If-Match: revision_number=N,
// only when given, and a refusal (412) is the command's error with the
// server's message. The server's side is not on this branch yet, so an
// HTTP server here records the headers and answers as Neutron does.
func TestCLIIfRevision(t *testing.T) {
	var mu sync.Mutex
	var ifMatch []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == "GET" && r.URL.Path == "/v2.0/networks/n1":
			_, _ = io.WriteString(w, `{"network": {"id": "n1", "name": "blue", "revision_number": 5}}`)
		case r.Method == "PUT" && r.URL.Path == "/v2.0/networks/n1":
			mu.Lock()
			ifMatch = append(ifMatch, r.Header.Get("If-Match"))
			mu.Unlock()
			if h := r.Header.Get("If-Match"); h != "" && h != "revision_number=5" {
				w.WriteHeader(http.StatusPreconditionFailed)
				_, _ = io.WriteString(w, `{"NeutronError": {"type": "RevisionNumberConstraintFailed", "message": "Constrained to 3, but current revision is 5", "detail": ""}}`)
				return
			}
			_, _ = io.WriteString(w, `{"network": {"id": "n1", "name": "blue", "description": "x", "revision_number": 6}}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	_, _, err := run(t, srv.URL, "network", "set", "n1", "--description", "x", "--if-revision", "3")
	if err == nil || !strings.Contains(err.Error(), "412") || !strings.Contains(err.Error(), "Constrained to 3, but current revision is 5") {
		t.Fatalf("a stale --if-revision: %v", err)
	}
	if out := mustRun(t, srv.URL, "network", "set", "n1", "--description", "x", "--if-revision", "5", "-f", "value", "-c", "revision_number"); out != "6\n" {
		t.Fatalf("a current --if-revision: %q", out)
	}
	mustRun(t, srv.URL, "network", "set", "n1", "--description", "x")
	if want := []string{"revision_number=3", "revision_number=5", ""}; !reflect.DeepEqual(ifMatch, want) {
		t.Fatalf("If-Match sent: %q, want %q", ifMatch, want)
	}
}
