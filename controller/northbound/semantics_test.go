package northbound

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/wyvern-sdn/wyvern/controller/cluster"
	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// Neutron's list and update semantics (issue 16 §6), over real HTTP.

// req sends a request with extra headers and returns its status, headers
// and JSON body (nil when it has none).
func (c apiClient) req(method, path, body string, hdr map[string]string) (int, http.Header, map[string]any) {
	c.t.Helper()
	r, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(r)
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
	return resp.StatusCode, resp.Header, out
}

// ids lists the ids of a collection answer, in order.
func ids(out map[string]any, plural string) []string {
	var s []string
	for _, o := range out[plural].([]any) {
		s = append(s, o.(map[string]any)["id"].(string))
	}
	return s
}

// link is the href of a rel in a <plural>_links, as a path and query.
func link(t *testing.T, out map[string]any, plural, rel string) string {
	t.Helper()
	links, _ := out[plural+"_links"].([]any)
	for _, l := range links {
		m := l.(map[string]any)
		if m["rel"] == rel {
			u, err := url.Parse(m["href"].(string))
			if err != nil {
				t.Fatal(err)
			}
			return u.RequestURI()
		}
	}
	return ""
}

func neutronType(out map[string]any) string {
	ne, _ := out["NeutronError"].(map[string]any)
	s, _ := ne["type"].(string)
	return s
}

func TestListPagination(t *testing.T) {
	c := startAPI(t)
	var made []string
	for _, n := range []string{"e", "b", "d", "a", "c"} {
		made = append(made, id(c.create("/v2.0/networks", `{"network":{"name":"`+n+`","tags":["pg"]}}`), "network"))
	}
	byID := slices.Clone(made)
	slices.Sort(byID)

	// limit=2: the first two (by id), and a next link whose marker is
	// the second; the link keeps the other parameters.
	code, _, out := c.req("GET", "/v2.0/networks?limit=2&tags=pg", "", nil)
	if code != 200 || !slices.Equal(ids(out, "networks"), byID[:2]) {
		t.Fatalf("limit=2: %d %v, want %v", code, ids(out, "networks"), byID[:2])
	}
	next := link(t, out, "networks", "next")
	q, _ := url.ParseQuery(strings.SplitN(next, "?", 2)[1])
	if q.Get("marker") != byID[1] || q.Get("limit") != "2" || q.Get("tags") != "pg" {
		t.Fatalf("next link %q: want marker %s, limit 2, tags pg", next, byID[1])
	}
	if prev := link(t, out, "networks", "previous"); prev != "" {
		t.Fatalf("the first page has a previous link %q", prev)
	}
	_, _, out = c.req("GET", next, "", nil)
	if got := ids(out, "networks"); !slices.Equal(got, byID[2:4]) {
		t.Fatalf("second page %v, want %v", got, byID[2:4])
	}
	// Its previous link leads back to the first page.
	_, _, back := c.req("GET", link(t, out, "networks", "previous"), "", nil)
	if got := ids(back, "networks"); !slices.Equal(got, byID[:2]) {
		t.Fatalf("previous of the second page %v, want %v", got, byID[:2])
	}
	_, _, out = c.req("GET", link(t, out, "networks", "next"), "", nil)
	if got := ids(out, "networks"); !slices.Equal(got, byID[4:]) || link(t, out, "networks", "next") != "" {
		t.Fatalf("last page %v (links %v), want %v and no next", got, out["networks_links"], byID[4:])
	}

	// Sorted by name, descending, paged.
	_, _, out = c.req("GET", "/v2.0/networks?sort_key=name&sort_dir=desc&limit=3&fields=name&fields=id", "", nil)
	names := func(out map[string]any) string {
		var s []string
		for _, o := range out["networks"].([]any) {
			s = append(s, o.(map[string]any)["name"].(string))
		}
		return strings.Join(s, "")
	}
	if got := names(out); got != "edc" {
		t.Fatalf("sort_key=name desc, limit 3: %q, want edc", got)
	}
	if o := out["networks"].([]any)[0].(map[string]any); len(o) != 2 {
		t.Fatalf("fields=name&fields=id: %v", o)
	}
	_, _, out = c.req("GET", link(t, out, "networks", "next"), "", nil)
	if got := names(out); got != "ba" {
		t.Fatalf("second page sorted by name desc: %q, want ba", got)
	}
	// Two keys, Neutron's pairing: admin_state_up asc, then name asc.
	c.do("PUT", "/v2.0/networks/"+made[3], `{"network":{"admin_state_up":false}}`) // a
	_, _, out = c.req("GET", "/v2.0/networks?sort_key=admin_state_up&sort_dir=asc&sort_key=name&sort_dir=asc", "", nil)
	if got := names(out); got != "abcde" {
		t.Fatalf("sorted by admin_state_up, name: %q", got)
	}
	c.do("PUT", "/v2.0/networks/"+made[3], `{"network":{"admin_state_up":true}}`)
	_, _, out = c.req("GET", "/v2.0/networks?sort_key=admin_state_up&sort_dir=desc&sort_key=name&sort_dir=desc", "", nil)
	if got := names(out); got != "edcba" {
		t.Fatalf("sorted by admin_state_up, name, descending: %q", got)
	}

	// Neutron's types: webob's HTTPBadRequest for sorting, its own
	// BadRequest for a limit.
	for _, bad := range []struct{ query, typ string }{{"sort_key=colour", "HTTPBadRequest"}, {"sort_key=name&sort_dir=sideways", "HTTPBadRequest"},
		{"sort_key=name&sort_dir=asc&sort_dir=desc", "HTTPBadRequest"}, {"limit=-1", "BadRequest"}, {"limit=two", "BadRequest"},
		{"page_reverse=maybe", "HTTPBadRequest"}} {
		if code, _, out := c.req("GET", "/v2.0/networks?"+bad.query, "", nil); code != 400 || neutronType(out) != bad.typ {
			t.Errorf("?%s: %d %v, want 400 %s", bad.query, code, out, bad.typ)
		}
	}
	if code, _, out := c.req("GET", "/v2.0/networks?limit=2&marker=nope", "", nil); code != 404 || neutronType(out) != "NetworkNotFound" {
		t.Errorf("unknown marker: %d %v, want 404 NetworkNotFound", code, out)
	}
}

