package northbound

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// rulesOf are the rules of a group as the API shows it.
func rulesOf(g map[string]any) []map[string]any {
	var out []map[string]any
	for _, r := range g["security_group_rules"].([]any) {
		out = append(out, r.(map[string]any))
	}
	return out
}

// feedSince are the changes committed after an index, as
// "resource/op/id".
func feedSince(c apiClient, since float64) []string {
	c.t.Helper()
	_, ev := c.do("GET", fmt.Sprintf("/v2.0/events?since=%d&timeout=0", int(since)), "")
	var out []string
	for _, e := range ev["events"].([]any) {
		m := e.(map[string]any)
		out = append(out, fmt.Sprintf("%s/%s/%s", m["resource"], m["op"], m["id"]))
	}
	return out
}

func feedIndex(c apiClient) float64 {
	_, ev := c.do("GET", "/v2.0/events?timeout=0", "")
	return ev["index"].(float64)
}

func TestSecurityGroups(t *testing.T) {
	c := startAPI(t)
	since := feedIndex(c)
	web := obj(c.create("/v2.0/security-groups", `{"security_group":{"name":"web","description":"front ends"}}`), "security_group")
	if web["name"] != "web" || web["description"] != "front ends" || web["stateful"] != true || web["shared"] != false ||
		fmt.Sprint(web["tags"]) != "[]" || web["project_id"] != "" || web["revision_number"] == nil {
		t.Fatalf("web: %v", web)
	}
	webID := web["id"].(string)
	rules := rulesOf(web)
	if len(rules) != 1 {
		t.Fatalf("a new group's rules: %v", rules)
	}
	eg := rules[0]
	for k, want := range map[string]any{"direction": "egress", "ethertype": "IPv4", "protocol": nil, "port_range_min": nil, "port_range_max": nil,
		"remote_ip_prefix": nil, "remote_group_id": nil, "security_group_id": webID} {
		if v, ok := eg[k]; !ok || v != want {
			t.Errorf("the egress rule's %s: %v (present %v), want %v", k, v, ok, want)
		}
	}
	if _, ok := eg["wyvern:key"]; ok {
		t.Errorf("a rule inside its group shows its key: %v", eg)
	}
	// The objects of no project (--auth none) are a project of their
	// own, whose default group came first, as Neutron makes it.
	none := topology.DefaultSecurityGroupID("")
	if got := feedSince(c, since); fmt.Sprint(got) != fmt.Sprintf("[securitygroup/create/%s securitygroup/create/%s]", none, webID) {
		t.Errorf("feed after a group create: %v", got)
	}

	// Rules of each kind; the openstack CLI sends ports as numbers, a
	// protocol may be a number, and null means any.
	rule := func(body string) map[string]any {
		t.Helper()
		return obj(c.create("/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"`+webID+`",`+body+`}}`), "security_group_rule")
	}
	ssh := rule(`"direction":"ingress","ethertype":"IPv4","protocol":"tcp","port_range_min":22,"port_range_max":22,"remote_ip_prefix":"10.1.2.3/8"`)
	if ssh["protocol"] != "tcp" || ssh["port_range_min"] != float64(22) || ssh["port_range_max"] != float64(22) ||
		ssh["remote_ip_prefix"] != "10.0.0.0/8" || ssh["normalized_cidr"] != "10.0.0.0/8" || ssh["remote_group_id"] != nil ||
		ssh["security_group_id"] != webID || ssh["wyvern:key"] == nil {
		t.Fatalf("ssh rule: %v", ssh)
	}
	http80 := rule(`"direction":"ingress","protocol":"tcp","port_range_min":"80","port_range_max":"80","remote_group_id":"` + webID + `"`)
	if http80["remote_group_id"] != webID || http80["remote_ip_prefix"] != nil || http80["ethertype"] != "IPv4" || http80["port_range_min"] != float64(80) {
		t.Fatalf("http rule: %v", http80)
	}
	ping := rule(`"direction":"ingress","protocol":"icmp","port_range_min":8,"port_range_max":null`)
	if ping["protocol"] != "icmp" || ping["port_range_min"] != float64(8) || ping["port_range_max"] != nil {
		t.Fatalf("ping rule: %v", ping)
	}
	dns := rule(`"direction":"ingress","protocol":17,"port_range_min":53,"port_range_max":53,"description":"dns"`)
	if dns["protocol"] != "17" || dns["description"] != "dns" {
		t.Fatalf("a protocol given as a number: %v", dns)
	}
	anyIn := rule(`"direction":"ingress","protocol":null,"remote_ip_prefix":"192.0.2.9"`)
	if anyIn["protocol"] != nil || anyIn["remote_ip_prefix"] != "192.0.2.9/32" {
		t.Fatalf("any protocol from a host: %v", anyIn)
	}
	bulk := c.create("/v2.0/security-group-rules", `{"security_group_rules":[`+
		`{"security_group_id":"`+webID+`","direction":"ingress","protocol":"udp","port_range_min":5000,"port_range_max":5100},`+
		`{"security_group_id":"`+webID+`","direction":"egress","protocol":"gre"}]}`)["security_group_rules"].([]any)
	if len(bulk) != 2 || bulk[0].(map[string]any)["port_range_max"] != float64(5100) || bulk[1].(map[string]any)["protocol"] != "gre" {
		t.Fatalf("bulk rules: %v", bulk)
	}
	web = obj(c.mustDo("GET", "/v2.0/security-groups/"+webID, "", 200), "security_group")
	if n := len(rulesOf(web)); n != 8 || web["revision_number"] == float64(0) {
		t.Fatalf("web holds %d rules: %v", n, web)
	}
	for q, want := range map[string]int{"security_group_id=" + webID: 8, "protocol=tcp": 2, "direction=egress": 3, "remote_group_id=" + webID: 1,
		"port_range_min=22": 1, "remote_ip_prefix=": 8, "security_group_id=" + none: 2} {
		if _, out := c.do("GET", "/v2.0/security-group-rules?"+q, ""); len(out["security_group_rules"].([]any)) != want {
			t.Errorf("rules ?%s: %d, want %d", q, len(out["security_group_rules"].([]any)), want)
		}
	}
	if _, out := c.do("GET", "/v2.0/security-group-rules?fields=id&fields=protocol&protocol=icmp", ""); fmt.Sprint(out["security_group_rules"]) != "[map[id:"+ping["id"].(string)+" protocol:icmp]]" {
		t.Errorf("rules with fields=: %v", out)
	}
	if _, out := c.do("GET", "/v2.0/security-groups?name=web", ""); len(out["security_groups"].([]any)) != 1 {
		t.Errorf("groups by name: %v", out)
	}
	if r := obj(c.mustDo("GET", "/v2.0/security-group-rules/"+ssh["id"].(string), "", 200), "security_group_rule"); r["port_range_min"] != float64(22) {
		t.Errorf("show a rule: %v", r)
	}
	upd := obj(c.mustDo("PUT", "/v2.0/security-groups/"+webID, `{"security_group":{"name":"www","tags":["edge"]}}`, 200), "security_group")
	if upd["name"] != "www" || fmt.Sprint(upd["tags"]) != "[edge]" || upd["description"] != "front ends" || len(rulesOf(upd)) != 8 {
		t.Fatalf("update: %v", upd)
	}
	sshID := ssh["id"].(string)

	// A port that names no group gets its project's default group, made
	// on the way if the project has none.
	netID := id(c.create("/v2.0/networks", `{"network":{"name":"n"}}`), "network")
	c.create("/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"cidr":"10.0.0.0/24"}}`, netID))
	lab := obj(c.create("/v2.0/ports", fmt.Sprintf(`{"port":{"network_id":%q}}`, netID)), "port")
	if fmt.Sprint(lab["security_groups"]) != "["+none+"]" {
		t.Fatalf("a port of no project: %v", lab["security_groups"])
	}
	since = feedIndex(c)
	vm := obj(c.create("/v2.0/ports", fmt.Sprintf(`{"port":{"network_id":%q,"project_id":"p1"}}`, netID)), "port")
	def := topology.DefaultSecurityGroupID("p1")
	if fmt.Sprint(vm["security_groups"]) != "["+def+"]" {
		t.Fatalf("the first port of p1: %v", vm["security_groups"])
	}
	if got := feedSince(c, since); fmt.Sprint(got) != fmt.Sprintf("[securitygroup/create/%s port/create/%s]", def, vm["id"]) {
		t.Errorf("feed after the first port of a project: %v", got)
	}
	d := obj(c.mustDo("GET", "/v2.0/security-groups/"+def, "", 200), "security_group")
	if d["name"] != "default" || d["description"] != "Default security group" || d["project_id"] != "p1" || len(rulesOf(d)) != 2 {
		t.Fatalf("p1's default group: %v", d)
	}
	if in := rulesOf(d)[1]; in["direction"] != "ingress" || in["remote_group_id"] != def || in["protocol"] != nil {
		t.Fatalf("the default group admits its own members: %v", in)
	}
	if p := obj(c.create("/v2.0/ports", fmt.Sprintf(`{"port":{"network_id":%q,"project_id":"p1","security_groups":null}}`, netID)), "port"); fmt.Sprint(p["security_groups"]) != "[]" {
		t.Errorf("security_groups null: %v", p["security_groups"])
	}
	labID, vmID := lab["id"].(string), vm["id"].(string)
	if p := obj(c.mustDo("PUT", "/v2.0/ports/"+labID, `{"port":{"security_groups":["`+webID+`"]}}`, 200), "port"); fmt.Sprint(p["security_groups"]) != "["+webID+"]" {
		t.Fatalf("a group put on a port: %v", p)
	}
	other := obj(c.create("/v2.0/security-groups", `{"security_group":{"name":"other","project_id":"p2"}}`), "security_group")["id"].(string)

	c.mustReject([]rejected{
		// Groups.
		{"a group named default", "POST", "/v2.0/security-groups", `{"security_group":{"name":"default"}}`, 409, "SecurityGroupDefaultAlreadyExists"},
		{"renamed default", "PUT", "/v2.0/security-groups/" + webID, `{"security_group":{"name":"Default"}}`, 409, "SecurityGroupDefaultAlreadyExists"},
		{"the default group renamed", "PUT", "/v2.0/security-groups/" + def, `{"security_group":{"name":"mine"}}`, 409, "SecurityGroupCannotUpdateDefault"},
		{"an id on create", "POST", "/v2.0/security-groups", `{"security_group":{"id":"mine","name":"x"}}`, 400, "BadRequest"},
		{"an unknown field", "POST", "/v2.0/security-groups", `{"security_group":{"name":"x","rules":[]}}`, 400, "BadRequest"},
		{"rules on create", "POST", "/v2.0/security-groups", `{"security_group":{"name":"x","security_group_rules":[]}}`, 400, "BadRequest"},
		{"a name too long", "POST", "/v2.0/security-groups", `{"security_group":{"name":"` + strings.Repeat("n", MaxNameLen+1) + `"}}`, 400, "InvalidInput"},
		{"a bulk with one bad", "POST", "/v2.0/security-groups", `{"security_groups":[{"name":"ok"},{"name":"default"}]}`, 409, "SecurityGroupDefaultAlreadyExists"},
		{"stateless while ports hold it", "PUT", "/v2.0/security-groups/" + webID, `{"security_group":{"stateful":false}}`, 409, "SecurityGroupInUse"},
		{"show a missing group", "GET", "/v2.0/security-groups/nope", ``, 404, "SecurityGroupNotFound"},
		{"update a missing group", "PUT", "/v2.0/security-groups/nope", `{"security_group":{"name":"x"}}`, 404, "SecurityGroupNotFound"},
		{"delete a missing group", "DELETE", "/v2.0/security-groups/nope", ``, 404, "SecurityGroupNotFound"},
		{"delete a group a port holds", "DELETE", "/v2.0/security-groups/" + webID, ``, 409, "SecurityGroupInUse"},
		{"delete a default group a port holds", "DELETE", "/v2.0/security-groups/" + def, ``, 409, "SecurityGroupInUse"},
		// Rules.
		{"IPv6", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"` + webID + `","direction":"ingress","ethertype":"IPv6"}}`, 400, "SecurityGroupRuleInvalidEtherType"},
		{"an unknown protocol", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"` + webID + `","direction":"ingress","protocol":"http"}}`, 400, "SecurityGroupRuleInvalidProtocol"},
		{"protocol 300", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"` + webID + `","direction":"ingress","protocol":300}}`, 400, "SecurityGroupRuleInvalidProtocol"},
		{"a protocol that is a bool", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"` + webID + `","direction":"ingress","protocol":true}}`, 400, "BadRequest"},
		{"no direction", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"` + webID + `","protocol":"tcp"}}`, 400, "InvalidInput"},
		{"no group", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"direction":"ingress"}}`, 400, "InvalidInput"},
		{"min above max", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"` + webID + `","direction":"ingress","protocol":"tcp","port_range_min":90,"port_range_max":80}}`, 400, "SecurityGroupInvalidPortRange"},
		{"ports without a protocol", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"` + webID + `","direction":"ingress","port_range_min":80,"port_range_max":80}}`, 400, "SecurityGroupProtocolRequiredWithPorts"},
		{"ports of GRE", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"` + webID + `","direction":"ingress","protocol":"gre","port_range_min":80,"port_range_max":80}}`, 400, "SecurityGroupInvalidProtocolForPort"},
		{"a port that is not a number", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"` + webID + `","direction":"ingress","protocol":"tcp","port_range_min":"http","port_range_max":80}}`, 400, "BadRequest"},
		{"port 70000", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"` + webID + `","direction":"ingress","protocol":"tcp","port_range_min":1,"port_range_max":70000}}`, 400, "SecurityGroupInvalidPortValue"},
		{"ICMP code without a type", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"` + webID + `","direction":"ingress","protocol":"icmp","port_range_max":0}}`, 400, "SecurityGroupMissingIcmpType"},
		{"ICMP type 300", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"` + webID + `","direction":"ingress","protocol":"icmp","port_range_min":300}}`, 400, "SecurityGroupInvalidIcmpValue"},
		{"a prefix and a group", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"` + webID + `","direction":"ingress","remote_ip_prefix":"10.0.0.0/8","remote_group_id":"` + webID + `"}}`, 400, "SecurityGroupMultipleRemoteEntites"},
		{"not a prefix", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"` + webID + `","direction":"ingress","remote_ip_prefix":"10.0.0.0/33"}}`, 400, "InvalidCIDR"},
		{"an IPv6 prefix", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"` + webID + `","direction":"ingress","remote_ip_prefix":"::/0"}}`, 400, "SecurityGroupRuleParameterConflict"},
		{"an address group", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"` + webID + `","direction":"ingress","remote_address_group_id":"ag"}}`, 400, "InvalidInput"},
		{"a missing remote group", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"` + webID + `","direction":"ingress","remote_group_id":"nope"}}`, 404, "SecurityGroupNotFound"},
		{"another project's remote group", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"` + def + `","direction":"ingress","remote_group_id":"` + other + `"}}`, 404, "SecurityGroupNotFound"},
		{"in a missing group", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"nope","direction":"ingress"}}`, 404, "SecurityGroupNotFound"},
		{"the same rule again", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"` + webID + `","direction":"ingress","protocol":"6","port_range_min":22,"port_range_max":22,"remote_ip_prefix":"10.0.0.0/8"}}`, 409, "SecurityGroupRuleExists"},
		{"the egress rule again", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"` + webID + `","direction":"egress","remote_ip_prefix":"0.0.0.0/0"}}`, 409, "SecurityGroupRuleExists"},
		{"a rule twice in a bulk", "POST", "/v2.0/security-group-rules", `{"security_group_rules":[{"security_group_id":"` + webID + `","direction":"ingress","protocol":"sctp"},{"security_group_id":"` + webID + `","direction":"ingress","protocol":"132"}]}`, 409, "DuplicateSecurityGroupRuleInPost"},
		{"a bulk of two groups", "POST", "/v2.0/security-group-rules", `{"security_group_rules":[{"security_group_id":"` + webID + `","direction":"ingress","protocol":"sctp"},{"security_group_id":"` + def + `","direction":"ingress","protocol":"sctp"}]}`, 400, "SecurityGroupNotSingleGroupRules"},
		{"an id on a rule", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"id":"r","security_group_id":"` + webID + `","direction":"ingress"}}`, 400, "BadRequest"},
		{"a rule changed", "PUT", "/v2.0/security-group-rules/" + sshID, `{"security_group_rule":{"description":"x"}}`, 405, "HTTPMethodNotAllowed"},
		{"show a missing rule", "GET", "/v2.0/security-group-rules/nope", ``, 404, "SecurityGroupRuleNotFound"},
		{"delete a missing rule", "DELETE", "/v2.0/security-group-rules/nope", ``, 404, "SecurityGroupRuleNotFound"},
		// Ports.
		{"a missing group on a port", "POST", "/v2.0/ports", fmt.Sprintf(`{"port":{"network_id":%q,"security_groups":["nope"]}}`, netID), 404, "SecurityGroupNotFound"},
		{"another project's group on a port", "POST", "/v2.0/ports", fmt.Sprintf(`{"port":{"network_id":%q,"project_id":"p1","security_groups":[%q]}}`, netID, other), 404, "SecurityGroupNotFound"},
		{"groups without port security", "POST", "/v2.0/ports", fmt.Sprintf(`{"port":{"network_id":%q,"port_security_enabled":false,"security_groups":[%q]}}`, netID, webID), 400, "PortSecurityAndIPRequiredForSecurityGroups"},
		{"port security off, groups held", "PUT", "/v2.0/ports/" + vmID, `{"port":{"port_security_enabled":false}}`, 409, "PortSecurityPortHasSecurityGroup"},
		{"a group that is not a string", "PUT", "/v2.0/ports/" + vmID, `{"port":{"security_groups":[7]}}`, 400, "BadRequest"},
	})

	// Port security off in the same update that clears the groups.
	if p := obj(c.mustDo("PUT", "/v2.0/ports/"+vmID, `{"port":{"port_security_enabled":false,"security_groups":[]}}`, 200), "port"); p["port_security_enabled"] != false || fmt.Sprint(p["security_groups"]) != "[]" {
		t.Fatalf("port security off: %v", p)
	}
	since = feedIndex(c)
	c.mustDo("DELETE", "/v2.0/security-group-rules/"+sshID, "", 204)
	c.mustDo("GET", "/v2.0/security-group-rules/"+sshID, "", 404)
	if got := feedSince(c, since); fmt.Sprint(got) != "[securitygroup/update/"+webID+"]" {
		t.Errorf("feed after a rule delete: %v", got)
	}
	// Deleting a group deletes the rules of others that name it.
	db := obj(c.create("/v2.0/security-groups", `{"security_group":{"name":"db"}}`), "security_group")["id"].(string)
	c.create("/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"`+db+`","direction":"ingress","remote_group_id":"`+webID+`"}}`)
	c.mustDo("PUT", "/v2.0/ports/"+labID, `{"port":{"security_groups":[]}}`, 200)
	since = feedIndex(c)
	c.mustDo("DELETE", "/v2.0/security-groups/"+webID, "", 204)
	if got := feedSince(c, since); fmt.Sprint(got) != fmt.Sprintf("[securitygroup/delete/%s securitygroup/update/%s]", webID, db) {
		t.Errorf("feed after a group delete: %v", got)
	}
	if d := obj(c.mustDo("GET", "/v2.0/security-groups/"+db, "", 200), "security_group"); len(rulesOf(d)) != 1 {
		t.Errorf("db keeps a rule naming a deleted group: %v", d)
	}
	if _, out := c.do("GET", "/v2.0/security-group-rules?security_group_id="+webID, ""); len(out["security_group_rules"].([]any)) != 0 {
		t.Errorf("a deleted group's rules: %v", out)
	}
}

