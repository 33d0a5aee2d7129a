package topology

import "testing"

func TestBindingsFollowTheInterface(t *testing.T) {
	s := New()
	mustNet(t, s, "n", NetworkSpec{})
	mustSubnet(t, s, "s", "n", "10.0.0.0/24")
	if _, err := s.CreatePorts(3, []PortSpec{{ID: "a", NetworkID: str("n")}, {ID: "b", NetworkID: str("n")}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"hv1", "hv2"} {
		if _, err := s.RegisterChassis(4, ChassisSpec{Name: c, EncapIP: "172.31.0.1"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SetBindings(5, "hv9", nil); kindOf(err) != KindNotFound {
		t.Fatalf("unknown chassis: %v", err)
	}
	changed, err := s.SetBindings(5, "hv1", []Binding{{PortID: "a", OFPort: 3}, {PortID: "b", OFPort: 4}, {PortID: "not-yet", OFPort: 5}})
	if err != nil || len(changed) != 2 {
		t.Fatalf("bind: %v %v", changed, err)
	}
	a, _ := s.Port("a")
	if a.HostID != "hv1" || a.OFPort != 3 || a.Status != StatusDown {
		t.Fatalf("a after bind: %+v", a)
	}
	if got := s.SetPortsActive(6, "hv1", []string{"a", "b"}); len(got) != 2 {
		t.Fatalf("active: %v", got)
	}
	// a migrates: hv2 reports it first, then hv1's interface goes.
	if _, err := s.SetBindings(7, "hv2", []Binding{{PortID: "a", OFPort: 9}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetBindings(8, "hv1", []Binding{{PortID: "b", OFPort: 4}}); err != nil {
		t.Fatal(err)
	}
	a, _ = s.Port("a")
	if a.HostID != "hv2" || a.OFPort != 9 || a.Status != StatusDown {
		t.Fatalf("a after moving to hv2: %+v (hv1's late report must not unbind it)", a)
	}
	// An ACTIVE report from the old chassis no longer applies.
	if got := s.SetPortsActive(9, "hv1", []string{"a"}); len(got) != 0 {
		t.Fatalf("hv1 activated a port now on hv2: %v", got)
	}
	// b's interface goes: unbound, DOWN.
	if _, err := s.SetBindings(10, "hv1", nil); err != nil {
		t.Fatal(err)
	}
	b, _ := s.Port("b")
	if b.OFPort != 0 || b.Status != StatusDown {
		t.Fatalf("b after its interface went: %+v", b)
	}
	if _, err := s.SetBindings(11, "hv1", []Binding{{PortID: "b", OFPort: 0}}); kindOf(err) != KindInvalid {
		t.Fatalf("ofport 0: %v", err)
	}
}

// TestReportPorts: one report binds a chassis' ports and says which are
// ACTIVE, in one change; a port whose bridge lost its flows goes DOWN; a
// port listed by another chassis moves there (the chassis lists a port
// only once no other chassis holds it); an unlisted port bound there is
// unbound.
func TestReportPorts(t *testing.T) {
	s := New()
	mustNet(t, s, "n", NetworkSpec{})
	mustSubnet(t, s, "s", "n", "10.0.0.0/24")
	if _, err := s.CreatePorts(3, []PortSpec{{ID: "a", NetworkID: str("n")}, {ID: "b", NetworkID: str("n")}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"hv1", "hv2"} {
		if _, err := s.RegisterChassis(4, ChassisSpec{Name: c, EncapIP: "172.31.0.1"}); err != nil {
			t.Fatal(err)
		}
	}
	status := func(id string) string {
		p, _ := s.Port(id)
		return p.HostID + "/" + p.Status
	}
	changed, err := s.ReportPorts(5, "hv1", []Binding{{PortID: "a", OFPort: 3, Active: true}, {PortID: "b", OFPort: 4}})
	if err != nil || len(changed) != 2 || status("a") != "hv1/ACTIVE" || status("b") != "hv1/DOWN" {
		t.Fatalf("first report: %v %v, a %s b %s", changed, err, status("a"), status("b"))
	}
	if changed, _ := s.ReportPorts(6, "hv1", []Binding{{PortID: "a", OFPort: 3, Active: true}, {PortID: "b", OFPort: 4}}); len(changed) != 0 {
		t.Fatalf("the same report changed %v", changed)
	}
	if changed, _ := s.ReportPorts(7, "hv1", []Binding{{PortID: "a", OFPort: 3}, {PortID: "b", OFPort: 4, Active: true}}); len(changed) != 2 ||
		status("a") != "hv1/DOWN" || status("b") != "hv1/ACTIVE" {
		t.Fatalf("statuses flipped: %v, a %s b %s", changed, status("a"), status("b"))
	}
	if _, err := s.ReportPorts(8, "hv2", []Binding{{PortID: "a", OFPort: 9, Active: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReportPorts(9, "hv1", []Binding{{PortID: "a", OFPort: 3, Active: true}}); err != nil {
		t.Fatal(err)
	}
	if got := status("a"); got != "hv1/ACTIVE" {
		t.Fatalf("a, listed by hv1 again, is %s", got)
	}
	if got := status("b"); got != "hv1/DOWN" {
		t.Fatalf("b, unlisted by hv1, is %s", got)
	}
	if p, _ := s.Port("b"); p.OFPort != 0 {
		t.Fatalf("b still plugged: %+v", p)
	}
	if _, err := s.ReportPorts(10, "hv1", []Binding{{PortID: "b", OFPort: 0}}); kindOf(err) != KindInvalid {
		t.Fatalf("ofport 0: %v", err)
	}
}
