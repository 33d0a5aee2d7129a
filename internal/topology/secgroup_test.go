package topology

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
)

func errType(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Type
	}
	return fmt.Sprint(err)
}

// sgStore is a network and subnet, and project p1's group "web"
// (created at index 10, so p1's default group exists too).
func sgStore(t *testing.T) *Store {
	t.Helper()
	s := New()
	mustNet(t, s, "n", NetworkSpec{})
	mustSubnet(t, s, "sn", "n", "10.0.0.0/24")
	if _, err := s.CreateSecurityGroup(10, SecurityGroupSpec{ID: "web", EgressRuleID: "web-egress", Name: str("web"), ProjectID: str("p1")}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSecurityGroupCreate(t *testing.T) {
	s := sgStore(t)
	web, ok := s.SecurityGroup("web")
	if !ok || web.Name != "web" || web.ProjectID != "p1" || web.TenantID != "p1" || !web.Stateful || web.RevisionNumber != 10 ||
		fmt.Sprint(web.Tags) != "[]" || len(web.Rules) != 1 {
		t.Fatalf("web: %+v", web)
	}
	// Every new group lets its ports send anything anywhere.
	eg := web.Rules[0]
	if eg.ID != "web-egress" || eg.Direction != DirectionEgress || eg.Ethertype != EthertypeIPv4 || eg.Protocol != "" ||
		eg.PortRangeMin != nil || eg.RemoteIPPrefix != "" || eg.RemoteGroupID != "" || eg.ProjectID != "p1" || eg.SecurityGroupID != "web" ||
		eg.RevisionNumber != 10 {
		t.Fatalf("web's first rule: %+v", eg)
	}
	// The project's default group came first, as Neutron makes it.
	def, ok := s.DefaultSecurityGroup("p1")
	if !ok || def.ID != DefaultSecurityGroupID("p1") || def.Key != 1 || web.Key != 2 || def.Rules[0].Key != 1 || def.Rules[1].Key != 2 || eg.Key != 3 {
		t.Fatalf("keys: default %+v, web %+v", def, web)
	}
	if r, ok := s.SecurityGroupRule("web-egress"); !ok || r.Key != 3 {
		t.Fatalf("rule lookup: %+v %v", r, ok)
	}

	before := snapshotBytes(t, s)
	for _, tc := range []struct {
		name string
		sp   SecurityGroupSpec
		typ  string
	}{
		{"named default", SecurityGroupSpec{ID: "x", EgressRuleID: "xe", Name: str("default")}, "SecurityGroupDefaultAlreadyExists"},
		{"named Default", SecurityGroupSpec{ID: "x", EgressRuleID: "xe", Name: str("Default"), ProjectID: str("p9")}, "SecurityGroupDefaultAlreadyExists"},
		{"id in use", SecurityGroupSpec{ID: "web", EgressRuleID: "xe"}, "SecurityGroupExists"},
		{"rule id in use", SecurityGroupSpec{ID: "x", EgressRuleID: "web-egress"}, "SecurityGroupRuleExists"},
		{"no rule id", SecurityGroupSpec{ID: "x"}, "InvalidInput"},
		{"the default group's id", SecurityGroupSpec{ID: DefaultSecurityGroupID("p2"), EgressRuleID: "xe", ProjectID: str("p2")}, "SecurityGroupExists"},
	} {
		if _, err := s.CreateSecurityGroup(11, tc.sp); errType(err) != tc.typ {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.typ)
		}
	}
	// A bulk create is all or none: the second group's failure undoes
	// the first, and the default group of the first's new project.
	_, err := s.CreateSecurityGroups(11, []SecurityGroupSpec{{ID: "a", EgressRuleID: "ae", ProjectID: str("p2")}, {ID: "b", EgressRuleID: "ae"}})
	if errType(err) != "SecurityGroupRuleExists" {
		t.Fatalf("bulk with a repeated rule id: %v", err)
	}
	if after := snapshotBytes(t, s); !bytes.Equal(before, after) {
		t.Fatalf("a rejected create changed the store:\n%s\n%s", before, after)
	}
	// The objects of no project (--auth none) are a project of their own.
	if _, err := s.CreateSecurityGroup(12, SecurityGroupSpec{ID: "lab", EgressRuleID: "lab-egress"}); err != nil {
		t.Fatal(err)
	}
	if d, ok := s.DefaultSecurityGroup(""); !ok || d.ID == def.ID || d.ProjectID != "" || len(s.SecurityGroups()) != 4 {
		t.Fatalf("groups: %+v", s.SecurityGroups())
	}
}

func TestDefaultSecurityGroup(t *testing.T) {
	s := New()
	g, created, err := s.EnsureDefaultSecurityGroup(5, "p1")
	if err != nil || !created {
		t.Fatal(created, err)
	}
	egress, ingress := defaultRuleIDs("p1")
	if g.Name != "default" || g.Description != "Default security group" || g.ProjectID != "p1" || len(g.Rules) != 2 ||
		g.Rules[0].ID != egress || g.Rules[0].Direction != DirectionEgress || g.Rules[0].RemoteGroupID != "" ||
		g.Rules[1].ID != ingress || g.Rules[1].Direction != DirectionIngress || g.Rules[1].RemoteGroupID != g.ID || g.Rules[1].Protocol != "" {
		t.Fatalf("default group: %+v", g)
	}
	// The ids are the project's, whoever derives them.
	if g.ID != DefaultSecurityGroupID("p1") || g.ID == DefaultSecurityGroupID("p2") || len(g.ID) != 36 || g.ID[14] != '5' {
		t.Fatalf("id %s", g.ID)
	}
	again, created, err := s.EnsureDefaultSecurityGroup(6, "p1")
	if err != nil || created || again.RevisionNumber != 5 {
		t.Fatalf("a second ensure: %+v %v %v", again, created, err)
	}
	if none, created, err := s.EnsureDefaultSecurityGroup(7, ""); err != nil || !created || none.ID == g.ID || none.ProjectID != "" {
		t.Fatalf("the default group of no project: %+v %v %v", none, created, err)
	}
	// Asked for by a Default spec, through the group create.
	out, err := s.CreateSecurityGroups(8, []SecurityGroupSpec{{Default: true, ProjectID: str("p1")}, {Default: true, TenantID: str("p2")}})
	if err != nil || out[0].ID != g.ID || out[1].ID != DefaultSecurityGroupID("p2") || out[1].RevisionNumber != 8 {
		t.Fatalf("default specs: %+v %v", out, err)
	}
	// Its name stays; an admin may delete it once no port holds it.
	if _, err := s.UpdateSecurityGroup(9, SecurityGroupSpec{ID: g.ID, Name: str("mine")}); errType(err) != "SecurityGroupCannotUpdateDefault" {
		t.Fatalf("renaming the default group: %v", err)
	}
	if u, err := s.UpdateSecurityGroup(9, SecurityGroupSpec{ID: g.ID, Description: str("ours")}); err != nil || u.Description != "ours" || u.RevisionNumber != 9 {
		t.Fatalf("describing the default group: %+v %v", u, err)
	}
	if _, err := s.DeleteSecurityGroup(10, g.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.SecurityGroupRule(ingress); ok {
		t.Fatal("the deleted default group's rules remain")
	}
	if g2, created, err := s.EnsureDefaultSecurityGroup(11, "p1"); err != nil || !created || g2.ID != g.ID || g2.Key == g.Key {
		t.Fatalf("a default group made again: %+v %v %v", g2, created, err)
	}
}

func TestSecurityGroupUpdateAndDelete(t *testing.T) {
	s := sgStore(t)
	if _, err := s.CreateSecurityGroup(11, SecurityGroupSpec{ID: "db", EgressRuleID: "db-egress", Name: str("db"), ProjectID: str("p1")}); err != nil {
		t.Fatal(err)
	}
	// db admits web's members; web's own rules name db.
	if _, err := s.CreateSecurityGroupRules(12, []SecurityGroupRuleSpec{{ID: "db-from-web", SecurityGroupID: "db", Direction: "ingress", Protocol: "tcp",
		PortRangeMin: intp(5432), PortRangeMax: intp(5432), RemoteGroupID: "web"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSecurityGroupRules(13, []SecurityGroupRuleSpec{{ID: "web-to-db", SecurityGroupID: "web", Direction: "egress", RemoteGroupID: "db"},
		{ID: "web-from-web", SecurityGroupID: "web", Direction: "ingress", RemoteGroupID: "web"}}); err != nil {
		t.Fatal(err)
	}
	u, err := s.UpdateSecurityGroup(14, SecurityGroupSpec{ID: "web", Name: str("www"), Description: str("front"), Tags: []string{"a"}})
	if err != nil || u.Name != "www" || u.Description != "front" || fmt.Sprint(u.Tags) != "[a]" || u.RevisionNumber != 14 || len(u.Rules) != 3 {
		t.Fatalf("update: %+v %v", u, err)
	}
	if _, err := s.CreatePorts(15, []PortSpec{{ID: "vm", NetworkID: str("n"), ProjectID: str("p1"), SecurityGroups: []string{"web"}}}); err != nil {
		t.Fatal(err)
	}
	before := snapshotBytes(t, s)
	for _, tc := range []struct {
		name string
		do   func() error
		typ  string
	}{
		{"rename to default", func() error {
			_, err := s.UpdateSecurityGroup(16, SecurityGroupSpec{ID: "db", Name: str("DEFAULT")})
			return err
		}, "SecurityGroupDefaultAlreadyExists"},
		{"stateless while a port holds it", func() error {
			_, err := s.UpdateSecurityGroup(16, SecurityGroupSpec{ID: "web", Stateful: boolp(false)})
			return err
		}, "SecurityGroupInUse"},
		{"another project", func() error {
			_, err := s.UpdateSecurityGroup(16, SecurityGroupSpec{ID: "db", ProjectID: str("p2")})
			return err
		}, "InvalidInput"},
		{"update a missing group", func() error {
			_, err := s.UpdateSecurityGroup(16, SecurityGroupSpec{ID: "nope", Name: str("x")})
			return err
		}, "SecurityGroupNotFound"},
		{"delete a group a port holds", func() error {
			_, err := s.DeleteSecurityGroup(16, "web")
			return err
		}, "SecurityGroupInUse"},
		{"delete a missing group", func() error {
			_, err := s.DeleteSecurityGroup(16, "nope")
			return err
		}, "SecurityGroupNotFound"},
		{"delete a missing rule", func() error {
			_, err := s.DeleteSecurityGroupRule(16, "nope")
			return err
		}, "SecurityGroupRuleNotFound"},
	} {
		if err := tc.do(); errType(err) != tc.typ {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.typ)
		}
	}
	if after := snapshotBytes(t, s); !bytes.Equal(before, after) {
		t.Fatalf("a rejected change changed the store:\n%s\n%s", before, after)
	}
	if u, err := s.UpdateSecurityGroup(16, SecurityGroupSpec{ID: "db", Stateful: boolp(false)}); err != nil || u.Stateful {
		t.Fatalf("db made stateless while no port holds it: %+v %v", u, err)
	}
	// Deleting db deletes web's rule that names it, and says so.
	changed, err := s.DeleteSecurityGroup(17, "db")
	if err != nil || fmt.Sprint(changed) != "[web]" {
		t.Fatalf("delete db: %v %v", changed, err)
	}
	web, _ := s.SecurityGroup("web")
	if len(web.Rules) != 2 || web.RevisionNumber != 17 || slices.ContainsFunc(web.Rules, func(r SecurityGroupRule) bool { return r.RemoteGroupID == "db" }) {
		t.Fatalf("web after db went: %+v", web)
	}
	for _, id := range []string{"db-from-web", "db-egress", "web-to-db"} {
		if _, ok := s.SecurityGroupRule(id); ok {
			t.Errorf("rule %s outlived db", id)
		}
	}
	r, err := s.DeleteSecurityGroupRule(18, "web-from-web")
	if web, _ = s.SecurityGroup("web"); err != nil || r.SecurityGroupID != "web" || len(web.Rules) != 1 || web.RevisionNumber != 18 {
		t.Fatalf("rule delete: %+v %v %+v", r, err, web)
	}
	if got := len(s.SecurityGroupRules()); got != 3 { // web's egress, the default group's two
		t.Fatalf("%d rules left", got)
	}
}

func TestSecurityGroupRules(t *testing.T) {
	s := sgStore(t)
	if _, err := s.CreateSecurityGroup(11, SecurityGroupSpec{ID: "other", EgressRuleID: "other-egress", ProjectID: str("p2")}); err != nil {
		t.Fatal(err)
	}
	rule := func(f func(*SecurityGroupRuleSpec)) SecurityGroupRuleSpec {
		sp := SecurityGroupRuleSpec{ID: "r", SecurityGroupID: "web", Direction: "ingress"}
		f(&sp)
		return sp
	}
	type want struct {
		proto, prefix string
		min, max      string
	}
	show := func(v *int) string {
		if v == nil {
			return "nil"
		}
		return fmt.Sprint(*v)
	}
	for _, tc := range []struct {
		name string
		sp   SecurityGroupRuleSpec
		want want
	}{
		{"ssh from a prefix", rule(func(r *SecurityGroupRuleSpec) {
			r.Protocol, r.PortRangeMin, r.PortRangeMax, r.RemoteIPPrefix = "tcp", intp(22), intp(22), "10.0.0.0/8"
		}), want{"tcp", "10.0.0.0/8", "22", "22"}},
		{"a name in capitals", rule(func(r *SecurityGroupRuleSpec) { r.Protocol = "UDP" }), want{"udp", "", "nil", "nil"}},
		{"a number", rule(func(r *SecurityGroupRuleSpec) { r.Protocol = "132" }), want{"132", "", "nil", "nil"}},
		{"a number with a leading zero", rule(func(r *SecurityGroupRuleSpec) { r.Protocol = "047" }), want{"47", "", "nil", "nil"}},
		{"any", rule(func(r *SecurityGroupRuleSpec) { r.Protocol = "any" }), want{"", "", "nil", "nil"}},
		{"every port is no range", rule(func(r *SecurityGroupRuleSpec) {
			r.Protocol, r.PortRangeMin, r.PortRangeMax = "tcp", intp(1), intp(65535)
		}), want{"tcp", "", "nil", "nil"}},
		{"a host address masked", rule(func(r *SecurityGroupRuleSpec) { r.RemoteIPPrefix = "192.0.2.7/24" }), want{"", "192.0.2.0/24", "nil", "nil"}},
		{"a bare address", rule(func(r *SecurityGroupRuleSpec) { r.RemoteIPPrefix = "192.0.2.7" }), want{"", "192.0.2.7/32", "nil", "nil"}},
		{"ICMP echo", rule(func(r *SecurityGroupRuleSpec) { r.Protocol, r.PortRangeMin, r.PortRangeMax = "icmp", intp(8), intp(0) }), want{"icmp", "", "8", "0"}},
		{"ICMP type alone", rule(func(r *SecurityGroupRuleSpec) { r.Protocol, r.PortRangeMin = "icmp", intp(3) }), want{"icmp", "", "3", "nil"}},
		{"dccp ports", rule(func(r *SecurityGroupRuleSpec) { r.Protocol, r.PortRangeMin, r.PortRangeMax = "dccp", intp(5), intp(6) }), want{"dccp", "", "5", "6"}},
		{"egress to a group", rule(func(r *SecurityGroupRuleSpec) { r.Direction, r.RemoteGroupID = "egress", "web" }), want{"", "", "nil", "nil"}},
		{"ethertype spelled otherwise", rule(func(r *SecurityGroupRuleSpec) { r.Ethertype, r.Protocol = "ipv4", "gre" }), want{"gre", "", "nil", "nil"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sgStore(t)
			r, err := s.CreateSecurityGroupRule(20, tc.sp)
			if err != nil {
				t.Fatal(err)
			}
			got := want{r.Protocol, r.RemoteIPPrefix, show(r.PortRangeMin), show(r.PortRangeMax)}
			if got != tc.want || r.Ethertype != "IPv4" || r.Key != 4 || r.RevisionNumber != 20 || r.ProjectID != "p1" {
				t.Fatalf("got %+v (%+v), want %+v", got, r, tc.want)
			}
			if g, _ := s.SecurityGroup("web"); g.RevisionNumber != 20 || len(g.Rules) != 2 || g.Rules[1].ID != "r" {
				t.Fatalf("the group after a rule: %+v", g)
			}
		})
	}

	// Each refusal is Neutron's, and changes nothing.
	before := snapshotBytes(t, s)
	for _, tc := range []struct {
		name string
		sp   SecurityGroupRuleSpec
		kind Kind
		typ  string
	}{
		{"no direction", rule(func(r *SecurityGroupRuleSpec) { r.Direction = "" }), KindInvalid, "InvalidInput"},
		{"a direction that is not one", rule(func(r *SecurityGroupRuleSpec) { r.Direction = "inbound" }), KindInvalid, "InvalidInput"},
		{"IPv6", rule(func(r *SecurityGroupRuleSpec) { r.Ethertype = "IPv6" }), KindInvalid, "SecurityGroupRuleInvalidEtherType"},
		{"an unknown ethertype", rule(func(r *SecurityGroupRuleSpec) { r.Ethertype = "ARP" }), KindInvalid, "SecurityGroupRuleInvalidEtherType"},
		{"an unknown protocol", rule(func(r *SecurityGroupRuleSpec) { r.Protocol = "http" }), KindInvalid, "SecurityGroupRuleInvalidProtocol"},
		{"protocol 256", rule(func(r *SecurityGroupRuleSpec) { r.Protocol = "256" }), KindInvalid, "SecurityGroupRuleInvalidProtocol"},
		{"protocol -1", rule(func(r *SecurityGroupRuleSpec) { r.Protocol = "-1" }), KindInvalid, "SecurityGroupRuleInvalidProtocol"},
		{"ICMPv6 over IPv4", rule(func(r *SecurityGroupRuleSpec) { r.Protocol = "ipv6-icmp" }), KindInvalid, "SecurityGroupEthertypeConflictWithProtocol"},
		{"58 over IPv4", rule(func(r *SecurityGroupRuleSpec) { r.Protocol = "58" }), KindInvalid, "SecurityGroupEthertypeConflictWithProtocol"},
		{"ports without a protocol", rule(func(r *SecurityGroupRuleSpec) { r.PortRangeMin, r.PortRangeMax = intp(22), intp(22) }), KindInvalid, "SecurityGroupProtocolRequiredWithPorts"},
		{"ports of GRE", rule(func(r *SecurityGroupRuleSpec) { r.Protocol, r.PortRangeMin, r.PortRangeMax = "gre", intp(1), intp(2) }), KindInvalid, "SecurityGroupInvalidProtocolForPort"},
		{"min above max", rule(func(r *SecurityGroupRuleSpec) { r.Protocol, r.PortRangeMin, r.PortRangeMax = "tcp", intp(80), intp(79) }), KindInvalid, "SecurityGroupInvalidPortRange"},
		{"min alone", rule(func(r *SecurityGroupRuleSpec) { r.Protocol, r.PortRangeMin = "tcp", intp(80) }), KindInvalid, "SecurityGroupInvalidPortRange"},
		{"max alone", rule(func(r *SecurityGroupRuleSpec) { r.Protocol, r.PortRangeMax = "udp", intp(80) }), KindInvalid, "SecurityGroupInvalidPortRange"},
		{"port 0", rule(func(r *SecurityGroupRuleSpec) { r.Protocol, r.PortRangeMin, r.PortRangeMax = "tcp", intp(0), intp(10) }), KindInvalid, "SecurityGroupInvalidPortValue"},
		{"port 65536", rule(func(r *SecurityGroupRuleSpec) {
			r.Protocol, r.PortRangeMin, r.PortRangeMax = "tcp", intp(1), intp(65536)
		}), KindInvalid, "SecurityGroupInvalidPortValue"},
		{"ICMP type 256", rule(func(r *SecurityGroupRuleSpec) { r.Protocol, r.PortRangeMin = "icmp", intp(256) }), KindInvalid, "SecurityGroupInvalidIcmpValue"},
		{"ICMP code without a type", rule(func(r *SecurityGroupRuleSpec) { r.Protocol, r.PortRangeMax = "icmp", intp(0) }), KindInvalid, "SecurityGroupMissingIcmpType"},
		{"not a prefix", rule(func(r *SecurityGroupRuleSpec) { r.RemoteIPPrefix = "ten/8" }), KindInvalid, "InvalidCIDR"},
		{"an IPv6 prefix", rule(func(r *SecurityGroupRuleSpec) { r.RemoteIPPrefix = "fd00::/64" }), KindInvalid, "SecurityGroupRuleParameterConflict"},
		{"a prefix and a group", rule(func(r *SecurityGroupRuleSpec) { r.RemoteIPPrefix, r.RemoteGroupID = "10.0.0.0/8", "web" }), KindInvalid, "SecurityGroupMultipleRemoteEntites"},
		{"a missing remote group", rule(func(r *SecurityGroupRuleSpec) { r.RemoteGroupID = "nope" }), KindNotFound, "SecurityGroupNotFound"},
		{"another project's remote group", rule(func(r *SecurityGroupRuleSpec) { r.RemoteGroupID = "other" }), KindNotFound, "SecurityGroupNotFound"},
		{"a missing group", rule(func(r *SecurityGroupRuleSpec) { r.SecurityGroupID = "nope" }), KindNotFound, "SecurityGroupNotFound"},
		{"a rule id in use", rule(func(r *SecurityGroupRuleSpec) { r.ID = "web-egress" }), KindConflict, "SecurityGroupRuleExists"},
		{"the egress rule again", rule(func(r *SecurityGroupRuleSpec) { r.Direction = "egress" }), KindConflict, "SecurityGroupRuleExists"},
		{"the egress rule again, to 0.0.0.0/0", rule(func(r *SecurityGroupRuleSpec) { r.Direction, r.RemoteIPPrefix = "egress", "0.0.0.0/0" }), KindConflict, "SecurityGroupRuleExists"},
		{"the egress rule again, protocol any", rule(func(r *SecurityGroupRuleSpec) { r.Direction, r.Protocol = "egress", "any" }), KindConflict, "SecurityGroupRuleExists"},
	} {
		_, err := s.CreateSecurityGroupRule(30, tc.sp)
		if kindOf(err) != tc.kind || errType(err) != tc.typ {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.typ)
		}
	}
	// Bulk: all or none, one group, one project, no rule twice.
	ssh := rule(func(r *SecurityGroupRuleSpec) {
		r.ID, r.Protocol, r.PortRangeMin, r.PortRangeMax = "ssh", "tcp", intp(22), intp(22)
	})
	ssh6 := rule(func(r *SecurityGroupRuleSpec) {
		r.ID, r.Protocol, r.PortRangeMin, r.PortRangeMax = "ssh6", "6", intp(22), intp(22)
	})
	bad := rule(func(r *SecurityGroupRuleSpec) { r.ID, r.Protocol = "bad", "http" })
	for _, tc := range []struct {
		name  string
		specs []SecurityGroupRuleSpec
		typ   string
	}{
		{"the same rule twice, by name and by number", []SecurityGroupRuleSpec{ssh, ssh6}, "DuplicateSecurityGroupRuleInPost"},
		{"the second bad", []SecurityGroupRuleSpec{ssh, bad}, "SecurityGroupRuleInvalidProtocol"},
		{"two groups", []SecurityGroupRuleSpec{ssh, rule(func(r *SecurityGroupRuleSpec) { r.ID, r.SecurityGroupID = "o", "other" })}, "SecurityGroupNotSingleGroupRules"},
		{"two projects", []SecurityGroupRuleSpec{ssh, rule(func(r *SecurityGroupRuleSpec) { r.ID, r.ProjectID = "o", "p7" })}, "SecurityGroupRulesNotSingleProject"},
		{"one id twice", []SecurityGroupRuleSpec{ssh, rule(func(r *SecurityGroupRuleSpec) { r.ID = "ssh" })}, "SecurityGroupRuleExists"},
	} {
		if _, err := s.CreateSecurityGroupRules(30, tc.specs); errType(err) != tc.typ {
			t.Errorf("bulk, %s: %v, want %s", tc.name, err, tc.typ)
		}
	}
	if after := snapshotBytes(t, s); !bytes.Equal(before, after) {
		t.Fatalf("a rejected rule changed the store:\n%s\n%s", before, after)
	}
	out, err := s.CreateSecurityGroupRules(31, []SecurityGroupRuleSpec{ssh, rule(func(r *SecurityGroupRuleSpec) { r.ID, r.Protocol = "ping", "icmp" })})
	if err != nil || len(out) != 2 || out[0].Key != 7 || out[1].Key != 8 { // after p2's default group and other
		t.Fatalf("bulk: %+v %v", out, err)
	}
	if _, err := s.CreateSecurityGroupRule(32, ssh6); errType(err) != "SecurityGroupRuleExists" {
		t.Fatalf("tcp and 6 are one protocol: %v", err)
	}
}

// TestPortSecurityGroups: a port's groups as Neutron decides them.
func TestPortSecurityGroups(t *testing.T) {
	s := sgStore(t)
	def := DefaultSecurityGroupID("p1")
	if _, err := s.CreateSecurityGroup(11, SecurityGroupSpec{ID: "theirs", EgressRuleID: "theirs-egress", ProjectID: str("p2")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSecurityGroup(11, SecurityGroupSpec{ID: "loose", EgressRuleID: "loose-egress", ProjectID: str("p1"), Stateful: boolp(false)}); err != nil {
		t.Fatal(err)
	}
	create := func(sp PortSpec) (Port, error) {
		sp.NetworkID = str("n")
		ps, err := s.CreatePorts(20, []PortSpec{sp})
		if err != nil {
			return Port{}, err
		}
		return ps[0], nil
	}
	for _, tc := range []struct {
		name string
		sp   PortSpec
		want []string
	}{
		{"none named: the project's default", PortSpec{ID: "a", ProjectID: str("p1")}, []string{def}},
		{"named", PortSpec{ID: "b", ProjectID: str("p1"), SecurityGroups: []string{"web", def, "web"}}, []string{"web", def}},
		{"none, explicitly", PortSpec{ID: "c", ProjectID: str("p1"), SecurityGroups: []string{}}, []string{}},
		{"port security off", PortSpec{ID: "d", ProjectID: str("p1"), PortSecurityEnabled: boolp(false)}, []string{}},
		{"port security off, no groups", PortSpec{ID: "d2", ProjectID: str("p1"), PortSecurityEnabled: boolp(false), SecurityGroups: []string{}}, []string{}},
		{"no project: the default of no project", PortSpec{ID: "e"}, []string{DefaultSecurityGroupID("")}},
		{"no project: any group", PortSpec{ID: "f", SecurityGroups: []string{"theirs"}}, []string{"theirs"}},
		{"the cloud's own port", PortSpec{ID: "g", ProjectID: str("p1"), DeviceOwner: str("network:dhcp"), SecurityGroups: []string{"web"}}, []string{}},
	} {
		p, err := create(tc.sp)
		if err != nil || !slices.Equal(p.SecurityGroups, tc.want) || p.SecurityGroups == nil {
			t.Errorf("%s: %v %v, want %v", tc.name, p.SecurityGroups, err, tc.want)
		}
	}
	before := snapshotBytes(t, s)
	for _, tc := range []struct {
		name string
		sp   PortSpec
		typ  string
	}{
		{"a missing group", PortSpec{ID: "x", ProjectID: str("p1"), SecurityGroups: []string{"nope"}}, "SecurityGroupNotFound"},
		{"another project's group", PortSpec{ID: "x", ProjectID: str("p1"), SecurityGroups: []string{"theirs"}}, "SecurityGroupNotFound"},
		{"groups with port security off", PortSpec{ID: "x", ProjectID: str("p1"), PortSecurityEnabled: boolp(false), SecurityGroups: []string{"web"}}, "PortSecurityAndIPRequiredForSecurityGroups"},
		{"stateful and stateless", PortSpec{ID: "x", ProjectID: str("p1"), SecurityGroups: []string{"web", "loose"}}, "SecurityGroupConflict"},
	} {
		if _, err := create(tc.sp); errType(err) != tc.typ {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.typ)
		}
	}
	// A bulk create that fails undoes the default group its first port made.
	_, err := s.CreatePorts(21, []PortSpec{{ID: "y1", NetworkID: str("n"), ProjectID: str("p3")}, {ID: "y2", NetworkID: str("n"), ProjectID: str("p3"), SecurityGroups: []string{"nope"}}})
	if errType(err) != "SecurityGroupNotFound" {
		t.Fatalf("bulk: %v", err)
	}
	if after := snapshotBytes(t, s); !bytes.Equal(before, after) {
		t.Fatalf("a rejected port changed the store:\n%s\n%s", before, after)
	}

	update := func(sp PortSpec) (Port, error) { return s.UpdatePort(22, sp) }
	// Port security off while the port holds groups: Neutron's 409 unless
	// the same update clears them.
	if _, err := update(PortSpec{ID: "a", PortSecurityEnabled: boolp(false)}); errType(err) != "PortSecurityPortHasSecurityGroup" {
		t.Fatalf("port security off with a group held: %v", err)
	}
	if _, err := update(PortSpec{ID: "a", PortSecurityEnabled: boolp(false), SecurityGroups: []string{"web"}}); errType(err) != "PortSecurityAndIPRequiredForSecurityGroups" {
		t.Fatalf("port security off with a group given: %v", err)
	}
	if _, err := update(PortSpec{ID: "d", SecurityGroups: []string{"web"}}); errType(err) != "PortSecurityAndIPRequiredForSecurityGroups" {
		t.Fatalf("a group on a port without port security: %v", err)
	}
	if _, err := update(PortSpec{ID: "a", SecurityGroups: []string{"theirs"}}); errType(err) != "SecurityGroupNotFound" {
		t.Fatalf("another project's group: %v", err)
	}
	if p, err := update(PortSpec{ID: "a", PortSecurityEnabled: boolp(false), SecurityGroups: []string{}}); err != nil || len(p.SecurityGroups) != 0 || p.PortSecurityEnabled {
		t.Fatalf("port security off, groups cleared: %+v %v", p, err)
	}
	// Port security back on: no group until one is named.
	if p, err := update(PortSpec{ID: "a", PortSecurityEnabled: boolp(true)}); err != nil || len(p.SecurityGroups) != 0 {
		t.Fatalf("port security on again: %+v %v", p, err)
	}
	if p, err := update(PortSpec{ID: "a", SecurityGroups: []string{"web"}}); err != nil || fmt.Sprint(p.SecurityGroups) != "[web]" {
		t.Fatalf("a group named: %+v %v", p, err)
	}
	if p, err := update(PortSpec{ID: "a", Name: str("renamed")}); err != nil || fmt.Sprint(p.SecurityGroups) != "[web]" {
		t.Fatalf("an update that names no groups keeps them: %+v %v", p, err)
	}
	if got := s.SecurityGroupPorts("web"); fmt.Sprint(got) != "[a b]" {
		t.Fatalf("web's ports: %v", got)
	}
	// A project's default group outlives its ports.
	for _, id := range []string{"a", "b", "c", "d", "d2"} {
		if err := s.DeletePort(23, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := s.DefaultSecurityGroup("p1"); !ok {
		t.Fatal("the default group went with the project's last port")
	}
}

// TestRouterPortsHaveNoGroups: the ports the topology makes (router
// interfaces, gateways, floating IPs' holders) are not filtered, and
// make no default group.
func TestRouterPortsHaveNoGroups(t *testing.T) {
	s := New()
	mustNet(t, s, "n", NetworkSpec{})
	mustSubnet(t, s, "sn", "n", "10.0.0.0/24")
	if _, err := s.CreateRouters(3, []RouterSpec{{ID: "r", ProjectID: str("p1")}}); err != nil {
		t.Fatal(err)
	}
	p, err := s.AddRouterInterface(4, "r", "sn", "ri")
	if err != nil || len(p.SecurityGroups) != 0 {
		t.Fatalf("router interface: %+v %v", p, err)
	}
	if len(s.SecurityGroups()) != 0 {
		t.Fatalf("groups: %+v", s.SecurityGroups())
	}
}

// TestSecurityGroupSnapshot: groups and rules survive a snapshot, and the
// restored store allocates the next keys as the original does.
func TestSecurityGroupSnapshot(t *testing.T) {
	s := sgStore(t)
	if _, err := s.CreateSecurityGroupRule(11, SecurityGroupRuleSpec{ID: "ssh", SecurityGroupID: "web", Direction: "ingress", Protocol: "tcp",
		PortRangeMin: intp(22), PortRangeMax: intp(22), RemoteIPPrefix: "10.0.0.0/8"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreatePorts(12, []PortSpec{{ID: "vm", NetworkID: str("n"), ProjectID: str("p1"), SecurityGroups: []string{"web"}}}); err != nil {
		t.Fatal(err)
	}
	snap := snapshotBytes(t, s)
	r, err := ReadSnapshot(bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	if again := snapshotBytes(t, r); !bytes.Equal(snap, again) {
		t.Fatalf("snapshot does not round-trip:\n%s\n%s", snap, again)
	}
	if g, _ := r.SecurityGroup("web"); len(g.Rules) != 2 || *g.Rules[1].PortRangeMin != 22 {
		t.Fatalf("restored web: %+v", g)
	}
	if _, ok := r.SecurityGroupRule("ssh"); !ok {
		t.Fatal("the restored store does not find a rule by id")
	}
	next := SecurityGroupSpec{ID: "db", EgressRuleID: "db-egress", ProjectID: str("p1")}
	a, _ := s.CreateSecurityGroup(13, next)
	b, _ := r.CreateSecurityGroup(13, next)
	if a.Key != b.Key || a.Rules[0].Key != b.Rules[0].Key || a.Key != 3 || a.Rules[0].Key != 5 {
		t.Fatalf("keys after a restore: %d/%d vs %d/%d", a.Key, a.Rules[0].Key, b.Key, b.Rules[0].Key)
	}
	if _, err := r.DeleteSecurityGroup(14, "web"); errType(err) != "SecurityGroupInUse" {
		t.Fatalf("the restored store forgot web's port: %v", err)
	}
}

// TestEachSecurityGroupInIDOrder: the view builder's iteration.
func TestEachSecurityGroupInIDOrder(t *testing.T) {
	s := sgStore(t)
	var ids []string
	s.EachSecurityGroup(func(g SecurityGroup) { ids = append(ids, g.ID) })
	want := []string{DefaultSecurityGroupID("p1"), "web"}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("EachSecurityGroup: %v, want %v", ids, want)
	}
}
