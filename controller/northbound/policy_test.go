package northbound

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/wyvern-sdn/wyvern/controller/cluster"
)

// tokens is the unit seam for identity: each token is one caller. The
// real Keystone is exercised by cmd/wyvernd's auth test.
type tokens map[string]Caller

func (tk tokens) Authenticate(_ context.Context, token string) (Caller, error) {
	c, ok := tk[token]
	if !ok {
		return Caller{}, ErrUnauthenticated
	}
	return c, nil
}

type scoped struct {
	t    *testing.T
	base string
}

func startScopedAPI(t *testing.T) scoped {
	auth := tokens{"tok-a": {UserID: "ua", ProjectID: "proj-a"}, "tok-b": {UserID: "ub", ProjectID: "proj-b"},
		"tok-admin": {UserID: "root", ProjectID: "proj-admin", Admin: true}}
	srv := httptest.NewServer(New(cluster.NewMemory("policy-test"), Options{Auth: auth, KeystoneURI: "http://keystone/v3"}, zaptest.NewLogger(t)).Handler())
	t.Cleanup(srv.Close)
	return scoped{t, srv.URL}
}

// as sends a request with a token ("" for none).
func (s scoped) as(token, method, path, body string) (int, map[string]any) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	if resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
		s.t.Errorf("%s %s: 401 without WWW-Authenticate", method, path)
	}
	return resp.StatusCode, out
}

func (s scoped) mustCreate(token, path, body string) map[string]any {
	s.t.Helper()
	code, out := s.as(token, "POST", path, body)
	if code != http.StatusCreated {
		s.t.Fatalf("POST %s %s as %s: %d %v", path, body, token, code, out)
	}
	for _, v := range out {
		return v.(map[string]any)
	}
	return nil
}

func TestTokensAreRequiredButForDiscovery(t *testing.T) {
	s := startScopedAPI(t)
	for _, path := range []string{"/", "/v2.0/", "/livez", "/readyz", "/healthz", "/v2.0/cluster/raft-address"} {
		if code, _ := s.as("", "GET", path, ""); code != http.StatusOK {
			t.Errorf("GET %s without a token: %d, want 200", path, code)
		}
	}
	for _, tc := range []struct{ token, method, path string }{
		{"", "GET", "/v2.0/networks"}, {"bogus", "GET", "/v2.0/networks"}, {"", "POST", "/v2.0/networks"},
		{"", "GET", "/v2.0/extensions"}, {"", "DELETE", "/v2.0/cluster/members/n1"}, {"", "GET", "/v2.0/nothing"},
	} {
		if code, out := s.as(tc.token, tc.method, tc.path, `{"network":{}}`); code != http.StatusUnauthorized {
			t.Errorf("%s %s with token %q: %d %v, want 401", tc.method, tc.path, tc.token, code, out)
		}
	}
	if code, _ := s.as("", "POST", "/v2.0/networks", `{"network":{"name":"x"}}`); code != http.StatusUnauthorized {
		t.Fatal("an unauthenticated create was not refused")
	}
	if _, out := s.as("tok-admin", "GET", "/v2.0/networks", ""); len(out["networks"].([]any)) != 0 {
		t.Fatalf("a refused create left %v", out)
	}
}

