package topology

import (
	"bytes"
	"slices"
	"testing"
)

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

// TestPortsOfHostFollowsEveryChange: the index of ports by host_id that
// binding and PortsOfHost read agrees with the ports themselves after
// creates with a host, updates that move one, bindings that move and
// unplug, deletes, and a snapshot round trip.
func TestPortsOfHostFollowsEveryChange(t *testing.T) {
	s := New()
	i := uint64(1)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.CreateNetworks(i, []NetworkSpec{{ID: "n"}})
	must(err)
	for _, c := range []string{"hv1", "hv2"} {
		i++
		_, err := s.RegisterChassis(i, ChassisSpec{Name: c, EncapIP: "172.31.0.1", Encaps: []string{TypeVXLAN}})
		must(err)
	}
	check := func(s *Store, when string) {
		t.Helper()
		for _, c := range []string{"hv1", "hv2", "hv3"} {
			var want []string
			for _, p := range s.Ports() {
				if p.HostID == c {
					want = append(want, p.ID)
				}
			}
			var got []string
			for _, p := range s.PortsOfHost(c) {
				got = append(got, p.ID)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s: ports of %s %v, the ports say %v", when, c, got, want)
			}
		}
	}
	i++
	_, err = s.CreatePorts(i, []PortSpec{{ID: "a", NetworkID: str("n"), HostID: str("hv1")}, {ID: "b", NetworkID: str("n")}, {ID: "c", NetworkID: str("n"), HostID: str("hv3")}})
	must(err)
	check(s, "created")
	i++
	_, err = s.UpdatePort(i, PortSpec{ID: "a", HostID: str("hv2")})
	must(err)
	check(s, "a moved by an update")
	i++
	_, err = s.SetBindings(i, "hv1", []Binding{{PortID: "b", OFPort: 1}, {PortID: "c", OFPort: 2}})
	must(err)
	check(s, "b and c bound to hv1")
	i++
	_, err = s.SetBindings(i, "hv1", []Binding{{PortID: "c", OFPort: 2}})
	must(err)
	check(s, "b unplugged")
	i++
	_, err = s.UpdatePort(i, PortSpec{ID: "b", HostID: str("")})
	must(err)
	check(s, "b's host cleared")
	must(s.DeletePort(i, "c"))
	check(s, "c deleted")
	var buf bytes.Buffer
	must(s.WriteSnapshot(&buf))
	r, err := ReadSnapshot(&buf)
	must(err)
	check(r, "restored")
}

// TestDeleteChassis: a chassis taken out of service is forgotten; its
// ports stay, unplugged and DOWN, binding:host_id kept (binding_failed);
// one a member node runs is refused until the member goes; a chassis of
// the same name registered again gets a new key, and its report plugs the
// ports again.
func TestDeleteChassis(t *testing.T) {
	s := New()
	mustNet(t, s, "n", NetworkSpec{})
	mustSubnet(t, s, "s", "n", "10.0.0.0/24")
	if _, err := s.CreatePorts(3, []PortSpec{{ID: "a", NetworkID: str("n")}, {ID: "b", NetworkID: str("n")}}); err != nil {
		t.Fatal(err)
	}
	first, _ := s.RegisterChassis(4, ChassisSpec{Name: "hv1", EncapIP: "172.31.0.1"})
	if _, err := s.RegisterChassis(4, ChassisSpec{Name: "hv2", EncapIP: "172.31.0.2", NodeID: "n2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RegisterMember(4, Member{ID: "n2", RaftAddr: "127.0.0.1:1", APIAddr: "127.0.0.1:2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReportPorts(5, "hv1", []Binding{{PortID: "a", OFPort: 3, Active: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteChassis(6, "nope"); kindOf(err) != KindNotFound {
		t.Fatalf("unknown chassis: %v", err)
	}
	if _, err := s.DeleteChassis(6, "hv2"); kindOf(err) != KindConflict {
		t.Fatalf("a member's chassis: %v", err)
	}
	changed, err := s.DeleteChassis(7, "hv1")
	if err != nil || len(changed) != 1 || changed[0] != "a" {
		t.Fatalf("delete: %v %v", changed, err)
	}
	if _, ok := s.ChassisByName("hv1"); ok {
		t.Fatal("hv1 still registered")
	}
	a, _ := s.Port("a")
	if a.HostID != "hv1" || a.OFPort != 0 || a.Status != StatusDown || a.RevisionNumber != 7 || a.VIFType != VIFTypeBindingFailed || a.Located() {
		t.Fatalf("a after its chassis went: %+v", a)
	}
	if b, _ := s.Port("b"); b.RevisionNumber == 7 {
		t.Fatalf("b, never on hv1, changed: %+v", b)
	}
	if err := s.RemoveMember(8, "n2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteChassis(9, "hv2"); err != nil {
		t.Fatalf("hv2, its member gone: %v", err)
	}
	again, _ := s.RegisterChassis(10, ChassisSpec{Name: "hv1", EncapIP: "172.31.0.1"})
	if again.Key == first.Key || again.DVRMAC == first.DVRMAC {
		t.Fatalf("hv1 registered again has its old key and DVR MAC: %+v", again)
	}
	if _, err := s.ReportPorts(11, "hv1", []Binding{{PortID: "a", OFPort: 5, Active: true}}); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.Port("a"); !a.Located() || a.Status != StatusActive {
		t.Fatalf("a reported again: %+v", a)
	}
}
