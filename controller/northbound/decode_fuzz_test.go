package northbound

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// fuzzDecode runs one body through what the API does to a create body —
// the guard's JSON checks, then the decoder — and asserts: a refusal is a
// 400 with Neutron's error; an accepted body is within every bound, and
// encoding what was decoded and decoding it again gives the same requests.
func fuzzDecode[Req specReq[Spec], Spec any](t *testing.T, res resource, body []byte) {
	refused := func(err error) {
		var ae *apiError
		var te *topology.Error
		if !(errors.As(err, &ae) && ae.status == 400) && !(errors.As(err, &te) && te.Kind == topology.KindInvalid) {
			t.Fatalf("decode error %v is not a 400", err)
		}
	}
	if err := checkJSONText(body); err != nil {
		refused(err)
		return
	}
	decode := func(b []byte) ([]Req, []map[string]json.RawMessage, bool, error) {
		return decodeReqs[Req](res, httptest.NewRequest("POST", "/v2.0/"+res.plural, bytes.NewReader(b)), true)
	}
	reqs, passive, bulk, err := decode(body)
	if err != nil {
		refused(err)
		return
	}
	if len(reqs) == 0 {
		t.Fatal("no error and no requests")
	}
	for i, rq := range reqs {
		if _, err := rq.spec("", passive[i]); err != nil {
			refused(err)
			return
		}
		withinBounds(t, reflect.ValueOf(rq), string(body))
		for k, v := range passive[i] {
			if len(v) > MaxPassiveBytes || !json.Valid(v) || !utf8.Valid(v) {
				t.Fatalf("passive %s accepted out of bounds: %.100s", k, v)
			}
		}
	}
	// Round trip.
	objs := make([]map[string]any, len(reqs))
	for i, rq := range reqs {
		objs[i] = encodeReq(rq, passive[i])
	}
	var wrapper any = map[string]any{res.singular: objs[0]}
	if bulk {
		wrapper = map[string]any{res.plural: objs}
	}
	again, _ := json.Marshal(wrapper)
	if err := checkJSONText(again); err != nil {
		t.Fatalf("re-encoded body %s refused by the guard: %v", again, err)
	}
	reqs2, passive2, bulk2, err := decode(again)
	if err != nil {
		t.Fatalf("re-encoded body %s refused: %v", again, err)
	}
	if bulk2 != bulk || !reflect.DeepEqual(reqs, reqs2) || !sameJSON(passive, passive2) {
		t.Fatalf("round trip changed the request:\n%+v %v\n%+v %v", reqs, passive, reqs2, passive2)
	}
}

// withinBounds walks a decoded request: every string is UTF-8 within the
// longest string bound, every list within the longest list bound, and no
// U+FFFD appears that the client did not send.
func withinBounds(t *testing.T, v reflect.Value, body string) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			withinBounds(t, v.Elem(), body)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			withinBounds(t, v.Field(i), body)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 { // json.RawMessage
			if v.Len() > MaxAddressLen+2 {
				t.Fatalf("raw field of %d bytes accepted", v.Len())
			}
			return
		}
		if v.Len() > max(MaxTags, MaxAllocationPools, MaxSecurityGroupsPerPort) {
			t.Fatalf("list of %d accepted", v.Len())
		}
		for i := 0; i < v.Len(); i++ {
			withinBounds(t, v.Index(i), body)
		}
	case reflect.String:
		s := v.String()
		if !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxNameLen {
			t.Fatalf("string out of bounds accepted: %.100q", s)
		}
		if strings.ContainsRune(s, utf8.RuneError) && !strings.ContainsRune(body, utf8.RuneError) && !strings.Contains(strings.ToLower(body), `\ufffd`) {
			t.Fatalf("U+FFFD the client did not send: %.100q", s)
		}
	}
}

// encodeReq turns a decoded request back into a body object: the fields
// it had (absent ones stay absent: nil, or a nullable that was not set)
// and its passive fields.
func encodeReq(rq any, passive map[string]json.RawMessage) map[string]any {
	m := map[string]any{}
	v := reflect.ValueOf(rq)
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if (f.Kind() == reflect.Pointer || f.Kind() == reflect.Slice) && f.IsNil() {
			continue
		}
		if z, ok := f.Interface().(interface{ IsZero() bool }); ok && z.IsZero() {
			continue
		}
		m[strings.Split(v.Type().Field(i).Tag.Get("json"), ",")[0]] = f.Interface()
	}
	for k, x := range passive {
		m[k] = x
	}
	return m
}