func TestProjectsSeeOnlyTheirOwn(t *testing.T) {
	s := startScopedAPI(t)
	netA := s.mustCreate("tok-a", "/v2.0/networks", `{"network":{"name":"a"}}`)
	if netA["project_id"] != "proj-a" || netA["tenant_id"] != "proj-a" {
		t.Fatalf("project not taken from the token: %v", netA)
	}
	if _, ok := netA["provider:segmentation_id"]; ok {
		t.Fatalf("a member reads admin-only attributes: %v", netA)
	}
	idA := netA["id"].(string)
	sub := s.mustCreate("tok-a", "/v2.0/subnets", `{"subnet":{"network_id":"`+idA+`","cidr":"10.1.0.0/24","ip_version":4}}`)
	port := s.mustCreate("tok-a", "/v2.0/ports", `{"port":{"network_id":"`+idA+`"}}`)
	router := s.mustCreate("tok-a", "/v2.0/routers", `{"router":{"name":"r"}}`)
	s.mustCreate("tok-b", "/v2.0/networks", `{"network":{"name":"b"}}`)

	for _, tc := range []struct{ plural, id string }{
		{"networks", idA}, {"subnets", sub["id"].(string)}, {"ports", port["id"].(string)}, {"routers", router["id"].(string)},
	} {
		_, out := s.as("tok-b", "GET", "/v2.0/"+tc.plural, "")
		for _, o := range out[tc.plural].([]any) {
			if o.(map[string]any)["id"] == tc.id {
				t.Errorf("project B lists A's %s", tc.plural)
			}
		}
		if code, _ := s.as("tok-b", "GET", "/v2.0/"+tc.plural+"/"+tc.id, ""); code != http.StatusNotFound {
			t.Errorf("B shows A's %s: %d, want 404", tc.plural, code)
		}
		if code, _ := s.as("tok-b", "PUT", "/v2.0/"+tc.plural+"/"+tc.id, `{"`+strings.TrimSuffix(tc.plural, "s")+`":{"name":"mine"}}`); code != http.StatusNotFound {
			t.Errorf("B updates A's %s: %d, want 404", tc.plural, code)
		}
		if code, _ := s.as("tok-b", "DELETE", "/v2.0/"+tc.plural+"/"+tc.id, ""); code != http.StatusNotFound {
			t.Errorf("B deletes A's %s: %d, want 404", tc.plural, code)
		}
		if code, _ := s.as("tok-a", "GET", "/v2.0/"+tc.plural+"/"+tc.id, ""); code != http.StatusOK {
			t.Errorf("A cannot show its own %s: %d", tc.plural, code)
		}
	}
	if code, out := s.as("tok-b", "POST", "/v2.0/ports", `{"port":{"network_id":"`+idA+`"}}`); code != http.StatusNotFound {
		t.Errorf("B creates a port on A's private network: %d %v, want 404", code, out)
	}
	if code, _ := s.as("tok-b", "PUT", "/v2.0/routers/"+router["id"].(string)+"/add_router_interface", `{"subnet_id":"`+sub["id"].(string)+`"}`); code != http.StatusNotFound {
		t.Errorf("B adds an interface to A's router: %d, want 404", code)
	}
	// The admin sees both projects.
	_, out := s.as("tok-admin", "GET", "/v2.0/networks", "")
	if n := len(out["networks"].([]any)); n != 2 {
		t.Errorf("admin lists %d networks, want 2", n)
	}
}

