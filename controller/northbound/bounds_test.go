package northbound

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/wyvern-sdn/wyvern/controller/cluster"
)

// raw sends a request as given — path uncleaned, headers as set — and
// never follows a redirect: a 3xx is an answer like any other.
func (c apiClient) raw(method, path, contentType string, body []byte) (int, map[string]any) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(string(body)))
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(b) > 0 && json.Unmarshal(b, &out) != nil {
		c.t.Fatalf("%s %s: %d, body is not JSON: %.200s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, out
}

func repeatJSON(item string, n int) string {
	return "[" + strings.TrimSuffix(strings.Repeat(item+",", n), ",") + "]"
}

// TestHostileInputRefused: each hostile request found answering 2xx or
// 3xx is now a 4xx with Neutron's error body, and changes nothing.
func TestHostileInputRefused(t *testing.T) {
	c := startAPI(t)
	netA := id(c.create("/v2.0/networks", `{"network":{"name":"a"}}`), "network")
	sub := id(c.create("/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"cidr":"10.0.0.0/24"}}`, netA)), "subnet")
	port := id(c.create("/v2.0/ports", fmt.Sprintf(`{"port":{"network_id":%q}}`, netA)), "port")
	onA := func(f string) string { return fmt.Sprintf(f, netA) }
	long := func(n int) string { return strings.Repeat("x", n) }
	fixedIPs := func(n int) string {
		return repeatJSON(fmt.Sprintf(`{"subnet_id":%q}`, sub), n)
	}
	nested := func(n int) string { return strings.Repeat(`{"a":`, n) + `1` + strings.Repeat(`}`, n) }
	const ctJSON = "application/json"

	cases := []struct {
		name, method, path, ctype, body string
		status                          int
		typ                             string
	}{
		// Invalid UTF-8 and unpaired surrogates, which encoding/json turns into U+FFFD.
		{"invalid UTF-8 in a name", "POST", "/v2.0/networks", ctJSON, "{\"network\":{\"name\":\"caf\xe9\"}}", 400, "BadRequest"},
		{"invalid UTF-8 in a passive field", "POST", "/v2.0/networks", ctJSON, "{\"network\":{\"dns_domain\":\"\xff\"}}", 400, "BadRequest"},
		{"lone high surrogate", "POST", "/v2.0/networks", ctJSON, `{"network":{"name":"a\ud800b"}}`, 400, "BadRequest"},
		{"lone low surrogate", "POST", "/v2.0/networks", ctJSON, `{"network":{"name":"\udc00"}}`, 400, "BadRequest"},
		// String lengths.
		{"100 KB name", "POST", "/v2.0/networks", ctJSON, `{"network":{"name":"` + long(100_000) + `"}}`, 400, "InvalidInput"},
		{"256-character name", "POST", "/v2.0/routers", ctJSON, `{"router":{"name":"` + long(256) + `"}}`, 400, "InvalidInput"},
		{"256-character description", "POST", "/v2.0/subnets", ctJSON, onA(`{"subnet":{"network_id":%q,"cidr":"10.1.0.0/24","description":"` + long(256) + `"}}`), 400, "InvalidInput"},
		{"256-character project_id", "POST", "/v2.0/networks", ctJSON, `{"network":{"project_id":"` + long(256) + `"}}`, 400, "InvalidInput"},
		{"256-character id", "POST", "/v2.0/networks", ctJSON, `{"network":{"id":"` + long(256) + `"}}`, 400, "InvalidInput"},
		{"256-character device_owner", "POST", "/v2.0/ports", ctJSON, onA(`{"port":{"network_id":%q,"device_owner":"` + long(256) + `"}}`), 400, "InvalidInput"},
		{"256-character device_id", "POST", "/v2.0/ports", ctJSON, onA(`{"port":{"network_id":%q,"device_id":"` + long(256) + `"}}`), 400, "InvalidInput"},
		{"256-character binding:host_id", "PUT", "/v2.0/ports/" + port, ctJSON, `{"port":{"binding:host_id":"` + long(256) + `"}}`, 400, "InvalidInput"},
		{"61-character tag", "POST", "/v2.0/networks", ctJSON, `{"network":{"tags":["` + long(61) + `"]}}`, 400, "InvalidInput"},
		{"51 tags", "PUT", "/v2.0/networks/" + netA, ctJSON, `{"network":{"tags":` + repeatJSON(`"t"`, 51) + `}}`, 400, "InvalidInput"},
		{"passive field over 4095 bytes", "POST", "/v2.0/networks", ctJSON, `{"network":{"availability_zone_hints":["` + long(5000) + `"]}}`, 400, "InvalidInput"},
		// Stored-only fields of the wrong type or value.
		{"binding:profile a string", "POST", "/v2.0/ports", ctJSON, onA(`{"port":{"network_id":%q,"binding:profile":"x"}}`), 400, "InvalidInput"},
		{"binding:profile a list", "PUT", "/v2.0/ports/" + port, ctJSON, `{"port":{"binding:profile":[1]}}`, 400, "InvalidInput"},
		{"binding:vnic_type a number", "POST", "/v2.0/ports", ctJSON, onA(`{"port":{"network_id":%q,"binding:vnic_type":12345}}`), 400, "InvalidInput"},
		{"binding:vnic_type direct", "PUT", "/v2.0/ports/" + port, ctJSON, `{"port":{"binding:vnic_type":"direct"}}`, 400, "InvalidInput"},
		{"binding:vif_type is read-only", "POST", "/v2.0/ports", ctJSON, onA(`{"port":{"network_id":%q,"binding:vif_type":"ovs"}}`), 400, "BadRequest"},
		{"unknown binding field", "POST", "/v2.0/ports", ctJSON, onA(`{"port":{"network_id":%q,"binding:colour":"red"}}`), 400, "BadRequest"},
		// Subnets Neutron refuses.
		{"subnet 0.0.0.0/0", "POST", "/v2.0/subnets", ctJSON, onA(`{"subnet":{"network_id":%q,"cidr":"0.0.0.0/0","enable_dhcp":false}}`), 400, "InvalidInput"},
		{"subnet /31", "POST", "/v2.0/subnets", ctJSON, onA(`{"subnet":{"network_id":%q,"cidr":"10.2.0.0/31"}}`), 400, "InvalidInput"},
		{"subnet /32", "POST", "/v2.0/subnets", ctJSON, onA(`{"subnet":{"network_id":%q,"cidr":"10.2.0.1/32","gateway_ip":null}}`), 400, "InvalidInput"},
		{"loopback subnet with DHCP", "POST", "/v2.0/subnets", ctJSON, onA(`{"subnet":{"network_id":%q,"cidr":"127.0.0.0/8"}}`), 400, "InvalidInput"},
		{"multicast subnet with DHCP", "POST", "/v2.0/subnets", ctJSON, onA(`{"subnet":{"network_id":%q,"cidr":"224.0.0.0/24"}}`), 400, "InvalidInput"},
		{"link-local subnet with DHCP", "POST", "/v2.0/subnets", ctJSON, onA(`{"subnet":{"network_id":%q,"cidr":"169.254.0.0/16"}}`), 400, "InvalidInput"},
		// Lists.
		{"1,000 fixed_ips", "POST", "/v2.0/ports", ctJSON, onA(`{"port":{"network_id":%q,"fixed_ips":` + fixedIPs(1000) + `}}`), 400, "InvalidInput"},
		{"6 fixed_ips on update", "PUT", "/v2.0/ports/" + port, ctJSON, `{"port":{"fixed_ips":` + fixedIPs(6) + `}}`, 400, "InvalidInput"},
		{"11 allowed_address_pairs", "POST", "/v2.0/ports", ctJSON, onA(`{"port":{"network_id":%q,"allowed_address_pairs":` + repeatJSON(`{"ip_address":"10.0.0.99"}`, 11) + `}}`), 400, "AllowedAddressPairExhausted"},
		{"6 dns_nameservers", "POST", "/v2.0/subnets", ctJSON, onA(`{"subnet":{"network_id":%q,"cidr":"10.3.0.0/24","dns_nameservers":` + repeatJSON(`"8.8.8.8"`, 6) + `}}`), 400, "DNSNameServersExhausted"},
		{"21 host_routes", "PUT", "/v2.0/subnets/" + sub, ctJSON, `{"subnet":{"host_routes":` + repeatJSON(`{"destination":"10.9.0.0/16","nexthop":"10.0.0.254"}`, 21) + `}}`, 400, "HostRoutesExhausted"},
		{"65 allocation_pools", "POST", "/v2.0/subnets", ctJSON, onA(`{"subnet":{"network_id":%q,"cidr":"10.4.0.0/16","allocation_pools":` + repeatJSON(`{"start":"10.4.1.1","end":"10.4.1.1"}`, 65) + `}}`), 400, "InvalidInput"},
		{"65 security_groups", "POST", "/v2.0/ports", ctJSON, onA(`{"port":{"network_id":%q,"security_groups":` + repeatJSON(`"sg"`, 65) + `}}`), 400, "InvalidInput"},
		// MACs Neutron calls invalid.
		{"MAC 00:00:00:00:00:00", "POST", "/v2.0/ports", ctJSON, onA(`{"port":{"network_id":%q,"mac_address":"00:00:00:00:00:00"}}`), 400, "InvalidInput"},
		{"broadcast MAC", "POST", "/v2.0/ports", ctJSON, onA(`{"port":{"network_id":%q,"mac_address":"ff:ff:ff:ff:ff:ff"}}`), 400, "InvalidInput"},
		{"IPv6 multicast MAC", "POST", "/v2.0/ports", ctJSON, onA(`{"port":{"network_id":%q,"mac_address":"33:33:00:00:00:01"}}`), 400, "InvalidInput"},
		{"zero MAC in an address pair", "POST", "/v2.0/ports", ctJSON, onA(`{"port":{"network_id":%q,"allowed_address_pairs":[{"ip_address":"10.0.0.98","mac_address":"00:00:00:00:00:00"}]}}`), 400, "InvalidInput"},
		// Content types.
		{"text/plain body", "POST", "/v2.0/networks", "text/plain", `{"network":{"name":"t"}}`, 400, "HTTPBadRequest"},
		{"form body", "PUT", "/v2.0/networks/" + netA, "application/x-www-form-urlencoded", `{"network":{"name":"t"}}`, 400, "HTTPBadRequest"},
		{"garbage content type", "POST", "/v2.0/networks", ";;", `{"network":{"name":"t"}}`, 400, "HTTPBadRequest"},
		// Nesting.
		{"nested 33 deep", "POST", "/v2.0/ports", ctJSON, onA(`{"port":{"network_id":%q,"binding:profile":` + nested(31) + `}}`), 400, "BadRequest"},
		{"nested 100,000 deep", "POST", "/v2.0/networks", ctJSON, strings.Repeat("[", 100_000), 400, "BadRequest"},
		// Query strings.
		{"limit -1", "GET", "/v2.0/networks?limit=-1", "", "", 400, "BadRequest"},
		{"limit not an integer", "GET", "/v2.0/ports?limit=ten", "", "", 400, "BadRequest"},
		{"limit 1.5", "GET", "/v2.0/subnets?limit=1.5", "", "", 400, "BadRequest"},
		{"malformed query", "GET", "/v2.0/networks?name=%zz", "", "", 400, "BadRequest"},
		{"65 query parameters", "GET", "/v2.0/networks?" + strings.TrimSuffix(strings.Repeat("fields=id&", 65), "&"), "", "", 400, "BadRequest"},
		{"URL over 8 KiB", "GET", "/v2.0/networks?name=" + long(MaxURLBytes), "", "", 414, "HTTPRequestURITooLong"},
		// Paths ServeMux would redirect to another resource.
		{"GET ports/../networks/id", "GET", "/v2.0/ports/../networks/" + netA, "", "", 404, "HTTPNotFound"},
		{"DELETE ports/../networks/id", "DELETE", "/v2.0/ports/../networks/" + netA, "", "", 404, "HTTPNotFound"},
		{"DELETE %2e%2e", "DELETE", "/v2.0/ports/%2e%2e/networks/" + netA, "", "", 404, "HTTPNotFound"},
		{"DELETE %2E%2E", "DELETE", "/v2.0/ports/%2E%2E/networks/" + netA, "", "", 404, "HTTPNotFound"},
		{"DELETE //", "DELETE", "//v2.0/networks/" + netA, "", "", 404, "HTTPNotFound"},
		{"DELETE /./", "DELETE", "/v2.0/./networks/" + netA, "", "", 404, "HTTPNotFound"},
		{"DELETE trailing /.", "DELETE", "/v2.0/networks/" + netA + "/.", "", "", 404, "HTTPNotFound"},
		{"DELETE trailing slash", "DELETE", "/v2.0/networks/" + netA + "/", "", "", 404, "HTTPNotFound"},
		{"DELETE encoded slash", "DELETE", "/v2.0/ports%2f..%2fnetworks/" + netA, "", "", 404, "HTTPNotFound"},
		{"DELETE trailing junk", "DELETE", "/v2.0/networks/" + netA + "/junk", "", "", 404, "HTTPNotFound"},
		{"PUT ports/../networks/id", "PUT", "/v2.0/ports/../networks/" + netA, ctJSON, `{"network":{"name":"moved"}}`, 404, "HTTPNotFound"},
	}
	for _, tc := range cases {
		before := c.state()
		code, out := c.raw(tc.method, tc.path, tc.ctype, []byte(tc.body))
		ne, _ := out["NeutronError"].(map[string]any)
		if code != tc.status || ne == nil || ne["type"] != tc.typ || ne["message"] == "" {
			t.Errorf("%s: got %d %.300v, want %d with NeutronError type %s", tc.name, code, out, tc.status, tc.typ)
		}
		if msg, _ := ne["message"].(string); len(msg) > 1000 {
			t.Errorf("%s: a %d-byte error message echoes the input", tc.name, len(msg))
		}
		if after := c.state(); after != before {
			t.Errorf("%s: a rejected request changed the topology", tc.name)
		}
	}
	if code, _ := c.do("GET", "/v2.0/networks/"+netA, ""); code != 200 {
		t.Fatalf("network %s is gone: %d", netA, code)
	}
}

// TestBoundsAdmitTheirLimits: a request exactly at each bound is taken,
// and stored as given.
func TestBoundsAdmitTheirLimits(t *testing.T) {
	c := startAPI(t)
	name := strings.Repeat("é", MaxNameLen) // 255 characters, 510 bytes
	tags := make([]string, MaxTags)
	for i := range tags {
		tags[i] = fmt.Sprintf("%0*d", MaxTagLen, i)
	}
	tagJSON, _ := json.Marshal(tags)
	nw := c.create("/v2.0/networks", `{"network":{"name":"`+name+`","tags":`+string(tagJSON)+`}}`)["network"].(map[string]any)
	if nw["name"] != name || len(nw["tags"].([]any)) != MaxTags {
		t.Fatalf("network at the bounds: %v", nw)
	}
	netID := nw["id"].(string)
	sub := id(c.create("/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"cidr":"10.0.0.0/24","dns_nameservers":%s,"host_routes":%s}}`,
		netID, repeatJSON(`"8.8.8.8"`, MaxDNSNameservers), repeatJSON(`{"destination":"10.9.0.0/16","nexthop":"10.0.0.254"}`, MaxHostRoutes))), "subnet")
	c.create("/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"cidr":"169.254.0.0/16","enable_dhcp":false}}`, netID))
	p := c.create("/v2.0/ports", fmt.Sprintf(`{"port":{"network_id":%q,"fixed_ips":%s,"allowed_address_pairs":%s,"binding:vnic_type":"normal","binding:profile":{"a":{"b":[1]}},"device_owner":%q}}`,
		netID, repeatJSON(fmt.Sprintf(`{"subnet_id":%q}`, sub), MaxFixedIPsPerPort), repeatJSON(`{"ip_address":"10.0.0.200"}`, MaxAllowedAddressPairs),
		strings.Repeat("o", MaxDeviceOwnerLen)))["port"].(map[string]any)
	if len(p["fixed_ips"].([]any)) != MaxFixedIPsPerPort || p["binding:vnic_type"] != "normal" {
		t.Fatalf("port at the bounds: %v", p)
	}
	// A body with no Content-Type is taken as JSON, as is one with a charset.
	if code, out := c.raw("POST", "/v2.0/routers", "", []byte(`{"router":{"name":"r1"}}`)); code != 201 {
		t.Fatalf("no Content-Type: %d %v", code, out)
	}
	if code, out := c.raw("POST", "/v2.0/routers", "application/json; charset=UTF-8", []byte(`{"router":{"name":"r2"}}`)); code != 201 {
		t.Fatalf("JSON with a charset: %d %v", code, out)
	}
	for _, q := range []string{"?limit=0", "?limit=2", "?fields=id&fields=name"} {
		if code, out := c.raw("GET", "/v2.0/networks"+q, "", nil); code != 200 {
			t.Fatalf("GET %s: %d %v", q, code, out)
		}
	}
	for _, p := range []string{"/", "/v2.0", "/v2.0/"} {
		if code, out := c.raw("GET", p, "", nil); code != 200 {
			t.Fatalf("GET %s: %d %v", p, code, out)
		}
	}
}

// needFiles makes sure this process may open n more files, raising the
// soft limit to the hard one if need be (Go does so itself at start on
// Linux since 1.19, so this is for platforms that do not).
func needFiles(t *testing.T, n uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skip(err)
	}
	if lim.Cur < n && lim.Max >= n {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if lim.Cur < n {
		t.Skipf("RLIMIT_NOFILE is %d, the test needs %d", lim.Cur, n)
	}
}

// serveAPI serves the real northbound server — its http.Server with every
// bound of bounds.go — on loopback.
func serveAPI(t *testing.T, maxConns int) string {
	s := New(cluster.NewMemory("flood-test"), Options{}, zaptest.NewLogger(t))
	if maxConns > 0 {
		s.http.ConnState = newConnShedder(maxConns).ConnState
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.http.Close() })
	return ln.Addr().String()
}

// floodSources are the loopback addresses a flood comes from (a flood
// from one host meets MaxConnsPerSource first); the GETs under test come
// from 127.0.0.1.
const floodSources = 8

// flood opens n connections to addr from floodSources addresses: every
// other one sends nothing, the rest half a request's headers (slowloris).
func flood(t *testing.T, addr string, n int) []net.Conn {
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := 0; i < n; i++ {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%floodSources))}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if i%2 == 1 {
			if _, err := io.WriteString(c, "GET /v2.0/networks HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
				t.Fatal(err)
			}
		}
	}
	return conns
}