func sameJSON(a, b []map[string]json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for k, x := range a[i] {
			var va, vb any
			if json.Unmarshal(x, &va) != nil || json.Unmarshal(b[i][k], &vb) != nil || !reflect.DeepEqual(va, vb) {
				return false
			}
		}
	}
	return true
}

// FuzzDecodePortRequest: any port body decodes within bounds or is a 400.
func FuzzDecodePortRequest(f *testing.F) {
	f.Add(`{"port":{"network_id":"n","fixed_ips":[{"subnet_id":"s"}],"binding:profile":{}}}`)
	f.Add(`{"ports":[{"network_id":"n","mac_address":"fa:16:3e:00:00:01"},{"name":"x"}]}`)
	f.Add(`{"port":{"allowed_address_pairs":[{"ip_address":"10.0.0.0/24"}],"tags":["a"]}}`)
	f.Add(`{"port":{"binding:vnic_type":"normal","binding:host_id":"hv1","device_owner":"compute:nova"}}`)
	f.Add(`{"port":null}`)
	f.Fuzz(func(t *testing.T, body string) { fuzzDecode[portReq, topology.PortSpec](t, ports, []byte(body)) })
}

// FuzzDecodeNetworkRequest: any network body decodes within bounds or is a 400.
func FuzzDecodeNetworkRequest(f *testing.F) {
	f.Add(`{"network":{"name":"n","provider:network_type":"gre","provider:segmentation_id":7,"mtu":1400}}`)
	f.Add(`{"networks":[{"name":"a","tags":["x","y"]},{"availability_zone_hints":["az1"],"shared":true}]}`)
	f.Add(`{"network":{"id":"x","description":"caf\u00e9 \ud83d\ude00","router:external":true}}`)
	f.Fuzz(func(t *testing.T, body string) {
		fuzzDecode[networkReq, topology.NetworkSpec](t, networks, []byte(body))
	})
}

// FuzzDecodeSubnetRequest: any subnet body decodes within bounds or is a 400.
func FuzzDecodeSubnetRequest(f *testing.F) {
	f.Add(`{"subnet":{"network_id":"n","cidr":"10.0.0.0/24","gateway_ip":null,"enable_dhcp":false}}`)
	f.Add(`{"subnet":{"network_id":"n","cidr":"10.0.0.0/24","gateway_ip":"10.0.0.1","allocation_pools":[{"start":"10.0.0.2","end":"10.0.0.9"}]}}`)
	f.Add(`{"subnets":[{"network_id":"n","cidr":"10.1.0.0/16","dns_nameservers":["8.8.8.8"],"host_routes":[{"destination":"0.0.0.0/0","nexthop":"10.1.0.1"}]}]}`)
	f.Fuzz(func(t *testing.T, body string) { fuzzDecode[subnetReq, topology.SubnetSpec](t, subnets, []byte(body)) })
}

// FuzzDecodeRouterRequest: any router body decodes within bounds or is a 400.
func FuzzDecodeRouterRequest(f *testing.F) {
	f.Add(`{"router":{"name":"r","admin_state_up":false,"distributed":true}}`)
	f.Add(`{"routers":[{"name":"a","external_gateway_info":{"network_id":"x"}},{"tags":[]}]}`)
	f.Add(`{"router":{"external_gateway_info":{"network_id":"x","enable_snat":false,"external_fixed_ips":[{"subnet_id":"s"},{"ip_address":"192.0.2.9"}]}}}`)
	f.Add(`{"router":{"external_gateway_info":null,"routes":null}}`)
	f.Add(`{"router":{"external_gateway_info":{},"routes":[{"destination":"10.9.0.0/16","nexthop":"10.0.0.9"}]}}`)
	f.Add(`{"router":{"external_gateway_info":{"enable_snat":true}}}`)
	f.Fuzz(func(t *testing.T, body string) { fuzzDecode[routerReq, topology.RouterSpec](t, routers, []byte(body)) })
}