func TestAdminOnlyAttributesAndActions(t *testing.T) {
	s := startScopedAPI(t)
	net := s.mustCreate("tok-a", "/v2.0/networks", `{"network":{"name":"a"}}`)
	id := net["id"].(string)
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/v2.0/networks", `{"network":{"provider:segmentation_id":77}}`},
		{"POST", "/v2.0/networks", `{"network":{"provider:network_type":"gre"}}`},
		{"POST", "/v2.0/networks", `{"network":{"router:external":true}}`},
		{"POST", "/v2.0/networks", `{"network":{"shared":true}}`},
		{"PUT", "/v2.0/networks/" + id, `{"network":{"provider:segmentation_id":77}}`},
		{"POST", "/v2.0/networks", `{"network":{"project_id":"proj-b"}}`},
		{"POST", "/v2.0/ports", `{"port":{"network_id":"` + id + `","binding:host_id":"hv1"}}`},
		{"POST", "/v2.0/ports", `{"port":{"network_id":"` + id + `","binding:profile":{}}}`},
		{"GET", "/v2.0/chassis", ""},
		{"GET", "/v2.0/chassis/hv1", ""},
		{"GET", "/v2.0/cluster", ""},
		{"DELETE", "/v2.0/cluster/members/n1", ""},
		{"GET", "/v2.0/events?timeout=0", ""},
	} {
		if code, out := s.as("tok-a", tc.method, tc.path, tc.body); code != http.StatusForbidden {
			t.Errorf("member %s %s %s: %d %v, want 403", tc.method, tc.path, tc.body, code, out)
		}
	}
	port := s.mustCreate("tok-a", "/v2.0/ports", `{"port":{"network_id":"`+id+`"}}`)
	if code, _ := s.as("tok-a", "PUT", "/v2.0/ports/"+port["id"].(string), `{"port":{"binding:host_id":"hv9"}}`); code != http.StatusForbidden {
		t.Errorf("a member binds its port: %d, want 403", code)
	}
	// On its own network, a member chooses its addresses and security.
	s.mustCreate("tok-a", "/v2.0/ports", `{"port":{"network_id":"`+id+`","mac_address":"fa:16:3e:00:00:42","port_security_enabled":false}}`)
	// Emptying or moving the project would orphan the object.
	for _, body := range []string{`{"network":{"project_id":""}}`, `{"network":{"tenant_id":"proj-b"}}`} {
		if code, out := s.as("tok-a", "PUT", "/v2.0/networks/"+id, body); code != http.StatusForbidden {
			t.Errorf("member PUT %s: %d %v, want 403", body, code, out)
		}
	}
	if code, _ := s.as("tok-a", "PUT", "/v2.0/networks/"+id, `{"network":{"project_id":"proj-a","name":"same"}}`); code != http.StatusOK {
		t.Errorf("member naming its own project on update: %d", code)
	}
	for _, body := range []string{`{"router":{"distributed":false}}`, `{"router":{"ha":true}}`,
		`{"router":{"external_gateway_info":{"network_id":"x","enable_snat":false}}}`} {
		if code, out := s.as("tok-a", "POST", "/v2.0/routers", body); code != http.StatusForbidden {
			t.Errorf("member POST router %s: %d %v, want 403", body, code, out)
		}
	}
	// The admin may do all of it, for any project.
	byAdmin := s.mustCreate("tok-admin", "/v2.0/networks", `{"network":{"provider:segmentation_id":77,"project_id":"proj-b"}}`)
	if byAdmin["project_id"] != "proj-b" || byAdmin["provider:segmentation_id"] != float64(77) {
		t.Errorf("admin create: %v", byAdmin)
	}
	// As Neutron converts it, and as the openstack CLI sends it: a string.
	if n := s.mustCreate("tok-admin", "/v2.0/networks", `{"network":{"provider:segmentation_id":"78"}}`); n["provider:segmentation_id"] != float64(78) {
		t.Errorf("segmentation id given as a string: %v", n)
	}
	if code, _ := s.as("tok-admin", "POST", "/v2.0/networks", `{"network":{"provider:segmentation_id":"7x"}}`); code != http.StatusBadRequest {
		t.Errorf("segmentation id 7x: %d, want 400", code)
	}
	if code, _ := s.as("tok-admin", "GET", "/v2.0/cluster", ""); code != http.StatusOK {
		t.Errorf("admin reads the cluster: %d", code)
	}
}