// TestSecurityGroupsAreTheProjects: a member sees and changes its own
// project's groups and rules only, its first list makes its default
// group, and its ports take its own groups only.
func TestSecurityGroupsAreTheProjects(t *testing.T) {
	s := startScopedAPI(t)
	code, out := s.as("tok-a", "GET", "/v2.0/security-groups", "")
	groups, _ := out["security_groups"].([]any)
	if code != 200 || len(groups) != 1 {
		t.Fatalf("A's first list: %d %v", code, out)
	}
	defA := groups[0].(map[string]any)
	if defA["name"] != "default" || defA["project_id"] != "proj-a" || defA["id"] != topology.DefaultSecurityGroupID("proj-a") || len(rulesOf(defA)) != 2 {
		t.Fatalf("A's default group: %v", defA)
	}
	if _, ok := defA["wyvern:key"]; ok {
		t.Errorf("a member reads a group's key: %v", defA)
	}
	if _, out := s.as("tok-a", "GET", "/v2.0/security-groups", ""); len(out["security_groups"].([]any)) != 1 {
		t.Fatalf("A's second list: %v", out)
	}
	web := s.mustCreate("tok-a", "/v2.0/security-groups", `{"security_group":{"name":"web"}}`)
	webID := web["id"].(string)
	if web["project_id"] != "proj-a" || rulesOf(web)[0]["project_id"] != "proj-a" {
		t.Fatalf("A's group: %v", web)
	}
	r := s.mustCreate("tok-a", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"`+webID+`","direction":"ingress","protocol":"tcp","port_range_min":443,"port_range_max":443}}`)
	if r["project_id"] != "proj-a" {
		t.Fatalf("A's rule: %v", r)
	}
	if _, ok := r["wyvern:key"]; ok {
		t.Errorf("a member reads a rule's key: %v", r)
	}
	// B's default group, made by B's first list of rules.
	_, out = s.as("tok-b", "GET", "/v2.0/security-group-rules", "")
	if l := out["security_group_rules"].([]any); len(l) != 2 || l[0].(map[string]any)["project_id"] != "proj-b" {
		t.Fatalf("B's rules: %v", out)
	}
	defB := topology.DefaultSecurityGroupID("proj-b")

	for _, tc := range []struct {
		token, method, path, body string
		want                      int
	}{
		{"tok-b", "GET", "/v2.0/security-groups/" + webID, ``, 404},
		{"tok-b", "PUT", "/v2.0/security-groups/" + webID, `{"security_group":{"name":"mine"}}`, 404},
		{"tok-b", "DELETE", "/v2.0/security-groups/" + webID, ``, 404},
		{"tok-b", "GET", "/v2.0/security-group-rules/" + r["id"].(string), ``, 404},
		{"tok-b", "DELETE", "/v2.0/security-group-rules/" + r["id"].(string), ``, 404},
		{"tok-b", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"` + webID + `","direction":"ingress"}}`, 404},
		{"tok-b", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"` + defB + `","direction":"ingress","remote_group_id":"` + webID + `"}}`, 404},
		{"tok-a", "POST", "/v2.0/security-group-rules", `{"security_group_rule":{"security_group_id":"` + webID + `","direction":"ingress","project_id":"proj-b"}}`, 403},
		{"tok-a", "POST", "/v2.0/security-groups", `{"security_group":{"name":"x","project_id":"proj-b"}}`, 403},
		// A member keeps its default group; the admin may delete it once
		// no port holds it.
		{"tok-a", "DELETE", "/v2.0/security-groups/" + defA["id"].(string), ``, 409},
	} {
		if code, out := s.as(tc.token, tc.method, tc.path, tc.body); code != tc.want {
			t.Errorf("%s %s %s %s: %d %v, want %d", tc.token, tc.method, tc.path, tc.body, code, out, tc.want)
		}
	}
	if _, out := s.as("tok-b", "GET", "/v2.0/security-groups", ""); len(out["security_groups"].([]any)) != 1 {
		t.Errorf("B lists A's groups: %v", out)
	}
	if _, out := s.as("tok-a", "GET", "/v2.0/security-group-rules", ""); len(out["security_group_rules"].([]any)) != 4 {
		t.Errorf("A's rules (its default's two, web's two): %v", out)
	}

	// A's ports take A's groups: its default when it names none; B's is
	// not found.
	netA := s.mustCreate("tok-a", "/v2.0/networks", `{"network":{"name":"a"}}`)["id"].(string)
	s.mustCreate("tok-a", "/v2.0/subnets", `{"subnet":{"network_id":"`+netA+`","cidr":"10.0.0.0/24"}}`)
	p := s.mustCreate("tok-a", "/v2.0/ports", `{"port":{"network_id":"`+netA+`"}}`)
	if fmt.Sprint(p["security_groups"]) != "["+defA["id"].(string)+"]" {
		t.Fatalf("A's port: %v", p["security_groups"])
	}
	if code, out := s.as("tok-a", "POST", "/v2.0/ports", `{"port":{"network_id":"`+netA+`","security_groups":["`+defB+`"]}}`); code != http.StatusNotFound {
		t.Errorf("A's port with B's group: %d %v", code, out)
	}
	if code, out := s.as("tok-a", "PUT", "/v2.0/ports/"+p["id"].(string), `{"port":{"security_groups":["`+webID+`","`+defB+`"]}}`); code != http.StatusNotFound {
		t.Errorf("A puts B's group on its port: %d %v", code, out)
	}
	if code, out := s.as("tok-a", "PUT", "/v2.0/ports/"+p["id"].(string), `{"port":{"security_groups":["`+webID+`"]}}`); code != 200 {
		t.Errorf("A puts its group on its port: %d %v", code, out)
	}
	if code, _ := s.as("tok-admin", "DELETE", "/v2.0/security-groups/"+defA["id"].(string), ""); code != 204 {
		t.Errorf("the admin deletes A's default group no port holds: %d", code)
	}
}