// timedGET answers how long a normal list request took.
func timedGET(t *testing.T, addr string) time.Duration {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	resp, err := client.Get("http://" + addr + "/v2.0/networks")
	if err != nil {
		t.Fatalf("GET under a flood: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET under a flood: %d", resp.StatusCode)
	}
	return time.Since(start)
}

// TestIdleConnectionFloodDoesNotStarveRequests: with 2,000 idle and
// half-sent connections open to one node's API, a normal request still
// answers within 1 s.
func TestIdleConnectionFloodDoesNotStarveRequests(t *testing.T) {
	const n = 2000
	needFiles(t, 2*n+200)
	addr := serveAPI(t, 0)
	flood(t, addr, n)
	if d := timedGET(t, addr); d > time.Second {
		t.Fatalf("a GET behind %d idle connections took %s", n, d)
	}
}

// TestConnectionBoundShedsQuietConnections: past MaxConns, the
// connections quiet longest are closed, not the new one, so a flood at
// the bound still lets a real request in.
func TestConnectionBoundShedsQuietConnections(t *testing.T) {
	const max, n = 50, 200
	addr := serveAPI(t, max)
	conns := flood(t, addr, n)
	if d := timedGET(t, addr); d > time.Second {
		t.Fatalf("a GET behind %d quiet connections over a bound of %d took %s", n, max, d)
	}
	// The oldest was shed: the server closed it.
	_ = conns[0].SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conns[0].Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the oldest quiet connection is still open past the bound: %v", err)
	}
	// The newest was not.
	_ = conns[n-1].SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := conns[n-1].Read(make([]byte, 1)); err == io.EOF {
		t.Fatal("the newest connection was shed")
	}
}

// TestOneHostCannotHoldTheAPI: past MaxConnsPerSource, a host's new
// connections are closed at once, and another host's request answers.
func TestOneHostCannotHoldTheAPI(t *testing.T) {
	addr := serveAPI(t, 0)
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 77)}}
	for i := 0; i < MaxConnsPerSource+1; i++ {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, "GET /v2.0/networks HTTP/1.1\r\nHost: x\r\nX-Slow: ")
		conns = append(conns, c)
	}
	last := conns[len(conns)-1]
	_ = last.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := last.Read(make([]byte, 1)); err == nil || os.IsTimeout(err) {
		t.Fatalf("connection %d from one host was kept: %v", MaxConnsPerSource+1, err)
	}
	_ = conns[0].SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := conns[0].Read(make([]byte, 1)); err == io.EOF {
		t.Fatal("the host's first connection was closed")
	}
	if d := timedGET(t, addr); d > time.Second {
		t.Fatalf("another host's GET took %s", d)
	}
}