func TestSharedNetworksAreUsableNotChangeable(t *testing.T) {
	s := startScopedAPI(t)
	shared := s.mustCreate("tok-admin", "/v2.0/networks", `{"network":{"name":"public","shared":true,"project_id":"proj-admin"}}`)
	id := shared["id"].(string)
	s.mustCreate("tok-admin", "/v2.0/subnets", `{"subnet":{"network_id":"`+id+`","cidr":"10.9.0.0/24","ip_version":4}}`)
	if code, _ := s.as("tok-b", "GET", "/v2.0/networks/"+id, ""); code != http.StatusOK {
		t.Errorf("B cannot see a shared network: %d", code)
	}
	if _, out := s.as("tok-b", "GET", "/v2.0/subnets?network_id="+id, ""); len(out["subnets"].([]any)) != 1 {
		t.Errorf("B cannot see a shared network's subnet: %v", out)
	}
	p := s.mustCreate("tok-b", "/v2.0/ports", `{"port":{"network_id":"`+id+`"}}`)
	if p["project_id"] != "proj-b" {
		t.Errorf("B's port on a shared network belongs to %v", p["project_id"])
	}
	if code, _ := s.as("tok-b", "PUT", "/v2.0/networks/"+id, `{"network":{"name":"mine"}}`); code != http.StatusForbidden {
		t.Errorf("B renames a shared network: %d, want 403", code)
	}
	if code, _ := s.as("tok-b", "POST", "/v2.0/subnets", `{"subnet":{"network_id":"`+id+`","cidr":"10.8.0.0/24","ip_version":4}}`); code != http.StatusForbidden {
		t.Errorf("B adds a subnet to a shared network: %d, want 403", code)
	}
	// What would let B's port pose as another on the admin's network is
	// the network owner's to set.
	for _, body := range []string{
		`{"port":{"network_id":"` + id + `","fixed_ips":[{"ip_address":"10.9.0.1"}]}}`,
		`{"port":{"network_id":"` + id + `","mac_address":"fa:16:3e:00:00:99"}}`,
		`{"port":{"network_id":"` + id + `","allowed_address_pairs":[{"ip_address":"0.0.0.0/0"}]}}`,
		`{"port":{"network_id":"` + id + `","port_security_enabled":false}}`,
		`{"port":{"network_id":"` + id + `","device_owner":"network:dhcp"}}`,
	} {
		if code, out := s.as("tok-b", "POST", "/v2.0/ports", body); code != http.StatusForbidden {
			t.Errorf("B on a shared network: %s: %d %v, want 403", body, code, out)
		}
	}
	for _, body := range []string{`{"port":{"port_security_enabled":false}}`, `{"port":{"allowed_address_pairs":[{"ip_address":"10.9.0.0/24"}]}}`,
		`{"port":{"fixed_ips":[{"subnet_id":"x"}]}}`} {
		if code, out := s.as("tok-b", "PUT", "/v2.0/ports/"+p["id"].(string), body); code != http.StatusForbidden {
			t.Errorf("B updates its port on a shared network: %s: %d %v, want 403", body, code, out)
		}
	}
	// A, the third party, does not see B's port on the shared network.
	if code, _ := s.as("tok-a", "GET", "/v2.0/ports/"+p["id"].(string), ""); code != http.StatusNotFound {
		t.Errorf("A sees B's port: %d", code)
	}
}

// TestBodiesWaitForIdentity: a request without a token is refused before
// its body is read, so a stranger cannot hold connections open by
// trickling bodies.
func TestBodiesWaitForIdentity(t *testing.T) {
	s := startScopedAPI(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "POST /v2.0/networks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{")
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(status, " 401 ") {
		t.Fatalf("a tokenless request with a pending body: %q %v, want 401 at once", status, err)
	}
}

type unavailable struct{}

func (unavailable) Authenticate(context.Context, string) (Caller, error) {
	return Caller{}, errors.New("logging in as wyvern: 500 secret details")
}

// TestIdentityServiceDownIs503: when tokens cannot be checked the answer
// is 503, and it does not repeat what Keystone said.
func TestIdentityServiceDownIs503(t *testing.T) {
	srv := httptest.NewServer(New(cluster.NewMemory("down"), Options{Auth: unavailable{}}, zaptest.NewLogger(t)).Handler())
	defer srv.Close()
	s := scoped{t, srv.URL}
	code, out := s.as("tok", "GET", "/v2.0/networks", "")
	if code != http.StatusServiceUnavailable || strings.Contains(fmt.Sprint(out), "secret") {
		t.Fatalf("%d %v", code, out)
	}
}
