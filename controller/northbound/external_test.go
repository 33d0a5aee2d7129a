package northbound

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/wyvern-sdn/wyvern/controller/cluster"
	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// rejected is a request the API must refuse with a status and Neutron
// error type, changing nothing.
type rejected struct {
	name, method, path, body string
	status                   int
	typ                      string
}

func (c apiClient) mustReject(cases []rejected) {
	c.t.Helper()
	for _, tc := range cases {
		before := c.state()
		code, out := c.do(tc.method, tc.path, tc.body)
		ne, _ := out["NeutronError"].(map[string]any)
		if code != tc.status || ne == nil || ne["type"] != tc.typ || ne["message"] == "" {
			c.t.Errorf("%s: got %d %v, want %d with NeutronError type %s", tc.name, code, out, tc.status, tc.typ)
		}
		if after := c.state(); after != before {
			c.t.Errorf("%s: a rejected request changed the topology", tc.name)
		}
	}
}

func (c apiClient) mustDo(method, path, body string, want int) map[string]any {
	c.t.Helper()
	code, out := c.do(method, path, body)
	if code != want {
		c.t.Fatalf("%s %s %s: %d %v, want %d", method, path, body, code, out, want)
	}
	return out
}

// obj is the one object of an answer ({"network": {...}}).
func obj(out map[string]any, key string) map[string]any { return out[key].(map[string]any) }

func TestProviderNetworks(t *testing.T) {
	c := startAPI(t)
	flat := obj(c.create("/v2.0/networks", `{"network":{"name":"ext","provider:network_type":"flat","provider:physical_network":"physnet1","router:external":true}}`), "network")
	if flat["provider:physical_network"] != "physnet1" || flat["router:external"] != true || flat["mtu"] != float64(1500) {
		t.Fatalf("flat network: %v", flat)
	}
	if v, ok := flat["provider:segmentation_id"]; !ok || v != nil {
		t.Fatalf("a flat network's segmentation id is %v (present %v), want null", v, ok)
	}
	// The openstack CLI sends the VLAN id as a string.
	vlan := obj(c.create("/v2.0/networks", `{"network":{"provider:network_type":"vlan","provider:physical_network":"physnet1","provider:segmentation_id":"100"}}`), "network")
	if vlan["provider:segmentation_id"] != float64(100) || vlan["router:external"] != false {
		t.Fatalf("vlan network: %v", vlan)
	}
	overlay := obj(c.create("/v2.0/networks", `{"network":{"name":"overlay"}}`), "network")
	if v, ok := overlay["provider:physical_network"]; !ok || v != nil || overlay["router:external"] != false {
		t.Fatalf("an overlay's provider:physical_network is %v (present %v), want null", v, ok)
	}
	// The same VLAN on another physical network is another segment.
	c.create("/v2.0/networks", `{"network":{"provider:network_type":"vlan","provider:physical_network":"physnet2","provider:segmentation_id":100}}`)

	c.mustReject([]rejected{
		{"vlan without a VLAN id", "POST", "/v2.0/networks", `{"network":{"provider:network_type":"vlan","provider:physical_network":"physnet1"}}`, 400, "InvalidInput"},
		{"VLAN id 4095", "POST", "/v2.0/networks", `{"network":{"provider:network_type":"vlan","provider:physical_network":"physnet1","provider:segmentation_id":4095}}`, 400, "InvalidInput"},
		{"VLAN in use on the physical network", "POST", "/v2.0/networks", `{"network":{"provider:network_type":"vlan","provider:physical_network":"physnet1","provider:segmentation_id":100}}`, 409, "VlanIdInUse"},
		{"second flat network on a physical network", "POST", "/v2.0/networks", `{"network":{"provider:network_type":"flat","provider:physical_network":"physnet1"}}`, 409, "FlatNetworkInUse"},
		{"flat without a physical network", "POST", "/v2.0/networks", `{"network":{"provider:network_type":"flat"}}`, 400, "InvalidInput"},
		{"overlay on a physical network", "POST", "/v2.0/networks", `{"network":{"provider:physical_network":"physnet1"}}`, 400, "InvalidInput"},
		{"physical network name too long", "POST", "/v2.0/networks", `{"network":{"provider:network_type":"flat","provider:physical_network":"` + strings.Repeat("p", 65) + `"}}`, 400, "InvalidInput"},
		{"router:external not a bool", "POST", "/v2.0/networks", `{"network":{"router:external":"yes"}}`, 400, "BadRequest"},
		{"moving a network to another physical network", "PUT", "/v2.0/networks/" + vlan["id"].(string), `{"network":{"provider:physical_network":"physnet2"}}`, 400, "InvalidInput"},
	})

	// As `openstack network list --external` asks.
	for _, q := range []string{"router:external=True", "router:external=true", "router:external=1"} {
		_, out := c.do("GET", "/v2.0/networks?"+q, "")
		if l := out["networks"].([]any); len(l) != 1 || l[0].(map[string]any)["id"] != flat["id"] {
			t.Errorf("?%s: %v", q, out)
		}
	}
	if _, out := c.do("GET", "/v2.0/networks?router:external=False", ""); len(out["networks"].([]any)) != 3 {
		t.Errorf("?router:external=False: %v", out)
	}
	upd := obj(c.mustDo("PUT", "/v2.0/networks/"+vlan["id"].(string), `{"network":{"router:external":true}}`, 200), "network")
	if upd["router:external"] != true {
		t.Errorf("router:external set on update: %v", upd)
	}
}

