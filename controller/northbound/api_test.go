package northbound

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/controller/cluster"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"go.yaml.in/yaml/v3"

	"go.uber.org/zap/zaptest"
)

// startAPI serves the API over real HTTP on loopback, on an in-memory
// cluster of one, until the test ends.
func startAPI(t testing.TB) apiClient {
	t.Helper()
	srv := httptest.NewServer(New(cluster.NewMemory("api-test"), Options{}, zaptest.NewLogger(t)).Handler())
	t.Cleanup(srv.Close)
	return apiClient{t, srv.URL}
}

type apiClient struct {
	t    testing.TB
	base string
}

func (c apiClient) do(method, path, body string) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Auth-Token", "ignored")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			c.t.Fatalf("%s %s: %d, body is not JSON: %s", method, path, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, out
}

func (c apiClient) create(path, body string) map[string]any {
	c.t.Helper()
	code, out := c.do("POST", path, body)
	if code != http.StatusCreated {
		c.t.Fatalf("POST %s %s: %d %v", path, body, code, out)
	}
	return out
}

func (c apiClient) state() string {
	c.t.Helper()
	var b strings.Builder
	for _, coll := range []string{"networks", "subnets", "ports", "routers", "floatingips", "chassis", "security-groups", "security-group-rules"} {
		code, out := c.do("GET", "/v2.0/"+coll, "")
		if code != 200 {
			c.t.Fatalf("GET %s: %d", coll, code)
		}
		j, _ := json.Marshal(out)
		b.Write(j)
	}
	return b.String()
}

func id(obj map[string]any, key string) string { return obj[key].(map[string]any)["id"].(string) }