func TestListFilters(t *testing.T) {
	c := startAPI(t)
	netA := id(c.create("/v2.0/networks", `{"network":{"name":"a","tags":["red","blue"]}}`), "network")
	netB := id(c.create("/v2.0/networks", `{"network":{"name":"b","admin_state_up":false,"tags":["red"]}}`), "network")
	netC := id(c.create("/v2.0/networks", `{"network":{"name":"c"}}`), "network")
	// router:external is there on every network, false unless set.
	_, _, out := c.req("GET", "/v2.0/networks/"+netC, "", nil)
	if v, ok := out["network"].(map[string]any)["router:external"]; !ok || v != false {
		t.Fatalf("a network created without router:external: %v", out)
	}

	filters := []struct {
		query string
		want  []string
	}{
		{"admin_state_up=True", []string{netA, netC}},
		{"admin_state_up=true", []string{netA, netC}},
		{"admin_state_up=False", []string{netB}},
		{"tags=red", []string{netA, netB}},
		{"tags=red,blue", []string{netA}},
		{"tags-any=blue,green", []string{netA}},
		{"not-tags=red,blue", []string{netB, netC}},
		{"not-tags-any=red", []string{netC}},
		{"tags=red&admin_state_up=true", []string{netA}},
		{"name=a&name=c", []string{netA, netC}},
	}
	for _, f := range filters {
		code, _, out := c.req("GET", "/v2.0/networks?"+f.query, "", nil)
		want := slices.Clone(f.want)
		slices.Sort(want)
		if got := ids(out, "networks"); code != 200 || !slices.Equal(got, want) {
			t.Errorf("?%s: %d %v, want %v", f.query, code, got, want)
		}
	}
	for _, bad := range []string{"colour=red", "admin_state_up=maybe"} {
		if code, _, out := c.req("GET", "/v2.0/networks?"+bad, "", nil); code != 400 || neutronType(out) != "HTTPBadRequest" {
			t.Errorf("?%s: %d %v, want 400 HTTPBadRequest", bad, code, out)
		}
	}
	if code, _, out := c.req("GET", "/v2.0/ports?mac=x", "", nil); code != 400 {
		t.Errorf("an unknown port filter: %d %v, want 400", code, out)
	}

	// fixed_ips filters on ports.
	sub := id(c.create("/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"cidr":"10.1.0.0/24"}}`, netA)), "subnet")
	sub2 := id(c.create("/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"cidr":"10.2.0.0/24"}}`, netB)), "subnet")
	p1 := id(c.create("/v2.0/ports", fmt.Sprintf(`{"port":{"network_id":%q,"fixed_ips":[{"ip_address":"10.1.0.10"}]}}`, netA)), "port")
	p2 := id(c.create("/v2.0/ports", fmt.Sprintf(`{"port":{"network_id":%q,"fixed_ips":[{"ip_address":"10.1.0.20"}]}}`, netA)), "port")
	p3 := id(c.create("/v2.0/ports", fmt.Sprintf(`{"port":{"network_id":%q,"fixed_ips":[{"ip_address":"10.2.0.10"}]}}`, netB)), "port")
	for _, f := range []struct {
		query string
		want  []string
	}{
		{"fixed_ips=ip_address%3D10.1.0.10", []string{p1}},
		{"fixed_ips=ip_address%3D10.1.0.10&fixed_ips=ip_address%3D10.2.0.10", []string{p1, p3}},
		{"fixed_ips=subnet_id%3D" + sub, []string{p1, p2}},
		{"fixed_ips=subnet_id%3D" + sub2 + "&fixed_ips=ip_address%3D10.1.0.10", nil},
		{"fixed_ips=ip_address_substr%3D.0.10", []string{p1, p3}},
	} {
		code, _, out := c.req("GET", "/v2.0/ports?"+f.query, "", nil)
		want := slices.Clone(f.want)
		slices.Sort(want)
		if got := ids(out, "ports"); code != 200 || !slices.Equal(got, want) {
			t.Errorf("ports?%s: %d %v, want %v", f.query, code, got, want)
		}
	}
	if code, _, _ := c.req("GET", "/v2.0/ports?fixed_ips=mac%3Dx", "", nil); code != 400 {
		t.Errorf("a fixed_ips filter on no known key: %d, want 400", code)
	}
}

func TestTagsSubResource(t *testing.T) {
	c := startAPI(t)
	net := id(c.create("/v2.0/networks", `{"network":{"name":"n"}}`), "network")
	sub := id(c.create("/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"cidr":"10.3.0.0/24"}}`, net)), "subnet")
	objects := map[string]string{
		"networks": net, "subnets": sub,
		"ports":           id(c.create("/v2.0/ports", fmt.Sprintf(`{"port":{"network_id":%q}}`, net)), "port"),
		"routers":         id(c.create("/v2.0/routers", `{"router":{"name":"r"}}`), "router"),
		"security-groups": id(c.create("/v2.0/security-groups", `{"security_group":{"name":"g"}}`), "security_group"),
	}
	ext := id(c.create("/v2.0/networks", `{"network":{"name":"ext","router:external":true}}`), "network")
	c.create("/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"cidr":"192.0.2.0/24"}}`, ext))
	objects["floatingips"] = id(c.create("/v2.0/floatingips", fmt.Sprintf(`{"floatingip":{"floating_network_id":%q}}`, ext)), "floatingip")

	for coll, oid := range objects {
		base := "/v2.0/" + coll + "/" + oid
		single := strings.TrimSuffix(strings.ReplaceAll(coll, "-", "_"), "s")
		revision := func() float64 {
			_, _, out := c.req("GET", base, "", nil)
			return out[single].(map[string]any)["revision_number"].(float64)
		}
		rev0 := revision()
		if code, _, _ := c.req("PUT", base+"/tags/alpha", "", nil); code != 201 {
			t.Fatalf("%s: add a tag: %d, want 201", coll, code)
		}
		if code, _, _ := c.req("GET", base+"/tags/alpha", "", nil); code != 204 {
			t.Errorf("%s: the tag it has: %d, want 204", coll, code)
		}
		if code, _, out := c.req("GET", base+"/tags/beta", "", nil); code != 404 || neutronType(out) != "TagNotFound" {
			t.Errorf("%s: a tag it does not have: %d %v, want 404 TagNotFound", coll, code, out)
		}
		if rev := revision(); rev <= rev0 {
			t.Errorf("%s: adding a tag left revision_number at %v", coll, rev)
		}
		code, _, out := c.req("PUT", base+"/tags", `{"tags":["x","y","x","z"]}`, nil)
		if code != 200 || fmt.Sprint(out["tags"]) != "[x y z]" {
			t.Fatalf("%s: replace all: %d %v", coll, code, out)
		}
		if _, _, out := c.req("GET", base+"/tags", "", nil); fmt.Sprint(out["tags"]) != "[x y z]" {
			t.Errorf("%s: list: %v", coll, out)
		}
		if _, _, out := c.req("GET", base, "", nil); fmt.Sprint(out[single].(map[string]any)["tags"]) != "[x y z]" {
			t.Errorf("%s: the object's tags: %v", coll, out)
		}
		plural := strings.ReplaceAll(coll, "-", "_")
		if _, _, out := c.req("GET", "/v2.0/"+coll+"?tags=y", "", nil); !slices.Equal(ids(out, plural), []string{oid}) {
			t.Errorf("%s?tags=y: %v", coll, out)
		}
		if code, _, _ := c.req("DELETE", base+"/tags/y", "", nil); code != 204 {
			t.Errorf("%s: remove a tag: %d", coll, code)
		}
		if code, _, out := c.req("DELETE", base+"/tags/y", "", nil); code != 404 || neutronType(out) != "TagNotFound" {
			t.Errorf("%s: remove a tag it no longer has: %d %v", coll, code, out)
		}
		if code, _, _ := c.req("DELETE", base+"/tags", "", nil); code != 204 {
			t.Errorf("%s: remove all: %d", coll, code)
		}
		if _, _, out := c.req("GET", base+"/tags", "", nil); fmt.Sprint(out["tags"]) != "[]" {
			t.Errorf("%s: after removing all: %v", coll, out)
		}
	}
	for _, bad := range []struct{ method, path, body string }{
		{"PUT", "/v2.0/networks/" + net + "/tags", `{"tags":"x"}`},
		{"PUT", "/v2.0/networks/" + net + "/tags", `{"tag":["x"]}`},
		{"PUT", "/v2.0/networks/" + net + "/tags", `{"tags":[""]}`},
		{"PUT", "/v2.0/networks/" + net + "/tags/" + strings.Repeat("x", 61), ``},
	} {
		if code, _, out := c.req(bad.method, bad.path, bad.body, nil); code != 400 {
			t.Errorf("%s %s %s: %d %v, want 400", bad.method, bad.path, bad.body, code, out)
		}
	}
	if code, _, out := c.req("PUT", "/v2.0/networks/nope/tags/x", "", nil); code != 404 || neutronType(out) != "NetworkNotFound" {
		t.Errorf("a tag on a missing network: %d %v", code, out)
	}
}

func TestIfMatchRevision(t *testing.T) {
	c := startAPI(t)
	n := c.create("/v2.0/networks", `{"network":{"name":"before"}}`)["network"].(map[string]any)
	nid := n["id"].(string)
	rev := fmt.Sprint(n["revision_number"])
	// Someone else changes it first: the revision moves on.
	code, _, out := c.req("PUT", "/v2.0/networks/"+nid, `{"network":{"description":"theirs"}}`, nil)
	if code != 200 {
		t.Fatal(code, out)
	}
	now := fmt.Sprint(out["network"].(map[string]any)["revision_number"])
	stale := map[string]string{"If-Match": "revision_number=" + rev}
	for _, tc := range []struct{ method, path, body string }{
		{"PUT", "/v2.0/networks/" + nid, `{"network":{"name":"mine"}}`},
		{"DELETE", "/v2.0/networks/" + nid, ``},
		{"PUT", "/v2.0/networks/" + nid + "/tags/t", ``},
		{"PUT", "/v2.0/networks/" + nid + "/tags", `{"tags":["t"]}`},
	} {
		before := c.state()
		code, _, out := c.req(tc.method, tc.path, tc.body, stale)
		if code != http.StatusPreconditionFailed || neutronType(out) != "RevisionNumberConstraintFailed" {
			t.Errorf("%s %s with a stale If-Match: %d %v, want 412 RevisionNumberConstraintFailed", tc.method, tc.path, code, out)
		}
		if c.state() != before {
			t.Errorf("%s %s with a stale If-Match changed the topology", tc.method, tc.path)
		}
	}
	// The current revision, or a list holding it, lets the change through.
	code, _, out = c.req("PUT", "/v2.0/networks/"+nid, `{"network":{"name":"mine"}}`, map[string]string{"If-Match": "revision_number=" + now})
	if code != 200 || out["network"].(map[string]any)["name"] != "mine" {
		t.Fatalf("a current If-Match: %d %v", code, out)
	}
	now = fmt.Sprint(out["network"].(map[string]any)["revision_number"])
	code, _, out = c.req("PUT", "/v2.0/networks/"+nid+"/tags/t", "", map[string]string{"If-Match": "revision_number=" + rev + ", revision_number=" + now})
	if code != 201 {
		t.Fatalf("If-Match with several revisions, one current: %d %v", code, out)
	}
	if code, _, out := c.req("PUT", "/v2.0/networks/"+nid, `{"network":{"name":"x"}}`, map[string]string{"If-Match": "revision_number=abc"}); code != 400 {
		t.Errorf("a malformed If-Match: %d %v, want 400", code, out)
	}
	if code, _, out := c.req("PUT", "/v2.0/networks/nope", `{"network":{"name":"x"}}`, stale); code != 404 || neutronType(out) != "NetworkNotFound" {
		t.Errorf("If-Match on a missing network: %d %v, want 404", code, out)
	}
	_, _, out = c.req("GET", "/v2.0/networks/"+nid, "", nil)
	cur := fmt.Sprint(out["network"].(map[string]any)["revision_number"])
	if code, _, out := c.req("DELETE", "/v2.0/networks/"+nid, "", map[string]string{"If-Match": "revision_number=" + cur}); code != 204 {
		t.Fatalf("delete with a current If-Match: %d %v", code, out)
	}
}

var neutronTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

func TestTimestamps(t *testing.T) {
	c := startAPI(t)
	start := time.Now().UTC().Truncate(time.Second)
	n := c.create("/v2.0/networks", `{"network":{"name":"n"}}`)["network"].(map[string]any)
	created, updated := n["created_at"].(string), n["updated_at"].(string)
	at, err := time.Parse(topology.TimeFormat, created)
	if !neutronTime.MatchString(created) || err != nil || created != updated || at.Before(start) || at.After(time.Now().Add(time.Second)) {
		t.Fatalf("a new network: created_at %q, updated_at %q (started %s)", created, updated, start)
	}
	nid := n["id"].(string)
	sub := c.create("/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"cidr":"10.4.0.0/24"}}`, nid))["subnet"].(map[string]any)
	port := c.create("/v2.0/ports", fmt.Sprintf(`{"port":{"network_id":%q}}`, nid))["port"].(map[string]any)
	router := c.create("/v2.0/routers", `{"router":{"name":"r"}}`)["router"].(map[string]any)
	group := c.create("/v2.0/security-groups", `{"security_group":{"name":"g"}}`)["security_group"].(map[string]any)
	rule := c.create("/v2.0/security-group-rules", fmt.Sprintf(`{"security_group_rule":{"security_group_id":%q,"direction":"ingress"}}`, group["id"]))["security_group_rule"].(map[string]any)
	for what, o := range map[string]map[string]any{"subnet": sub, "port": port, "router": router, "security group": group, "rule": rule} {
		if !neutronTime.MatchString(fmt.Sprint(o["created_at"])) || !neutronTime.MatchString(fmt.Sprint(o["updated_at"])) {
			t.Errorf("%s: created_at %v, updated_at %v", what, o["created_at"], o["updated_at"])
		}
	}
	time.Sleep(1100 * time.Millisecond) // the stamps are to the second
	_, _, out := c.req("PUT", "/v2.0/networks/"+nid, `{"network":{"name":"renamed"}}`, nil)
	u := out["network"].(map[string]any)
	if u["created_at"] != created || u["updated_at"] == updated || !neutronTime.MatchString(u["updated_at"].(string)) {
		t.Fatalf("after an update: created_at %v (was %s), updated_at %v (was %s)", u["created_at"], created, u["updated_at"], updated)
	}
	// Lists filter and sort on them as on any attribute.
	_, _, out = c.req("GET", "/v2.0/networks?created_at="+url.QueryEscape(created), "", nil)
	if !slices.Equal(ids(out, "networks"), []string{nid}) {
		t.Errorf("?created_at=: %v", out)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	c := startAPI(t)
	nid := id(c.create("/v2.0/networks", `{"network":{"name":"n"}}`), "network")
	before := c.state()
	code, hdr, out := c.req("PATCH", "/v2.0/networks/"+nid, `{"network":{"name":"p"}}`, nil)
	if code != 405 || neutronType(out) != "HTTPMethodNotAllowed" || hdr.Get("Allow") != "GET, HEAD, PUT, DELETE" {
		t.Fatalf("PATCH a network: %d Allow %q %v, want 405 with Allow GET, HEAD, PUT, DELETE", code, hdr.Get("Allow"), out)
	}
	if c.state() != before {
		t.Fatal("a PATCH changed the topology")
	}
	if code, hdr, _ := c.req("DELETE", "/v2.0/networks", "", nil); code != 405 || hdr.Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("DELETE the collection: %d Allow %q", code, hdr.Get("Allow"))
	}
	if code, _, out := c.req("PATCH", "/v2.0/trunks/x", "", nil); code != 404 || neutronType(out) != "HTTPNotFound" {
		t.Errorf("PATCH an unknown path: %d %v, want 404", code, out)
	}
}

// TestTempestFindings: what tempest.api.network tripped over.
func TestTempestFindings(t *testing.T) {
	mem := cluster.NewMemory("tempest")
	c := apiClient{t, startOn(t, mem, Options{})}
	net := id(c.create("/v2.0/networks", `{"network":{"name":"n"}}`), "network")
	sub := c.create("/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"cidr":"10.7.0.0/24","allocation_pools":[{"start":"10.7.0.10","end":"10.7.0.20"}]}}`, net))["subnet"].(map[string]any)
	sid := sub["id"].(string)
	router := id(c.create("/v2.0/routers", `{"router":{"name":"r"}}`), "router")

	// add_router_interface with port_id: the port becomes the interface.
	port := c.create("/v2.0/ports", fmt.Sprintf(`{"port":{"network_id":%q}}`, net))["port"].(map[string]any)
	pid := port["id"].(string)
	code, iface := c.do("PUT", "/v2.0/routers/"+router+"/add_router_interface", fmt.Sprintf(`{"port_id":%q}`, pid))
	if code != 200 || iface["port_id"] != pid || iface["subnet_id"] != sid {
		t.Fatalf("add_router_interface by port: %d %v", code, iface)
	}
	_, got := c.do("GET", "/v2.0/ports/"+pid, "")
	if p := got["port"].(map[string]any); p["device_id"] != router || p["device_owner"] != topology.OwnerRouterInterface {
		t.Fatalf("the attached port: %v", p)
	}
	// Its fixed IPs named again (by subnet) are no change, as Neutron
	// takes them.
	if code, out := c.do("PUT", "/v2.0/ports/"+pid, fmt.Sprintf(`{"port":{"fixed_ips":[{"subnet_id":%q}]}}`, sid)); code != 200 {
		t.Errorf("an interface port's own fixed IPs again: %d %v", code, out)
	}
	if code, out := c.do("PUT", "/v2.0/routers/"+router+"/add_router_interface", fmt.Sprintf(`{"subnet_id":%q}`, sid)); code != 400 {
		t.Errorf("a second interface on the subnet: %d %v, want 400", code, out)
	}
	if code, out := c.do("PUT", "/v2.0/routers/"+router+"/remove_router_interface", fmt.Sprintf(`{"port_id":%q}`, pid)); code != 200 || out["port_id"] != pid {
		t.Fatalf("remove_router_interface by port: %d %v", code, out)
	}
	if code, _ := c.do("GET", "/v2.0/ports/"+pid, ""); code != 404 {
		t.Errorf("the port of a removed interface: %d, want 404 (deleted, as in Neutron)", code)
	}

	// An overlapping subnet is 400.
	if code, out := c.do("POST", "/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"cidr":"10.7.0.128/25"}}`, net)); code != 400 || neutronType(out) != "InvalidInput" {
		t.Errorf("overlapping subnet: %d %v, want 400 InvalidInput", code, out)
	}

	// gateway_ip is updatable: a host address outside the pools that no
	// port holds.
	c.create("/v2.0/ports", fmt.Sprintf(`{"port":{"network_id":%q,"fixed_ips":[{"ip_address":"10.7.0.30"}]}}`, net))
	for _, tc := range []struct {
		gateway string
		code    int
	}{
		{"10.8.0.1", 400}, {"10.7.0.0", 400}, {"10.7.0.255", 400}, {"10.7.0.15", 409}, {"10.7.0.30", 409}, {"10.7.0.5", 200},
	} {
		code, out := c.do("PUT", "/v2.0/subnets/"+sid, fmt.Sprintf(`{"subnet":{"gateway_ip":%q}}`, tc.gateway))
		if code != tc.code {
			t.Errorf("gateway_ip %s: %d %v, want %d", tc.gateway, code, out, tc.code)
		}
	}
	_, got = c.do("GET", "/v2.0/subnets/"+sid, "")
	if g := got["subnet"].(map[string]any)["gateway_ip"]; g != "10.7.0.5" {
		t.Errorf("gateway_ip after the updates: %v", g)
	}
	if code, out := c.do("PUT", "/v2.0/subnets/"+sid, `{"subnet":{"gateway_ip":null}}`); code != 200 || out["subnet"].(map[string]any)["gateway_ip"] != nil {
		t.Errorf("gateway_ip null: %d %v", code, out)
	}

	// A router gateway on a network that is not external is 400.
	if code, out := c.do("PUT", "/v2.0/routers/"+router, fmt.Sprintf(`{"router":{"external_gateway_info":{"network_id":%q}}}`, net)); code != 400 {
		t.Errorf("a gateway on an internal network: %d %v, want 400", code, out)
	}

	// An external network goes with its floating IPs that serve nothing
	// (Neutron deletes them with it); one associated to a port keeps it.
	ext := id(c.create("/v2.0/networks", `{"network":{"name":"ext","router:external":true}}`), "network")
	c.create("/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"cidr":"198.51.100.0/24","enable_dhcp":false}}`, ext))
	fip := id(c.create("/v2.0/floatingips", fmt.Sprintf(`{"floatingip":{"floating_network_id":%q}}`, ext)), "floatingip")
	if code, out := c.do("DELETE", "/v2.0/networks/"+ext, ""); code != 204 {
		t.Fatalf("deleting an external network with a free floating IP: %d %v", code, out)
	}
	if code, _ := c.do("GET", "/v2.0/floatingips/"+fip, ""); code != 404 {
		t.Errorf("the floating IP of a deleted network: %d, want 404", code)
	}

	// Subnet pools: none.
	if code, out := c.do("GET", "/v2.0/subnetpools", ""); code != 200 || fmt.Sprint(out["subnetpools"]) != "[]" {
		t.Errorf("subnetpools: %d %v", code, out)
	}
	if code, out := c.do("GET", "/v2.0/subnetpools/x", ""); code != 404 || neutronType(out) != "SubnetPoolNotFound" {
		t.Errorf("a subnet pool: %d %v", code, out)
	}

	// Agents: one per chassis.
	if _, err := mem.Propose(context.Background(), cluster.CmdChassisRegister, cluster.ChassisReg{Spec: topology.ChassisSpec{
		Name: "hv1", EncapIP: "172.31.0.1", Encaps: []string{"vxlan"}, Connected: true, LastSeen: "2026-12-01T05:00:00Z"}}); err != nil {
		t.Fatal(err)
	}
	code, out := c.do("GET", "/v2.0/agents", "")
	agents, _ := out["agents"].([]any)
	if code != 200 || len(agents) != 1 {
		t.Fatalf("agents: %d %v", code, out)
	}
	a := agents[0].(map[string]any)
	if a["host"] != "hv1" || a["agent_type"] != AgentType || a["alive"] != true || a["binary"] != "wyvernd" {
		t.Errorf("the agent of hv1: %v", a)
	}
	if code, out := c.do("GET", "/v2.0/agents/"+a["id"].(string), ""); code != 200 || out["agent"].(map[string]any)["host"] != "hv1" {
		t.Errorf("show the agent: %d %v", code, out)
	}
	if code, _ := c.do("GET", "/v2.0/agents?agent_type="+url.QueryEscape(AgentType)+"&host=hv1", ""); code != 200 {
		t.Errorf("agents filtered: %d", code)
	}

	// Service providers: Wyvern's routers.
	if code, out := c.do("GET", "/v2.0/service-providers?service_type=L3_ROUTER_NAT", ""); code != 200 ||
		fmt.Sprint(out["service_providers"]) != "[map[default:true name:wyvern service_type:L3_ROUTER_NAT]]" {
		t.Errorf("service providers: %d %v", code, out)
	}

	// Extensions one by one, and GET /v2.0/'s resources.
	_, out = c.do("GET", "/v2.0/extensions", "")
	for _, e := range out["extensions"].([]any) {
		alias := e.(map[string]any)["alias"].(string)
		code, one := c.do("GET", "/v2.0/extensions/"+alias, "")
		if code != 200 || fmt.Sprint(one["extension"]) != fmt.Sprint(e) {
			t.Errorf("extension %s: %d %v", alias, code, one)
		}
	}
	if code, out := c.do("GET", "/v2.0/extensions/nope", ""); code != 404 || neutronType(out) != "ExtensionNotFound" {
		t.Errorf("an unknown extension: %d %v", code, out)
	}
	for _, path := range []string{"/v2.0/", "/v2.0"} {
		_, out = c.do("GET", path, "")
		var names []string
		for _, r := range out["resources"].([]any) {
			m := r.(map[string]any)
			names = append(names, m["name"].(string))
			if l := m["links"].([]any)[0].(map[string]any); !strings.HasSuffix(l["href"].(string), "/v2.0/"+strings.ReplaceAll(m["collection"].(string), "_", "-")) {
				t.Errorf("%s: resource %v", path, m)
			}
		}
		for _, want := range []string{"network", "subnet", "port", "router"} {
			if !slices.Contains(names, want) {
				t.Errorf("GET %s: resources %v lack %s", path, names, want)
			}
		}
	}
}

// startOn serves the API on a given cluster until the test ends.
func startOn(t *testing.T, c Cluster, opts Options) string {
	t.Helper()
	srv := httptest.NewServer(New(c, opts, zaptest.NewLogger(t)).Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestMembersPolicyFindings: what a member may not do or see, as
// Neutron's policy has it.
func TestMembersPolicyFindings(t *testing.T) {
	s := startScopedAPI(t)
	if code, out := s.as("tok-a", "POST", "/v2.0/routers", `{"router":{"name":"r","distributed":true}}`); code != 403 {
		t.Errorf("a member's distributed router: %d %v, want 403", code, out)
	}
	if code, out := s.as("tok-a", "POST", "/v2.0/routers", `{"router":{"name":"r","distributed":false}}`); code != 403 {
		t.Errorf("a member's centralized router: %d %v, want 403", code, out)
	}
	if code, out := s.as("tok-a", "GET", "/v2.0/agents", ""); code != 200 || fmt.Sprint(out["agents"]) != "[]" {
		t.Errorf("a member's agents: %d %v, want 200 and none", code, out)
	}
	n := s.mustCreate("tok-a", "/v2.0/networks", `{"network":{"name":"a"}}`)
	if v, ok := n["router:external"]; !ok || v != false {
		t.Errorf("a member's new network: router:external %v (present %v), want false", v, ok)
	}
	// A router's interface is its project's: its owner updates it (its
	// own fixed IPs named again change nothing).
	sub := s.mustCreate("tok-a", "/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"cidr":"10.100.0.0/28"}}`, n["id"]))
	r := s.mustCreate("tok-a", "/v2.0/routers", `{"router":{"name":"r"}}`)
	code, iface := s.as("tok-a", "PUT", "/v2.0/routers/"+r["id"].(string)+"/add_router_interface", fmt.Sprintf(`{"subnet_id":%q}`, sub["id"]))
	if code != 200 || iface["project_id"] != "proj-a" {
		t.Fatalf("a member's router interface: %d %v", code, iface)
	}
	code, out := s.as("tok-a", "PUT", "/v2.0/ports/"+iface["port_id"].(string), fmt.Sprintf(`{"port":{"fixed_ips":[{"subnet_id":%q}]}}`, sub["id"]))
	if code != 200 || out["port"].(map[string]any)["fixed_ips"].([]any)[0].(map[string]any)["ip_address"] != "10.100.0.1" {
		t.Errorf("a member updates its router interface's fixed IPs to what they are: %d %v", code, out)
	}
	// Another project's object has no tags to see or change.
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		if code, _ := s.as("tok-b", m, "/v2.0/networks/"+n["id"].(string)+"/tags", `{"tags":[]}`); code != 404 {
			t.Errorf("%s another project's tags: %d, want 404", m, code)
		}
	}
	if code, _ := s.as("tok-a", "PUT", "/v2.0/networks/"+n["id"].(string)+"/tags/mine", ""); code != 201 {
		t.Errorf("a member tags its own network: %d", code)
	}
}

// TestSubnetPools: stored and returned, with tags and If-Match like any
// object; a member's are its own, shared and is_default the admin's.
func TestSubnetPools(t *testing.T) {
	c := startAPI(t)
	code, out := c.do("POST", "/v2.0/subnetpools", `{"subnetpool":{"name":"p","prefixes":["10.10.0.0/16","10.11.0.1/16"]}}`)
	if code != 201 {
		t.Fatalf("create: %d %v", code, out)
	}
	p := out["subnetpool"].(map[string]any)
	pid := p["id"].(string)
	if fmt.Sprint(p["prefixes"]) != "[10.10.0.0/16 10.11.0.0/16]" || p["min_prefixlen"] != 8.0 || p["default_prefixlen"] != 8.0 ||
		p["max_prefixlen"] != 32.0 || p["ip_version"] != 4.0 || !neutronTime.MatchString(fmt.Sprint(p["created_at"])) {
		t.Fatalf("a new pool: %v", p)
	}
	if _, got := c.do("GET", "/v2.0/subnetpools/"+pid, ""); got["subnetpool"].(map[string]any)["name"] != "p" {
		t.Fatalf("show: %v", got)
	}
	if _, got := c.do("GET", "/v2.0/subnetpools?name=p", ""); len(got["subnetpools"].([]any)) != 1 {
		t.Fatalf("list by name: %v", got)
	}
	if code, _, _ := c.req("PUT", "/v2.0/subnetpools/"+pid+"/tags/t", "", nil); code != 201 {
		t.Fatalf("tag: %d", code)
	}
	if code, _, out := c.req("PUT", "/v2.0/subnetpools/"+pid, `{"subnetpool":{"name":"q"}}`, map[string]string{"If-Match": "revision_number=1"}); code != 412 {
		t.Fatalf("stale If-Match: %d %v", code, out)
	}
	if code, out := c.do("PUT", "/v2.0/subnetpools/"+pid, `{"subnetpool":{"name":"q","default_prefixlen":"24"}}`); code != 200 ||
		out["subnetpool"].(map[string]any)["name"] != "q" || out["subnetpool"].(map[string]any)["default_prefixlen"] != 24.0 {
		t.Fatalf("update: %d %v", code, out)
	}
	for _, bad := range []string{`{"subnetpool":{"name":"x"}}`, `{"subnetpool":{"prefixes":["fd00::/8"]}}`,
		`{"subnetpool":{"prefixes":["10.0.0.0/8","10.1.0.0/16"]}}`, `{"subnetpool":{"prefixes":["10.0.0.0/8"],"min_prefixlen":24,"max_prefixlen":16}}`,
		`{"subnetpool":{"prefixes":["10.0.0.0/8"],"colour":1}}`} {
		if code, out := c.do("POST", "/v2.0/subnetpools", bad); code != 400 {
			t.Errorf("POST %s: %d %v, want 400", bad, code, out)
		}
	}
	// Subnets cut from the pool: the first free prefix of the length
	// asked (the default), none overlapping another of the pool's.
	net := id(c.create("/v2.0/networks", `{"network":{"name":"n"}}`), "network")
	net2 := id(c.create("/v2.0/networks", `{"network":{"name":"n2"}}`), "network")
	cut := func(network, extra string) (int, map[string]any) {
		return c.do("POST", "/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"subnetpool_id":%q%s}}`, network, pid, extra))
	}
	code, out = cut(net, "")
	if sn, _ := out["subnet"].(map[string]any); code != 201 || sn["cidr"] != "10.10.0.0/24" || sn["subnetpool_id"] != pid || sn["gateway_ip"] != "10.10.0.1" {
		t.Fatalf("a subnet from the pool: %d %v", code, out)
	}
	first := id(out, "subnet")
	code, out = cut(net2, `,"prefixlen":26`)
	if code != 201 || out["subnet"].(map[string]any)["cidr"] != "10.10.1.0/26" {
		t.Fatalf("a /26 from the pool: %d %v", code, out)
	}
	for _, tc := range []struct {
		extra string
		code  int
	}{
		{`,"cidr":"10.10.0.128/25"`, 409}, {`,"cidr":"10.12.0.0/24"`, 400}, {`,"prefixlen":4`, 400}, {`,"cidr":"10.11.5.0/24"`, 201},
	} {
		if code, out := cut(net2, tc.extra); code != tc.code {
			t.Errorf("a subnet from the pool with %s: %d %v, want %d", tc.extra, code, out, tc.code)
		}
	}
	if _, out := c.do("GET", "/v2.0/subnets?subnetpool_id="+pid, ""); len(out["subnets"].([]any)) != 3 {
		t.Errorf("the pool's subnets: %v", out)
	}
	if code, out := c.do("DELETE", "/v2.0/subnetpools/"+pid, ""); code != 409 || neutronType(out) != "SubnetPoolInUse" {
		t.Errorf("deleting a pool in use: %d %v", code, out)
	}
	if _, out := c.do("GET", "/v2.0/subnets/"+first, ""); out["subnet"].(map[string]any)["subnetpool_id"] != pid {
		t.Errorf("show: %v", out)
	}
	_, out = c.do("GET", "/v2.0/subnets?subnetpool_id="+pid, "")
	for _, sn := range out["subnets"].([]any) {
		c.do("DELETE", "/v2.0/subnets/"+sn.(map[string]any)["id"].(string), "")
	}
	if code, out := c.do("POST", "/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"cidr":"10.50.0.0/24"}}`, net)); code != 201 ||
		out["subnet"].(map[string]any)["subnetpool_id"] != nil {
		t.Errorf("a subnet from no pool has subnetpool_id null: %d %v", code, out)
	}
	if code, _ := c.do("DELETE", "/v2.0/subnetpools/"+pid, ""); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, out := c.do("GET", "/v2.0/subnetpools/"+pid, ""); code != 404 || neutronType(out) != "SubnetPoolNotFound" {
		t.Fatalf("show after delete: %d %v", code, out)
	}

	s := startScopedAPI(t)
	mine := s.mustCreate("tok-a", "/v2.0/subnetpools", `{"subnetpool":{"name":"a","prefixes":["10.20.0.0/16"]}}`)
	if mine["project_id"] != "proj-a" {
		t.Fatalf("a member's pool: %v", mine)
	}
	if code, _ := s.as("tok-b", "GET", "/v2.0/subnetpools/"+mine["id"].(string), ""); code != 404 {
		t.Errorf("another project's pool: %d, want 404", code)
	}
	if code, _ := s.as("tok-a", "POST", "/v2.0/subnetpools", `{"subnetpool":{"prefixes":["10.21.0.0/16"],"shared":true}}`); code != 403 {
		t.Errorf("a member's shared pool: %d, want 403", code)
	}
	nb := s.mustCreate("tok-b", "/v2.0/networks", `{"network":{"name":"b"}}`)
	if code, out := s.as("tok-b", "POST", "/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"subnetpool_id":%q}}`, nb["id"], mine["id"])); code != 404 {
		t.Errorf("a subnet from another project's pool: %d %v, want 404", code, out)
	}
}

// TestQuotas: an admin limits a project; the limit holds as creates are
// applied (409 OverQuota); a reset gives the defaults (no limit) back.
func TestQuotas(t *testing.T) {
	s := startScopedAPI(t)
	if code, out := s.as("tok-admin", "PUT", "/v2.0/quotas/proj-a", `{"quota":{"network":1,"port":"0"}}`); code != 200 ||
		out["quota"].(map[string]any)["network"] != 1.0 || out["quota"].(map[string]any)["port"] != 0.0 || out["quota"].(map[string]any)["router"] != -1.0 {
		t.Fatalf("set: %d %v", code, out)
	}
	n := s.mustCreate("tok-a", "/v2.0/networks", `{"network":{"name":"one"}}`)
	before := fmt.Sprint(s.as("tok-admin", "GET", "/v2.0/networks", ""))
	code, out := s.as("tok-a", "POST", "/v2.0/networks", `{"network":{"name":"two"}}`)
	if msg, _ := out["NeutronError"].(map[string]any)["message"].(string); code != 409 || neutronType(out) != "OverQuota" || msg != "Quota exceeded for resources: ['network']." {
		t.Fatalf("a network over the quota: %d %v", code, out)
	}
	if after := fmt.Sprint(s.as("tok-admin", "GET", "/v2.0/networks", "")); after != before {
		t.Fatal("a create over the quota changed the networks")
	}
	if code, out := s.as("tok-admin", "POST", "/v2.0/networks", `{"network":{"project_id":"proj-a"}}`); code != 409 {
		t.Fatalf("an admin's network for the project, over its quota: %d %v", code, out)
	}
	if code, _ := s.as("tok-a", "POST", "/v2.0/ports", fmt.Sprintf(`{"port":{"network_id":%q}}`, n["id"])); code != 409 {
		t.Errorf("a port with a port quota of 0: %d", code)
	}
	s.mustCreate("tok-b", "/v2.0/networks", `{"network":{"name":"b1"}}`) // another project: not limited
	s.mustCreate("tok-b", "/v2.0/networks", `{"network":{"name":"b2"}}`)
	_, list := s.as("tok-admin", "GET", "/v2.0/quotas", "")
	if l := list["quotas"].([]any); len(l) != 1 || l[0].(map[string]any)["project_id"] != "proj-a" {
		t.Fatalf("projects with quotas: %v", list)
	}
	if code, out := s.as("tok-a", "GET", "/v2.0/quotas/proj-a/details", ""); code != 200 ||
		fmt.Sprint(out["quota"].(map[string]any)["network"]) != "map[limit:1 reserved:0 used:1]" {
		t.Fatalf("details: %d %v", code, out)
	}
	for _, tc := range []struct {
		token, method, path, body string
		code                      int
	}{
		{"tok-a", "PUT", "/v2.0/quotas/proj-a", `{"quota":{"network":5}}`, 403},
		{"tok-a", "GET", "/v2.0/quotas/proj-b", ``, 403},
		{"tok-a", "GET", "/v2.0/quotas", ``, 403},
		{"tok-admin", "PUT", "/v2.0/quotas/proj-a", `{"quota":{"network":-2}}`, 400},
		{"tok-admin", "PUT", "/v2.0/quotas/proj-a", `{"quota":{"colour":1}}`, 400},
		{"tok-admin", "PUT", "/v2.0/quotas/proj-a", `{"quota":{"network":"many"}}`, 400},
	} {
		if code, out := s.as(tc.token, tc.method, tc.path, tc.body); code != tc.code {
			t.Errorf("%s %s %s as %s: %d %v, want %d", tc.method, tc.path, tc.body, tc.token, code, out, tc.code)
		}
	}
	if code, out := s.as("tok-admin", "GET", "/v2.0/quotas/proj-a/details.json", ""); code != 200 || out["quota"] == nil {
		t.Fatalf("details.json (Neutron's format suffix, as tempest asks): %d %v", code, out)
	}
	if code, _ := s.as("tok-admin", "DELETE", "/v2.0/quotas/proj-a", ""); code != 204 {
		t.Fatalf("reset: %d", code)
	}
	_, q := s.as("tok-a", "GET", "/v2.0/quotas/proj-a", "")
	_, d := s.as("tok-a", "GET", "/v2.0/quotas/proj-a/default", "")
	if fmt.Sprint(q) != fmt.Sprint(d) || q["quota"].(map[string]any)["network"] != -1.0 {
		t.Fatalf("after a reset: %v, defaults %v", q, d)
	}
	s.mustCreate("tok-a", "/v2.0/networks", `{"network":{"name":"two"}}`)
}