// externalSetup is an external network with a subnet, a tenant network
// and subnet, a router between them with a port behind it, and a network
// no router reaches with a port of its own.
type externalSetup struct {
	ext, extSubnet, inner, innerSubnet, router, vm, vmIP, island string
}

func newExternalSetup(c apiClient) externalSetup {
	var e externalSetup
	e.ext = id(c.create("/v2.0/networks", `{"network":{"name":"public","provider:network_type":"flat","provider:physical_network":"physnet1","router:external":true}}`), "network")
	e.extSubnet = id(c.create("/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"cidr":"192.0.2.0/24","enable_dhcp":false}}`, e.ext)), "subnet")
	e.inner = id(c.create("/v2.0/networks", `{"network":{"name":"inner"}}`), "network")
	e.innerSubnet = id(c.create("/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"cidr":"10.0.0.0/24"}}`, e.inner)), "subnet")
	e.router = id(c.create("/v2.0/routers", fmt.Sprintf(`{"router":{"name":"r","external_gateway_info":{"network_id":%q}}}`, e.ext)), "router")
	c.mustDo("PUT", "/v2.0/routers/"+e.router+"/add_router_interface", fmt.Sprintf(`{"subnet_id":%q}`, e.innerSubnet), 200)
	vm := obj(c.create("/v2.0/ports", fmt.Sprintf(`{"port":{"network_id":%q,"name":"vm"}}`, e.inner)), "port")
	e.vm, e.vmIP = vm["id"].(string), vm["fixed_ips"].([]any)[0].(map[string]any)["ip_address"].(string)
	island := id(c.create("/v2.0/networks", `{"network":{"name":"island"}}`), "network")
	c.create("/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"cidr":"10.1.0.0/24"}}`, island))
	e.island = id(c.create("/v2.0/ports", fmt.Sprintf(`{"port":{"network_id":%q}}`, island)), "port")
	return e
}

func TestRouterGatewayAndRoutes(t *testing.T) {
	c := startAPI(t)
	e := newExternalSetup(c)
	r := obj(c.mustDo("GET", "/v2.0/routers/"+e.router, "", 200), "router")
	gw, _ := r["external_gateway_info"].(map[string]any)
	ips, _ := gw["external_fixed_ips"].([]any)
	if gw["network_id"] != e.ext || gw["enable_snat"] != true || len(ips) != 1 ||
		ips[0].(map[string]any)["subnet_id"] != e.extSubnet || !strings.HasPrefix(ips[0].(map[string]any)["ip_address"].(string), "192.0.2.") {
		t.Fatalf("router gateway: %v", r)
	}
	if _, ok := r["wyvern:gateway_port"]; ok {
		t.Fatalf("the gateway port is shown: %v", r)
	}
	_, out := c.do("GET", "/v2.0/routers", "")
	if _, ok := out["routers"].([]any)[0].(map[string]any)["wyvern:gateway_port"]; ok {
		t.Fatalf("the gateway port is listed: %v", out)
	}
	_, out = c.do("GET", "/v2.0/ports?device_owner=network:router_gateway", "")
	if l := out["ports"].([]any); len(l) != 1 || l[0].(map[string]any)["device_id"] != e.router {
		t.Fatalf("gateway port: %v", out)
	}

	r = obj(c.mustDo("PUT", "/v2.0/routers/"+e.router, fmt.Sprintf(`{"router":{"external_gateway_info":{"network_id":%q,"external_fixed_ips":[{"ip_address":"192.0.2.50"}]}}}`, e.ext), 200), "router")
	if ip := r["external_gateway_info"].(map[string]any)["external_fixed_ips"].([]any)[0].(map[string]any)["ip_address"]; ip != "192.0.2.50" {
		t.Fatalf("gateway address asked for: %v", r)
	}
	r = obj(c.mustDo("PUT", "/v2.0/routers/"+e.router, fmt.Sprintf(`{"router":{"external_gateway_info":{"network_id":%q,"enable_snat":false}}}`, e.ext), 200), "router")
	if g := r["external_gateway_info"].(map[string]any); g["enable_snat"] != false || g["external_fixed_ips"].([]any)[0].(map[string]any)["ip_address"] != "192.0.2.50" {
		t.Fatalf("enable_snat alone keeps the address: %v", r)
	}

	// Static routes: each next hop on a subnet the router is on.
	r = obj(c.mustDo("PUT", "/v2.0/routers/"+e.router, `{"router":{"routes":[{"destination":"10.9.0.0/16","nexthop":"10.0.0.9"},{"destination":"0.0.0.0/0","nexthop":"192.0.2.254"}]}}`, 200), "router")
	if fmt.Sprint(r["routes"]) != "[map[destination:10.9.0.0/16 nexthop:10.0.0.9] map[destination:0.0.0.0/0 nexthop:192.0.2.254]]" {
		t.Fatalf("routes: %v", r["routes"])
	}
	c.mustReject([]rejected{
		{"next hop on no connected subnet", "PUT", "/v2.0/routers/" + e.router, `{"router":{"routes":[{"destination":"10.8.0.0/16","nexthop":"172.16.0.1"}]}}`, 400, "InvalidInput"},
		{"route without a CIDR", "PUT", "/v2.0/routers/" + e.router, `{"router":{"routes":[{"destination":"10.8.0.1","nexthop":"10.0.0.9"}]}}`, 400, "InvalidInput"},
		{"route with an unknown field", "PUT", "/v2.0/routers/" + e.router, `{"router":{"routes":[{"destination":"10.8.0.0/16","nexthop":"10.0.0.9","metric":1}]}}`, 400, "BadRequest"},
		{"too many routes", "PUT", "/v2.0/routers/" + e.router, `{"router":{"routes":` + repeatJSON(`{"destination":"10.8.0.0/16","nexthop":"10.0.0.9"}`, MaxRoutes+1) + `}}`, 400, "RoutesExhausted"},
		{"gateway on a network that is not external", "PUT", "/v2.0/routers/" + e.router, fmt.Sprintf(`{"router":{"external_gateway_info":{"network_id":%q}}}`, e.inner), 400, "InvalidInput"},
		{"gateway on a missing network", "POST", "/v2.0/routers", `{"router":{"external_gateway_info":{"network_id":"nope"}}}`, 404, "NetworkNotFound"},
		{"gateway without a network", "PUT", "/v2.0/routers/" + e.router, `{"router":{"external_gateway_info":{"enable_snat":true}}}`, 400, "InvalidInput"},
		{"gateway with an unknown field", "PUT", "/v2.0/routers/" + e.router, fmt.Sprintf(`{"router":{"external_gateway_info":{"network_id":%q,"qos_policy_id":"q"}}}`, e.ext), 400, "BadRequest"},
		{"six gateway addresses", "PUT", "/v2.0/routers/" + e.router, fmt.Sprintf(`{"router":{"external_gateway_info":{"network_id":%q,"external_fixed_ips":%s}}}`, e.ext, repeatJSON(`{}`, MaxFixedIPsPerPort+1)), 400, "InvalidInput"},
		{"gateway network id too long", "PUT", "/v2.0/routers/" + e.router, `{"router":{"external_gateway_info":{"network_id":"` + strings.Repeat("n", MaxIDLen+1) + `"}}}`, 400, "InvalidInput"},
		{"gateway address in use", "POST", "/v2.0/routers", fmt.Sprintf(`{"router":{"external_gateway_info":{"network_id":%q,"external_fixed_ips":[{"ip_address":"192.0.2.50"}]}}}`, e.ext), 409, "IpAddressInUse"},
		{"gateway address outside the subnet", "PUT", "/v2.0/routers/" + e.router, fmt.Sprintf(`{"router":{"external_gateway_info":{"network_id":%q,"external_fixed_ips":[{"subnet_id":%q,"ip_address":"10.0.0.50"}]}}}`, e.ext, e.extSubnet), 409, "InvalidIpForSubnet"},
	})
	// A PUT replaces the routes; null is none.
	r = obj(c.mustDo("PUT", "/v2.0/routers/"+e.router, `{"router":{"routes":[{"destination":"10.7.0.0/16","nexthop":"10.0.0.7"}]}}`, 200), "router")
	if len(r["routes"].([]any)) != 1 {
		t.Fatalf("routes replaced: %v", r["routes"])
	}
	r = obj(c.mustDo("PUT", "/v2.0/routers/"+e.router, `{"router":{"routes":null}}`, 200), "router")
	if fmt.Sprint(r["routes"]) != "[]" {
		t.Fatalf("routes: null: %v", r["routes"])
	}

	// null and {} both clear the gateway, and its port goes with it.
	for _, clear := range []string{`null`, `{}`} {
		r = obj(c.mustDo("PUT", "/v2.0/routers/"+e.router, `{"router":{"external_gateway_info":`+clear+`}}`, 200), "router")
		if v, ok := r["external_gateway_info"]; !ok || v != nil {
			t.Fatalf("external_gateway_info: %s: %v", clear, r)
		}
		if _, out := c.do("GET", "/v2.0/ports?device_owner=network:router_gateway", ""); len(out["ports"].([]any)) != 0 {
			t.Fatalf("gateway port left after clearing: %v", out)
		}
		c.mustDo("PUT", "/v2.0/routers/"+e.router, fmt.Sprintf(`{"router":{"external_gateway_info":{"network_id":%q}}}`, e.ext), 200)
	}
	plain := obj(c.create("/v2.0/routers", `{"router":{"name":"plain"}}`), "router")
	if v, ok := plain["external_gateway_info"]; !ok || v != nil || fmt.Sprint(plain["routes"]) != "[]" {
		t.Fatalf("a router without a gateway: %v", plain)
	}
}

func TestFloatingIPs(t *testing.T) {
	c := startAPI(t)
	e := newExternalSetup(c)
	f := obj(c.create("/v2.0/floatingips", fmt.Sprintf(`{"floatingip":{"floating_network_id":%q,"description":"web"}}`, e.ext)), "floatingip")
	addr, _ := f["floating_ip_address"].(string)
	if !strings.HasPrefix(addr, "192.0.2.") || f["status"] != "DOWN" || f["description"] != "web" || fmt.Sprint(f["port_forwardings"]) != "[]" {
		t.Fatalf("floating IP: %v", f)
	}
	for _, k := range []string{"port_id", "fixed_ip_address", "router_id"} {
		if v, ok := f[k]; !ok || v != nil {
			t.Errorf("%s of an unassociated floating IP: %v (present %v), want null", k, v, ok)
		}
	}
	for k := range f {
		if strings.HasPrefix(k, "wyvern:") {
			t.Errorf("floating IP shows %s", k)
		}
	}
	fip := f["id"].(string)

	f = obj(c.mustDo("PUT", "/v2.0/floatingips/"+fip, fmt.Sprintf(`{"floatingip":{"port_id":%q}}`, e.vm), 200), "floatingip")
	if f["port_id"] != e.vm || f["fixed_ip_address"] != e.vmIP || f["router_id"] != e.router || f["status"] != "ACTIVE" || f["floating_ip_address"] != addr {
		t.Fatalf("associated: %v", f)
	}
	for _, q := range []string{"port_id=" + e.vm, "floating_ip_address=" + addr, "router_id=" + e.router, "status=ACTIVE", "floating_network_id=" + e.ext} {
		if _, out := c.do("GET", "/v2.0/floatingips?"+q, ""); len(out["floatingips"].([]any)) != 1 {
			t.Errorf("?%s: %v", q, out)
		}
	}
	_, out := c.do("GET", "/v2.0/floatingips?fields=id&fields=floating_ip_address", "")
	if l := out["floatingips"].([]any); len(l) != 1 || len(l[0].(map[string]any)) != 2 {
		t.Errorf("fields=: %v", out)
	}

	c.mustReject([]rejected{
		{"associate a port no router reaches", "PUT", "/v2.0/floatingips/" + fip, fmt.Sprintf(`{"floatingip":{"port_id":%q}}`, e.island), 404, "ExternalGatewayForFloatingIPNotFound"},
		{"associate a missing port", "PUT", "/v2.0/floatingips/" + fip, `{"floatingip":{"port_id":"nope"}}`, 404, "PortNotFound"},
		{"a fixed IP the port does not have", "PUT", "/v2.0/floatingips/" + fip, fmt.Sprintf(`{"floatingip":{"port_id":%q,"fixed_ip_address":"10.0.0.250"}}`, e.vm), 400, "InvalidInput"},
		{"a second floating IP for the same fixed IP", "POST", "/v2.0/floatingips", fmt.Sprintf(`{"floatingip":{"floating_network_id":%q,"port_id":%q}}`, e.ext, e.vm), 409, "FloatingIPPortAlreadyAssociated"},
		{"on a network that is not external", "POST", "/v2.0/floatingips", fmt.Sprintf(`{"floatingip":{"floating_network_id":%q}}`, e.inner), 400, "InvalidInput"},
		{"on a missing network", "POST", "/v2.0/floatingips", `{"floatingip":{"floating_network_id":"nope"}}`, 404, "NetworkNotFound"},
		{"without a network", "POST", "/v2.0/floatingips", `{"floatingip":{}}`, 400, "InvalidInput"},
		{"an address in use", "POST", "/v2.0/floatingips", fmt.Sprintf(`{"floatingip":{"floating_network_id":%q,"floating_ip_address":%q}}`, e.ext, addr), 409, "FloatingIPAddressInUse"},
		{"bulk", "POST", "/v2.0/floatingips", fmt.Sprintf(`{"floatingips":[{"floating_network_id":%q}]}`, e.ext), 400, "BadRequest"},
		{"read-only field", "POST", "/v2.0/floatingips", fmt.Sprintf(`{"floatingip":{"floating_network_id":%q,"status":"ACTIVE"}}`, e.ext), 400, "BadRequest"},
		{"port_id not a string", "PUT", "/v2.0/floatingips/" + fip, `{"floatingip":{"port_id":7}}`, 400, "BadRequest"},
		{"port_id too long", "PUT", "/v2.0/floatingips/" + fip, `{"floatingip":{"port_id":"` + strings.Repeat("p", MaxIDLen+1) + `"}}`, 400, "InvalidInput"},
		{"description too long", "POST", "/v2.0/floatingips", fmt.Sprintf(`{"floatingip":{"floating_network_id":%q,"description":%q}}`, e.ext, strings.Repeat("d", MaxDescriptionLen+1)), 400, "InvalidInput"},
		{"changing the address", "PUT", "/v2.0/floatingips/" + fip, `{"floatingip":{"floating_ip_address":"192.0.2.99"}}`, 400, "InvalidInput"},
		{"show a missing floating IP", "GET", "/v2.0/floatingips/nope", ``, 404, "FloatingIPNotFound"},
		{"update a missing floating IP", "PUT", "/v2.0/floatingips/nope", `{"floatingip":{"description":"x"}}`, 404, "FloatingIPNotFound"},
		{"delete a missing floating IP", "DELETE", "/v2.0/floatingips/nope", ``, 404, "FloatingIPNotFound"},
		{"delete the holder port", "DELETE", "/v2.0/ports/" + holderOf(c, addr), ``, 409, "PortInUse"},
		{"clear a gateway floating IPs need", "PUT", "/v2.0/routers/" + e.router, `{"router":{"external_gateway_info":null}}`, 409, "RouterExternalGatewayInUseByFloatingIp"},
	})

	f = obj(c.mustDo("PUT", "/v2.0/floatingips/"+fip, `{"floatingip":{"port_id":null}}`, 200), "floatingip")
	if f["port_id"] != nil || f["fixed_ip_address"] != nil || f["router_id"] != nil || f["status"] != "DOWN" {
		t.Fatalf("disassociated: %v", f)
	}
	// An address asked for, associated at once.
	g := obj(c.create("/v2.0/floatingips", fmt.Sprintf(`{"floatingip":{"floating_network_id":%q,"floating_ip_address":"192.0.2.77","port_id":%q}}`, e.ext, e.vm)), "floatingip")
	if g["floating_ip_address"] != "192.0.2.77" || g["port_id"] != e.vm {
		t.Fatalf("created associated: %v", g)
	}
	c.mustDo("DELETE", "/v2.0/floatingips/"+fip, "", 204)
	c.mustDo("GET", "/v2.0/floatingips/"+fip, "", 404)
	if _, out := c.do("GET", "/v2.0/ports?device_owner=network:floatingip", ""); len(out["ports"].([]any)) != 1 {
		t.Fatalf("holder ports after a delete: %v", out)
	}
	// Deleting the port drops the association, as in Neutron.
	c.mustDo("DELETE", "/v2.0/ports/"+e.vm, "", 204)
	if g = obj(c.mustDo("GET", "/v2.0/floatingips/"+g["id"].(string), "", 200), "floatingip"); g["port_id"] != nil {
		t.Fatalf("a deleted port's floating IP: %v", g)
	}
}

// holderOf is the port holding a floating IP's address.
func holderOf(c apiClient, addr string) string {
	c.t.Helper()
	_, out := c.do("GET", "/v2.0/ports?device_owner=network:floatingip", "")
	for _, p := range out["ports"].([]any) {
		if p.(map[string]any)["fixed_ips"].([]any)[0].(map[string]any)["ip_address"] == addr {
			return p.(map[string]any)["id"].(string)
		}
	}
	c.t.Fatalf("no port holds %s", addr)
	return ""
}

func TestPortForwardings(t *testing.T) {
	c := startAPI(t)
	e := newExternalSetup(c)
	fip := id(c.create("/v2.0/floatingips", fmt.Sprintf(`{"floatingip":{"floating_network_id":%q}}`, e.ext)), "floatingip")
	pfs := "/v2.0/floatingips/" + fip + "/port_forwardings"
	ssh := func(proto string, ext, in int) string {
		return fmt.Sprintf(`{"port_forwarding":{"protocol":%q,"external_port":%d,"internal_port":%d,"internal_ip_address":%q,"internal_port_id":%q}}`,
			proto, ext, in, e.vmIP, e.vm)
	}
	pf := obj(c.create(pfs, ssh("tcp", 2222, 22)), "port_forwarding")
	if pf["id"] == "" || pf["protocol"] != "tcp" || pf["external_port"] != float64(2222) || pf["internal_port"] != float64(22) ||
		pf["internal_ip_address"] != e.vmIP || pf["internal_port_id"] != e.vm {
		t.Fatalf("port forwarding: %v", pf)
	}
	pfID := pf["id"].(string)
	f := obj(c.mustDo("GET", "/v2.0/floatingips/"+fip, "", 200), "floatingip")
	if len(f["port_forwardings"].([]any)) != 1 || f["router_id"] != e.router || f["status"] != "ACTIVE" || f["port_id"] != nil {
		t.Fatalf("floating IP with a port forwarding: %v", f)
	}
	c.create(pfs, ssh("udp", 2222, 22)) // another protocol, another forwarding
	if _, out := c.do("GET", pfs+"?protocol=udp", ""); len(out["port_forwardings"].([]any)) != 1 {
		t.Fatalf("list with a filter: %v", out)
	}
	if got := obj(c.mustDo("GET", pfs+"/"+pfID, "", 200), "port_forwarding"); got["external_port"] != float64(2222) {
		t.Fatalf("show: %v", got)
	}

	c.mustReject([]rejected{
		{"duplicate external port", "POST", pfs, ssh("tcp", 2222, 8080), 409, "PortForwardingInUse"},
		{"duplicate internal address and port", "POST", pfs, ssh("tcp", 2223, 22), 409, "PortForwardingInUse"},
		{"an internal port no router reaches", "POST", pfs, fmt.Sprintf(`{"port_forwarding":{"protocol":"tcp","external_port":80,"internal_port":80,"internal_ip_address":"10.1.0.2","internal_port_id":%q}}`, e.island), 404, "ExternalGatewayForFloatingIPNotFound"},
		{"a protocol other than tcp and udp", "POST", pfs, ssh("icmp", 1, 1), 400, "InvalidInput"},
		{"external port 0", "POST", pfs, ssh("tcp", 0, 22), 400, "InvalidInput"},
		{"a port range", "POST", pfs, `{"port_forwarding":{"external_port_range":"1:2"}}`, 400, "BadRequest"},
		{"internal address too long", "POST", pfs, `{"port_forwarding":{"internal_ip_address":"` + strings.Repeat("1", MaxAddressLen+1) + `"}}`, 400, "InvalidInput"},
		{"missing fields", "POST", pfs, `{"port_forwarding":{"protocol":"tcp"}}`, 400, "InvalidInput"},
		{"on a missing floating IP", "POST", "/v2.0/floatingips/nope/port_forwardings", ssh("tcp", 80, 80), 404, "FloatingIPNotFound"},
		{"list on a missing floating IP", "GET", "/v2.0/floatingips/nope/port_forwardings", ``, 404, "FloatingIPNotFound"},
		{"show a missing one", "GET", pfs + "/nope", ``, 404, "PortForwardingNotFound"},
		{"delete a missing one", "DELETE", pfs + "/nope", ``, 404, "PortForwardingNotFound"},
		{"id differs from the path", "PUT", pfs + "/" + pfID, `{"port_forwarding":{"id":"other"}}`, 400, "BadRequest"},
		{"associate a floating IP that forwards ports", "PUT", "/v2.0/floatingips/" + fip, fmt.Sprintf(`{"floatingip":{"port_id":%q}}`, e.vm), 409, "FloatingIPPortForwardingInUse"},
	})

	pf = obj(c.mustDo("PUT", pfs+"/"+pfID, `{"port_forwarding":{"external_port":2200,"description":"ssh"}}`, 200), "port_forwarding")
	if pf["external_port"] != float64(2200) || pf["description"] != "ssh" || pf["internal_port"] != float64(22) {
		t.Fatalf("updated: %v", pf)
	}
	c.mustDo("DELETE", pfs+"/"+pfID, "", 204)
	if _, out := c.do("GET", pfs, ""); len(out["port_forwardings"].([]any)) != 1 {
		t.Fatalf("after a delete: %v", out)
	}
}

// TestFloatingIPsAreTheProjects: a member takes floating IPs from an
// external network it does not own and points them at its own ports
// only; another project's floating IPs are not found.
func TestFloatingIPsAreTheProjects(t *testing.T) {
	s := startScopedAPI(t)
	ext := s.mustCreate("tok-admin", "/v2.0/networks", `{"network":{"name":"public","router:external":true,"provider:network_type":"flat","provider:physical_network":"physnet1"}}`)["id"].(string)
	s.mustCreate("tok-admin", "/v2.0/subnets", `{"subnet":{"network_id":"`+ext+`","cidr":"192.0.2.0/24","enable_dhcp":false}}`)

	// A sees the external network, without its admin-only attributes,
	// and may not change it, nor plug into it.
	code, out := s.as("tok-a", "GET", "/v2.0/networks/"+ext, "")
	if n, _ := out["network"].(map[string]any); code != 200 || n["router:external"] != true || n["provider:physical_network"] != nil {
		t.Fatalf("A shows the external network: %d %v", code, out)
	}
	if _, out := s.as("tok-a", "GET", "/v2.0/networks?router:external=True", ""); len(out["networks"].([]any)) != 1 {
		t.Fatalf("A lists external networks: %v", out)
	}
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{"PUT", "/v2.0/networks/" + ext, `{"network":{"name":"mine"}}`, 403},
		{"DELETE", "/v2.0/networks/" + ext, ``, 403},
		{"POST", "/v2.0/ports", `{"port":{"network_id":"` + ext + `"}}`, 404},
		{"POST", "/v2.0/subnets", `{"subnet":{"network_id":"` + ext + `","cidr":"198.51.100.0/24"}}`, 404},
	} {
		if code, out := s.as("tok-a", tc.method, tc.path, tc.body); code != tc.want {
			t.Errorf("A %s %s: %d %v, want %d", tc.method, tc.path, code, out, tc.want)
		}
	}

	inner := s.mustCreate("tok-a", "/v2.0/networks", `{"network":{"name":"a"}}`)["id"].(string)
	sub := s.mustCreate("tok-a", "/v2.0/subnets", `{"subnet":{"network_id":"`+inner+`","cidr":"10.0.0.0/24"}}`)["id"].(string)
	router := s.mustCreate("tok-a", "/v2.0/routers", `{"router":{"name":"r"}}`)["id"].(string)
	if code, out := s.as("tok-a", "PUT", "/v2.0/routers/"+router, `{"router":{"external_gateway_info":{"network_id":"`+ext+`"}}}`); code != 200 {
		t.Fatalf("A sets its router's gateway: %d %v", code, out)
	}
	for _, body := range []string{`{"router":{"external_gateway_info":{"network_id":"` + ext + `","enable_snat":false}}}`,
		`{"router":{"external_gateway_info":{"network_id":"` + ext + `","external_fixed_ips":[{"ip_address":"192.0.2.9"}]}}}`} {
		if code, out := s.as("tok-a", "PUT", "/v2.0/routers/"+router, body); code != 403 {
			t.Errorf("A PUT %s: %d %v, want 403", body, code, out)
		}
	}
	if code, out := s.as("tok-a", "PUT", "/v2.0/routers/"+router+"/add_router_interface", `{"subnet_id":"`+sub+`"}`); code != 200 {
		t.Fatalf("add_router_interface: %d %v", code, out)
	}
	portA := s.mustCreate("tok-a", "/v2.0/ports", `{"port":{"network_id":"`+inner+`"}}`)["id"].(string)
	netB := s.mustCreate("tok-b", "/v2.0/networks", `{"network":{"name":"b"}}`)["id"].(string)
	s.mustCreate("tok-b", "/v2.0/subnets", `{"subnet":{"network_id":"`+netB+`","cidr":"10.5.0.0/24"}}`)
	portB := s.mustCreate("tok-b", "/v2.0/ports", `{"port":{"network_id":"`+netB+`"}}`)["id"].(string)

	f := s.mustCreate("tok-a", "/v2.0/floatingips", `{"floatingip":{"floating_network_id":"`+ext+`"}}`)
	if f["project_id"] != "proj-a" || f["tenant_id"] != "proj-a" {
		t.Fatalf("A's floating IP: %v", f)
	}
	fip := f["id"].(string)
	if code, out := s.as("tok-a", "PUT", "/v2.0/floatingips/"+fip, `{"floatingip":{"port_id":"`+portA+`"}}`); code != 200 {
		t.Fatalf("A associates with its port: %d %v", code, out)
	}
	for _, tc := range []struct {
		token, method, path, body string
		want                      int
	}{
		{"tok-a", "PUT", "/v2.0/floatingips/" + fip, `{"floatingip":{"port_id":"` + portB + `"}}`, 404},
		{"tok-a", "POST", "/v2.0/floatingips", `{"floatingip":{"floating_network_id":"` + ext + `","port_id":"` + portB + `"}}`, 404},
		{"tok-a", "POST", "/v2.0/floatingips", `{"floatingip":{"floating_network_id":"` + ext + `","floating_ip_address":"192.0.2.200"}}`, 403},
		{"tok-a", "POST", "/v2.0/floatingips", `{"floatingip":{"floating_network_id":"` + netB + `"}}`, 404},
		{"tok-a", "POST", "/v2.0/floatingips", `{"floatingip":{"floating_network_id":"` + ext + `","project_id":"proj-b"}}`, 403},
		{"tok-b", "GET", "/v2.0/floatingips/" + fip, ``, 404},
		{"tok-b", "PUT", "/v2.0/floatingips/" + fip, `{"floatingip":{"port_id":null}}`, 404},
		{"tok-b", "DELETE", "/v2.0/floatingips/" + fip, ``, 404},
		{"tok-b", "GET", "/v2.0/floatingips/" + fip + "/port_forwardings", ``, 404},
		{"tok-b", "POST", "/v2.0/floatingips/" + fip + "/port_forwardings", `{"port_forwarding":{"protocol":"tcp","external_port":22,"internal_port":22,"internal_ip_address":"10.5.0.2","internal_port_id":"` + portB + `"}}`, 404},
	} {
		if code, out := s.as(tc.token, tc.method, tc.path, tc.body); code != tc.want {
			t.Errorf("%s %s %s %s: %d %v, want %d", tc.token, tc.method, tc.path, tc.body, code, out, tc.want)
		}
	}
	if _, out := s.as("tok-b", "GET", "/v2.0/floatingips", ""); len(out["floatingips"].([]any)) != 0 {
		t.Errorf("B lists A's floating IPs: %v", out)
	}
	// A's port forwardings reach A's ports only.
	pfs := "/v2.0/floatingips/" + s.mustCreate("tok-a", "/v2.0/floatingips", `{"floatingip":{"floating_network_id":"`+ext+`"}}`)["id"].(string) + "/port_forwardings"
	if code, out := s.as("tok-a", "POST", pfs, `{"port_forwarding":{"protocol":"tcp","external_port":22,"internal_port":22,"internal_ip_address":"10.5.0.2","internal_port_id":"`+portB+`"}}`); code != 404 {
		t.Errorf("A forwards to B's port: %d %v, want 404", code, out)
	}
	_, out = s.as("tok-a", "GET", "/v2.0/ports/"+portA, "")
	ipA := out["port"].(map[string]any)["fixed_ips"].([]any)[0].(map[string]any)["ip_address"].(string)
	s.mustCreate("tok-a", pfs, `{"port_forwarding":{"protocol":"tcp","external_port":2222,"internal_port":22,"internal_ip_address":"`+ipA+`","internal_port_id":"`+portA+`"}}`)
	if _, out := s.as("tok-a", "GET", pfs, ""); len(out["port_forwardings"].([]any)) != 1 {
		t.Errorf("A lists its port forwardings: %v", out)
	}
	if code, _ := s.as("tok-a", "DELETE", "/v2.0/floatingips/"+fip, ""); code != 204 {
		t.Errorf("A deletes its floating IP: %d", code)
	}
}

// rawGet answers a GET's body as the server wrote it.
func rawGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// TestTypedFieldsWinOverStoredOnes: an object an older release stored
// with router:external, provider:physical_network, external_gateway_info
// or routes among its passive fields shows each once, as typed.
func TestTypedFieldsWinOverStoredOnes(t *testing.T) {
	mem := cluster.NewMemory("old-records")
	srv := httptest.NewServer(New(mem, Options{}, zaptest.NewLogger(t)).Handler())
	defer srv.Close()
	old := map[string][]byte{"router:external": []byte(`true`), "provider:physical_network": []byte(`"physnet9"`), "availability_zone_hints": []byte(`["az1"]`)}
	if _, err := mem.Propose(context.Background(), cluster.CmdNetworksCreate, cluster.NetworksCreate{Specs: []topology.NetworkSpec{{ID: "n1", Extra: raw(old)}}}); err != nil {
		t.Fatal(err)
	}
	oldRouter := map[string][]byte{"external_gateway_info": []byte(`{"network_id":"x"}`), "routes": []byte(`[{"destination":"10.0.0.0/8","nexthop":"10.0.0.1"}]`), "ha": []byte(`false`)}
	if _, err := mem.Propose(context.Background(), cluster.CmdRoutersCreate, cluster.RoutersCreate{Specs: []topology.RouterSpec{{ID: "r1", Extra: raw(oldRouter)}}}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v2.0/networks", "/v2.0/networks?id=n1", "/v2.0/networks/n1"} {
		body := rawGet(t, srv.URL+path)
		if strings.Count(body, `"router:external"`) != 1 || strings.Count(body, `"provider:physical_network"`) != 1 ||
			!strings.Contains(body, `"router:external":false`) || !strings.Contains(body, `"provider:physical_network":null`) ||
			!strings.Contains(body, `"availability_zone_hints":["az1"]`) {
			t.Errorf("GET %s: %s", path, body)
		}
	}
	for _, path := range []string{"/v2.0/routers", "/v2.0/routers?id=r1", "/v2.0/routers/r1"} {
		body := rawGet(t, srv.URL+path)
		if strings.Count(body, `"external_gateway_info"`) != 1 || strings.Count(body, `"routes"`) != 1 ||
			!strings.Contains(body, `"external_gateway_info":null`) || !strings.Contains(body, `"routes":[]`) || !strings.Contains(body, `"ha":false`) {
			t.Errorf("GET %s: %s", path, body)
		}
	}
}

func raw(m map[string][]byte) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestExtensionsListWhatIsBuilt(t *testing.T) {
	c := startAPI(t)
	_, out := c.do("GET", "/v2.0/extensions", "")
	have := map[string]bool{}
	for _, e := range out["extensions"].([]any) {
		have[e.(map[string]any)["alias"].(string)] = true
	}
	for _, alias := range []string{"provider", "external-net", "router", "ext-gw-mode", "extraroute", "floating-ip-port-forwarding",
		"security-group", "port-security"} {
		if !have[alias] {
			t.Errorf("extension %s is not listed", alias)
		}
	}
	for _, alias := range []string{"l3-flavors", "fip-port-details", "l3-ha"} {
		if have[alias] {
			t.Errorf("extension %s is listed but not built", alias)
		}
	}
}