// TestBadInputChangesNothing: every rejected request answers with the
// status API.md gives and Neutron's error body, and leaves the topology as
// it was.
func TestBadInputChangesNothing(t *testing.T) {
	c := startAPI(t)
	netA := id(c.create("/v2.0/networks", `{"network":{"name":"a","provider:segmentation_id":100}}`), "network")
	sub := id(c.create("/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"cidr":"10.0.0.0/24"}}`, netA)), "subnet")
	port := c.create("/v2.0/ports", fmt.Sprintf(`{"port":{"network_id":%q,"fixed_ips":[{"ip_address":"10.0.0.5"}],"mac_address":"fa:16:3e:aa:bb:cc"}}`, netA))["port"].(map[string]any)
	router := id(c.create("/v2.0/routers", `{"router":{"name":"r"}}`), "router")
	onA := func(f string) string { return fmt.Sprintf(f, netA) }
	// A router interface on a second subnet, for the port guard.
	netR := id(c.create("/v2.0/networks", `{"network":{"name":"r-net"}}`), "network")
	subR := id(c.create("/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"cidr":"10.9.9.0/24"}}`, netR)), "subnet")
	code, iface := c.do("PUT", "/v2.0/routers/"+router+"/add_router_interface", fmt.Sprintf(`{"subnet_id":%q}`, subR))
	if code != 200 {
		t.Fatalf("add_router_interface: %d %v", code, iface)
	}
	routerPort := iface["port_id"].(string)

	cases := []struct {
		name, method, path, body string
		status                   int
		typ                      string
	}{
		{"malformed JSON", "POST", "/v2.0/networks", `{"network":`, 400, "BadRequest"},
		{"not an object", "POST", "/v2.0/networks", `[1,2]`, 400, "BadRequest"},
		{"unknown field", "POST", "/v2.0/networks", `{"network":{"colour":"red"}}`, 400, "BadRequest"},
		{"unknown wrapper", "POST", "/v2.0/networks", `{"net":{}}`, 400, "BadRequest"},
		{"singular and plural", "POST", "/v2.0/networks", `{"network":{},"networks":[{}]}`, 400, "BadRequest"},
		{"empty bulk", "POST", "/v2.0/networks", `{"networks":[]}`, 400, "BadRequest"},
		{"wrong type", "POST", "/v2.0/networks", `{"network":{"admin_state_up":"yes"}}`, 400, "BadRequest"},
		{"read-only field", "POST", "/v2.0/networks", `{"network":{"status":"ACTIVE"}}`, 400, "BadRequest"},
		{"bad network type", "POST", "/v2.0/networks", `{"network":{"provider:network_type":"geneve"}}`, 400, "InvalidInput"},
		{"segmentation id 0", "POST", "/v2.0/networks", `{"network":{"provider:segmentation_id":0}}`, 400, "InvalidInput"},
		{"segmentation id too big", "POST", "/v2.0/networks", `{"network":{"provider:segmentation_id":16777216}}`, 400, "InvalidInput"},
		{"negative segmentation id", "POST", "/v2.0/networks", `{"network":{"provider:segmentation_id":-1}}`, 400, "BadRequest"},
		{"segmentation id in use", "POST", "/v2.0/networks", `{"network":{"provider:segmentation_id":100}}`, 409, "TunnelIdInUse"},
		{"id in use", "POST", "/v2.0/networks", onA(`{"network":{"id":%q}}`), 409, "NetworkExists"},
		{"bulk with one bad", "POST", "/v2.0/networks", `{"networks":[{"name":"ok1"},{"name":"ok2"},{"provider:segmentation_id":100}]}`, 409, "TunnelIdInUse"},
		{"change provider type", "PUT", "/v2.0/networks/" + netA, `{"network":{"provider:network_type":"gre"}}`, 400, "InvalidInput"},
		{"id differs from path", "PUT", "/v2.0/networks/" + netA, `{"network":{"id":"other"}}`, 400, "BadRequest"},
		{"update missing network", "PUT", "/v2.0/networks/nope", `{"network":{"name":"x"}}`, 404, "NetworkNotFound"},
		{"show missing network", "GET", "/v2.0/networks/nope", ``, 404, "NetworkNotFound"},
		{"delete missing subnet", "DELETE", "/v2.0/subnets/nope", ``, 404, "SubnetNotFound"},
		{"delete network with ports", "DELETE", "/v2.0/networks/" + netA, ``, 409, "NetworkInUse"},
		{"delete subnet in use", "DELETE", "/v2.0/subnets/" + sub, ``, 409, "SubnetInUse"},
		{"invalid CIDR", "POST", "/v2.0/subnets", onA(`{"subnet":{"network_id":%q,"cidr":"10.0.0.0/33"}}`), 400, "InvalidInput"},
		{"not a CIDR", "POST", "/v2.0/subnets", onA(`{"subnet":{"network_id":%q,"cidr":"banana"}}`), 400, "InvalidInput"},
		{"IPv6", "POST", "/v2.0/subnets", onA(`{"subnet":{"network_id":%q,"cidr":"fd00::/64","ip_version":6}}`), 400, "InvalidInput"},
		{"overlapping subnet", "POST", "/v2.0/subnets", onA(`{"subnet":{"network_id":%q,"cidr":"10.0.0.128/25"}}`), 400, "InvalidInput"},
		{"subnet on missing network", "POST", "/v2.0/subnets", `{"subnet":{"network_id":"nope","cidr":"10.9.0.0/24"}}`, 404, "NetworkNotFound"},
		{"gateway outside", "POST", "/v2.0/subnets", onA(`{"subnet":{"network_id":%q,"cidr":"10.1.0.0/24","gateway_ip":"10.2.0.1"}}`), 400, "InvalidInput"},
		{"gateway not an address", "POST", "/v2.0/subnets", onA(`{"subnet":{"network_id":%q,"cidr":"10.1.0.0/24","gateway_ip":7}}`), 400, "BadRequest"},
		{"invalid MAC", "POST", "/v2.0/ports", onA(`{"port":{"network_id":%q,"mac_address":"fa:16:3e:zz:00:01"}}`), 400, "InvalidInput"},
		{"multicast MAC", "POST", "/v2.0/ports", onA(`{"port":{"network_id":%q,"mac_address":"01:00:5e:00:00:01"}}`), 400, "InvalidInput"},
		{"duplicate MAC", "POST", "/v2.0/ports", onA(`{"port":{"network_id":%q,"mac_address":"fa:16:3e:aa:bb:cc"}}`), 409, "MacAddressInUse"},
		{"duplicate IP", "POST", "/v2.0/ports", onA(`{"port":{"network_id":%q,"fixed_ips":[{"ip_address":"10.0.0.5"}]}}`), 409, "IpAddressInUse"},
		{"IP outside subnet", "POST", "/v2.0/ports", fmt.Sprintf(`{"port":{"network_id":%q,"fixed_ips":[{"subnet_id":%q,"ip_address":"10.0.1.5"}]}}`, netA, sub), 409, "InvalidIpForSubnet"},
		{"IP on no subnet", "POST", "/v2.0/ports", onA(`{"port":{"network_id":%q,"fixed_ips":[{"ip_address":"192.168.9.9"}]}}`), 409, "InvalidIpForNetwork"},
		{"not an IP", "POST", "/v2.0/ports", onA(`{"port":{"network_id":%q,"fixed_ips":[{"ip_address":"ten"}]}}`), 400, "InvalidInput"},
		{"unknown fixed_ips field", "POST", "/v2.0/ports", onA(`{"port":{"network_id":%q,"fixed_ips":[{"ip":"10.0.0.9"}]}}`), 400, "BadRequest"},
		{"bad address pair", "POST", "/v2.0/ports", onA(`{"port":{"network_id":%q,"allowed_address_pairs":[{"ip_address":"x"}]}}`), 400, "InvalidInput"},
		{"port on missing network", "POST", "/v2.0/ports", `{"port":{"network_id":"nope"}}`, 404, "NetworkNotFound"},
		{"port bulk, last duplicate IP", "POST", "/v2.0/ports", onA(`{"ports":[{"network_id":%[1]q},{"network_id":%[1]q,"fixed_ips":[{"ip_address":"10.0.0.5"}]}]}`), 409, "IpAddressInUse"},
		{"update port to used MAC", "POST", "/v2.0/ports", onA(`{"port":{"network_id":%q,"mac_address":"FA:16:3E:AA:BB:CC"}}`), 409, "MacAddressInUse"},
		{"move port to another network", "PUT", "/v2.0/ports/" + port["id"].(string), `{"port":{"network_id":"other"}}`, 400, "InvalidInput"},
		{"router interface without subnet", "PUT", "/v2.0/routers/" + router + "/add_router_interface", `{}`, 400, "BadRequest"},
		{"router interface unknown field", "PUT", "/v2.0/routers/" + router + "/add_router_interface", `{"port":"p"}`, 400, "BadRequest"},
		{"router interface on missing port", "PUT", "/v2.0/routers/" + router + "/add_router_interface", `{"port_id":"p"}`, 404, "PortNotFound"},
		{"router interface on a port in use", "PUT", "/v2.0/routers/" + router + "/add_router_interface", `{"port_id":"ROUTERPORT"}`, 409, "PortInUse"},
		{"router interface on subnet and port", "PUT", "/v2.0/routers/" + router + "/add_router_interface", fmt.Sprintf(`{"port_id":"p","subnet_id":%q}`, sub), 400, "BadRequest"},
		{"interface on missing router", "PUT", "/v2.0/routers/nope/add_router_interface", fmt.Sprintf(`{"subnet_id":%q}`, sub), 404, "RouterNotFound"},
		{"interface on missing subnet", "PUT", "/v2.0/routers/" + router + "/add_router_interface", `{"subnet_id":"nope"}`, 404, "SubnetNotFound"},
		{"remove interface not there", "PUT", "/v2.0/routers/" + router + "/remove_router_interface", fmt.Sprintf(`{"subnet_id":%q}`, sub), 404, "RouterInterfaceNotFoundForSubnet"},
		{"delete router with interfaces", "DELETE", "/v2.0/routers/" + router, ``, 409, "RouterInUse"},
		{"no such collection", "GET", "/v2.0/trunks", ``, 404, "HTTPNotFound"},
		{"no such chassis", "GET", "/v2.0/chassis/hv9", ``, 404, "ChassisNotFound"},
		{"events since not a number", "GET", "/v2.0/events?since=abc", ``, 400, "BadRequest"},
		// Members and agents speak on the internal channel only.
		{"join on the public API", "POST", "/v2.0/cluster/members", `{"id":"x","raft_address":"127.0.0.1:1","api_address":"127.0.0.1:2"}`, 404, "HTTPNotFound"},
		{"chassis registration on the public API", "PUT", "/v2.0/chassis/evil", `{"chassis":{"encap_ip":"10.9.9.9"}}`, 405, "HTTPMethodNotAllowed"},
		{"binding on the public API", "PUT", "/v2.0/chassis/evil/bindings", `{"bindings":[]}`, 404, "HTTPNotFound"},
		{"empty id", "POST", "/v2.0/networks", `{"network":{"id":""}}`, 400, "BadRequest"},
		{"bulk too large", "POST", "/v2.0/networks", `{"networks":[` + strings.Repeat(`{},`, MaxBulk) + `{}]}`, 400, "BadRequest"},
		{"delete router interface port", "DELETE", "/v2.0/ports/ROUTERPORT", ``, 409, "PortInUse"},
		{"body too large", "POST", "/v2.0/networks", `{"network":{"description":"` + strings.Repeat("x", MaxBodyBytes) + `"}}`, 413, "RequestEntityTooLarge"},
	}
	for _, tc := range cases {
		tc.path = strings.ReplaceAll(tc.path, "ROUTERPORT", routerPort)
		tc.body = strings.ReplaceAll(tc.body, "ROUTERPORT", routerPort)
		before := c.state()
		code, out := c.do(tc.method, tc.path, tc.body)
		ne, _ := out["NeutronError"].(map[string]any)
		if code != tc.status || ne == nil || ne["type"] != tc.typ || ne["message"] == "" || ne["detail"] == nil {
			t.Errorf("%s: got %d %v, want %d with NeutronError type %s", tc.name, code, out, tc.status, tc.typ)
		}
		if after := c.state(); after != before {
			t.Errorf("%s: a rejected request changed the topology", tc.name)
		}
	}
}

// TestNeutronShapes checks the parts of the contract a Neutron client
// relies on: version document, extensions, lookups by name, filters,
// stored passive fields, bulk, updates, router interfaces, the change feed.
func TestNeutronShapes(t *testing.T) {
	c := startAPI(t)
	code, out := c.do("GET", "/", "")
	if v := out["versions"].([]any)[0].(map[string]any); code != 200 || v["id"] != "v2.0" || v["status"] != "CURRENT" {
		t.Fatalf("version document: %d %v", code, out)
	}
	if code, out := c.do("GET", "/v2.0/extensions", ""); code != 200 || len(out["extensions"].([]any)) == 0 {
		t.Fatalf("extensions: %d %v", code, out)
	}
	_, ev := c.do("GET", "/v2.0/events?timeout=0", "")
	since := uint64(ev["index"].(float64))

	nets := c.create("/v2.0/networks", `{"networks":[{"name":"red","availability_zone_hints":["az1"],"tags":["t"]},{"name":"green","provider:network_type":"gre"}]}`)["networks"].([]any)
	red := nets[0].(map[string]any)
	if red["provider:network_type"] != "vxlan" || red["mtu"].(float64) != 1450 || red["status"] != "ACTIVE" ||
		fmt.Sprint(red["availability_zone_hints"]) != "[az1]" || fmt.Sprint(red["subnets"]) != "[]" {
		t.Fatalf("network defaults and passive fields: %v", red)
	}
	if nets[1].(map[string]any)["mtu"].(float64) != 1458 {
		t.Fatalf("gre mtu: %v", nets[1])
	}
	_, got := c.do("GET", "/v2.0/networks?name=green", "")
	if l := got["networks"].([]any); len(l) != 1 || l[0].(map[string]any)["name"] != "green" {
		t.Fatalf("lookup by name: %v", got)
	}
	redID := red["id"].(string)
	c.create("/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"cidr":"10.5.0.0/24","gateway_ip":null}}`, redID))
	_, got = c.do("GET", "/v2.0/subnets?network_id="+redID, "")
	sn := got["subnets"].([]any)[0].(map[string]any)
	if sn["gateway_ip"] != nil || fmt.Sprint(sn["allocation_pools"]) != "[map[end:10.5.0.253 start:10.5.0.1]]" { // .254 is the DHCP server's
		t.Fatalf("subnet without gateway: %v", sn)
	}
	p := c.create("/v2.0/ports", fmt.Sprintf(`{"port":{"network_id":%q,"binding:host_id":"hv1","binding:profile":{"k":"v"}}}`, redID))["port"].(map[string]any)
	if p["status"] != "DOWN" || p["mac_address"] == "" || len(p["fixed_ips"].([]any)) != 1 || fmt.Sprint(p["binding:profile"]) != "map[k:v]" {
		t.Fatalf("port: %v", p)
	}
	_, got = c.do("GET", "/v2.0/ports?binding:host_id=hv1&binding:host_id=hv2", "")
	if len(got["ports"].([]any)) != 1 {
		t.Fatalf("filter with two values: %v", got)
	}
	_, got = c.do("GET", "/v2.0/ports?binding:host_id=hv3", "")
	if len(got["ports"].([]any)) != 0 {
		t.Fatalf("filter matching nothing: %v", got)
	}
	code, upd := c.do("PUT", "/v2.0/ports/"+p["id"].(string), `{"port":{"name":"renamed","fixed_ips":[{"ip_address":"10.5.0.77"}]}}`)
	up := upd["port"].(map[string]any)
	if code != 200 || up["name"] != "renamed" || up["fixed_ips"].([]any)[0].(map[string]any)["ip_address"] != "10.5.0.77" || up["mac_address"] != p["mac_address"] {
		t.Fatalf("update: %d %v", code, upd)
	}
	router := c.create("/v2.0/routers", `{"router":{"name":"r1"}}`)["router"].(map[string]any)
	c.create("/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"cidr":"10.6.0.0/24"}}`, nets[1].(map[string]any)["id"]))
	_, got = c.do("GET", "/v2.0/subnets?cidr=10.6.0.0/24", "")
	sub2 := got["subnets"].([]any)[0].(map[string]any)["id"].(string)
	code, iface := c.do("PUT", "/v2.0/routers/"+router["id"].(string)+"/add_router_interface", fmt.Sprintf(`{"subnet_id":%q}`, sub2))
	if code != 200 || iface["port_id"] == nil || iface["subnet_id"] != sub2 {
		t.Fatalf("add_router_interface: %d %v", code, iface)
	}
	_, got = c.do("GET", "/v2.0/ports/"+iface["port_id"].(string), "")
	rp := got["port"].(map[string]any)
	if rp["device_owner"] != "network:router_interface_distributed" || rp["fixed_ips"].([]any)[0].(map[string]any)["ip_address"] != "10.6.0.1" {
		t.Fatalf("router interface port: %v", rp)
	}
	if code, _ := c.do("PUT", "/v2.0/routers/"+router["id"].(string)+"/remove_router_interface", fmt.Sprintf(`{"subnet_id":%q}`, sub2)); code != 200 {
		t.Fatalf("remove_router_interface: %d", code)
	}
	if code, _ := c.do("DELETE", "/v2.0/routers/"+router["id"].(string), ""); code != 204 {
		t.Fatalf("delete router: %d", code)
	}
	if code, _ := c.do("GET", "/v2.0/networks/"+redID+"?consistent=true", ""); code != 200 {
		t.Fatalf("consistent read: %d", code)
	}
	// The change feed saw every change, in order, after since.
	_, ev = c.do("GET", fmt.Sprintf("/v2.0/events?since=%d&timeout=1", since), "")
	var kinds []string
	last := since
	for _, e := range ev["events"].([]any) {
		m := e.(map[string]any)
		if idx := uint64(m["index"].(float64)); idx < last {
			t.Fatalf("feed out of order at %v", m)
		} else {
			last = idx
		}
		kinds = append(kinds, m["resource"].(string)+"/"+m["op"].(string))
	}
	want := "network/create network/create subnet/create securitygroup/create port/create port/update router/create subnet/create port/create router/update port/delete router/update router/delete"
	if strings.Join(kinds, " ") != want {
		t.Fatalf("feed:\n got %s\nwant %s", strings.Join(kinds, " "), want)
	}
	// A long-poll returns as soon as a change commits.
	start := time.Now()
	go func() {
		time.Sleep(300 * time.Millisecond)
		b := bytes.NewBufferString(`{"network":{"name":"late"}}`)
		resp, err := http.Post(c.base+"/v2.0/networks", "application/json", b)
		if err == nil {
			resp.Body.Close()
		}
	}()
	_, ev = c.do("GET", fmt.Sprintf("/v2.0/events?since=%d&timeout=10", last), "")
	if len(ev["events"].([]any)) != 1 || time.Since(start) > 5*time.Second {
		t.Fatalf("long-poll: %v after %s", ev, time.Since(start))
	}
}

// TestOpenAPIDescribesEveryRoute keeps docs/openapi.yaml in step with the
// routes the server registers.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{} // "get /v2.0/ports"
	for _, rt := range (&Server{}).routes() {
		path := strings.TrimSuffix(rt.path, "{$}")
		switch path {
		case "":
			path = "/" // the version document
		case "/v2.0":
			path = "/v2.0/" // the resources document answers on both
		}
		served[strings.ToLower(rt.method)+" "+path] = true
		ops, ok := doc.Paths[path]
		if !ok {
			t.Errorf("openapi.yaml has no path %s", path)
			continue
		}
		if _, ok := ops[strings.ToLower(rt.method)]; !ok {
			t.Errorf("openapi.yaml has no %s %s", rt.method, path)
		}
	}
	// Nor does it describe what is not served (a route moved to the
	// cluster's internal channel, say).
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "put", "post", "delete", "patch", "head":
				if !served[method+" "+path] {
					t.Errorf("openapi.yaml describes %s %s, which the API does not serve", strings.ToUpper(method), path)
				}
			}
		}
	}
}

// TestPortBindingForNova: a port says what os-vif needs to plug it.
// vif_type is unbound until binding:host_id names a chassis (Nova sets it
// before it plugs: a pre-binding), ovs then with the chassis' bridge in
// vif_details, binding_failed for a host no chassis registered;
// vnic_type is normal and nothing else is taken.
func TestPortBindingForNova(t *testing.T) {
	mem := cluster.NewMemory("nova")
	srv := httptest.NewServer(New(mem, Options{}, zaptest.NewLogger(t)).Handler())
	defer srv.Close()
	c := apiClient{t, srv.URL}
	if _, err := mem.Propose(context.Background(), cluster.CmdChassisRegister, cluster.ChassisReg{Spec: topology.ChassisSpec{
		Name: "hv1", EncapIP: "172.31.0.1", Encaps: []string{"vxlan"}, Bridge: "br-int", DatapathType: "netdev"}}); err != nil {
		t.Fatal(err)
	}
	net := c.create("/v2.0/networks", `{"network":{"name":"n"}}`)["network"].(map[string]any)
	c.create("/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"cidr":"10.9.0.0/24"}}`, net["id"]))
	p := c.create("/v2.0/ports", fmt.Sprintf(`{"port":{"network_id":%q}}`, net["id"]))["port"].(map[string]any)
	if p["binding:vif_type"] != "unbound" || p["binding:vnic_type"] != "normal" || fmt.Sprint(p["binding:vif_details"]) != "map[]" {
		t.Fatalf("a new port: %v", p)
	}
	_, upd := c.do("PUT", "/v2.0/ports/"+p["id"].(string), `{"port":{"binding:host_id":"hv1","binding:profile":{"migrating_to":"hv2"}}}`)
	up := upd["port"].(map[string]any)
	want := "map[bridge_name:br-int connectivity:l2 datapath_type:netdev ovs_hybrid_plug:false port_filter:true]"
	if up["binding:vif_type"] != "ovs" || fmt.Sprint(up["binding:vif_details"]) != want || up["status"] != "DOWN" ||
		fmt.Sprint(up["binding:profile"]) != "map[migrating_to:hv2]" {
		t.Fatalf("pre-bound to hv1: %v", up)
	}
	_, upd = c.do("PUT", "/v2.0/ports/"+p["id"].(string), `{"port":{"binding:host_id":"nowhere"}}`)
	if up := upd["port"].(map[string]any); up["binding:vif_type"] != "binding_failed" {
		t.Fatalf("bound to an unknown host: %v", up)
	}
	for _, body := range []string{`{"port":{"binding:vnic_type":"direct"}}`, `{"port":{"binding:vif_type":"ovs"}}`,
		`{"port":{"dns_name":"bad_name"}}`, `{"port":{"extra_dhcp_opts":[{"opt_name":"","opt_value":"x"}]}}`,
		`{"port":{"mac_address":"02:77:79:00:00:01"}}`, `{"port":{"allowed_address_pairs":[{"ip_address":"10.9.0.99","mac_address":"02:77:79:00:00:01"}]}}`} {
		if code, out := c.do("PUT", "/v2.0/ports/"+p["id"].(string), body); code != http.StatusBadRequest {
			t.Errorf("PUT %s: %d %v, want 400", body, code, out)
		}
	}
	_, upd = c.do("PUT", "/v2.0/ports/"+p["id"].(string), `{"port":{"dns_name":"vm1","extra_dhcp_opts":[{"opt_name":"mtu","opt_value":"1400"},{"opt_name":"66","opt_value":"tftp.example"}]}}`)
	up = upd["port"].(map[string]any)
	if up["dns_name"] != "vm1" || len(up["extra_dhcp_opts"].([]any)) != 2 {
		t.Fatalf("dns_name and extra_dhcp_opts: %v", up)
	}
	// An option named again with no value is removed, as in Neutron.
	_, upd = c.do("PUT", "/v2.0/ports/"+p["id"].(string), `{"port":{"extra_dhcp_opts":[{"opt_name":"mtu","opt_value":null}]}}`)
	if opts := upd["port"].(map[string]any)["extra_dhcp_opts"].([]any); len(opts) != 1 || opts[0].(map[string]any)["opt_name"] != "66" {
		t.Fatalf("removing an extra option: %v", opts)
	}
	_, upd = c.do("PUT", "/v2.0/networks/"+net["id"].(string), `{"network":{"dns_domain":"example.org"}}`)
	if d := upd["network"].(map[string]any)["dns_domain"]; d != "example.org." {
		t.Fatalf("dns_domain %v, want example.org.", d)
	}
}