// FuzzDecodeFloatingIPRequest: any floating IP body decodes within bounds
// or is a 400.
func FuzzDecodeFloatingIPRequest(f *testing.F) {
	f.Add(`{"floatingip":{"floating_network_id":"n","port_id":"p","fixed_ip_address":"10.0.0.5","description":"d"}}`)
	f.Add(`{"floatingip":{"floating_network_id":"n","subnet_id":"s","floating_ip_address":"192.0.2.10","tags":["a"]}}`)
	f.Add(`{"floatingip":{"port_id":null,"fixed_ip_address":null}}`)
	f.Add(`{"floatingip":{"port_id":7}}`)
	f.Fuzz(func(t *testing.T, body string) {
		fuzzDecode[floatingIPReq, topology.FloatingIPSpec](t, floatingips, []byte(body))
	})
}

// FuzzDecodePortForwardingRequest: any port forwarding body decodes
// within bounds or is a 400.
func FuzzDecodePortForwardingRequest(f *testing.F) {
	f.Add(`{"port_forwarding":{"protocol":"tcp","external_port":2222,"internal_port":22,"internal_ip_address":"10.0.0.5","internal_port_id":"p"}}`)
	f.Add(`{"port_forwarding":{"description":"ssh","external_port":"22"}}`)
	f.Add(`{"port_forwarding":{"protocol":"udp","internal_port":-1,"external_port_range":"1:2"}}`)
	f.Fuzz(func(t *testing.T, body string) {
		fuzzDecode[portForwardingReq, topology.PortForwardingSpec](t, portForwardings, []byte(body))
	})
}

// FuzzDecodeRouterInterfaceRequest: an add/remove_router_interface body
// decodes as the handler decodes it, or is a 400.
func FuzzDecodeRouterInterfaceRequest(f *testing.F) {
	f.Add(`{"subnet_id":"s"}`)
	f.Add(`{"port_id":"p"}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, s string) {
		body := []byte(s)
		type ifaceReq struct {
			SubnetID string `json:"subnet_id"` // as routerInterface reads it
		}
		var ae *apiError
		if err := checkJSONText(body); err != nil {
			if !errors.As(err, &ae) || ae.status != 400 {
				t.Fatalf("guard error %v is not a 400", err)
			}
			return
		}
		var rq ifaceReq
		if err := readStrict(httptest.NewRequest("PUT", "/", bytes.NewReader(body)), &rq); err != nil {
			if !errors.As(err, &ae) || ae.status != 400 {
				t.Fatalf("decode error %v is not a 400", err)
			}
			return
		}
		if !utf8.ValidString(rq.SubnetID) {
			t.Fatalf("subnet_id %q is not UTF-8", rq.SubnetID)
		}
		again, _ := json.Marshal(rq)
		var rq2 ifaceReq
		if err := readStrict(httptest.NewRequest("PUT", "/", bytes.NewReader(again)), &rq2); err != nil || rq2 != rq {
			t.Fatalf("round trip: %v %+v %+v", err, rq, rq2)
		}
	})
}

// FuzzDecodeSecurityGroupRequest: any security group body decodes within
// bounds or is a 400.
func FuzzDecodeSecurityGroupRequest(f *testing.F) {
	f.Add(`{"security_group":{"name":"web","description":"web","stateful":true,"tags":["a"]}}`)
	f.Add(`{"security_groups":[{"name":"a"},{"name":"b","project_id":"p"}]}`)
	f.Add(`{"security_group":{"id":"x","security_group_rules":[]}}`)
	f.Fuzz(func(t *testing.T, body string) {
		fuzzDecode[securityGroupReq, topology.SecurityGroupSpec](t, securityGroups, []byte(body))
	})
}

// FuzzDecodeSecurityGroupRuleRequest: any security group rule body
// decodes within bounds or is a 400.
func FuzzDecodeSecurityGroupRuleRequest(f *testing.F) {
	f.Add(`{"security_group_rule":{"security_group_id":"g","direction":"ingress","protocol":"tcp","port_range_min":22,"port_range_max":"22","remote_ip_prefix":"10.0.0.0/8"}}`)
	f.Add(`{"security_group_rules":[{"security_group_id":"g","direction":"egress","protocol":6},{"security_group_id":"g","direction":"ingress","protocol":null,"remote_group_id":"g"}]}`)
	f.Add(`{"security_group_rule":{"security_group_id":"g","protocol":true,"port_range_min":"x","remote_address_group_id":"a"}}`)
	f.Fuzz(func(t *testing.T, body string) {
		fuzzDecode[securityGroupRuleReq, topology.SecurityGroupRuleSpec](t, securityGroupRules, []byte(body))
	})
}
