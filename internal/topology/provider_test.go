package topology

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// assertStoreError checks that err is the store's *Error of the given kind
// and Neutron type.
func assertStoreError(t *testing.T, err error, kind Kind, typ string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want %s (kind %d)", err, typ, kind)
	}
	if e.Kind != kind || e.Type != typ {
		t.Fatalf("got %s (kind %d): %s; want %s (kind %d)", e.Type, e.Kind, e.Message, typ, kind)
	}
}

// assertUnchanged fails when the store's snapshot differs from before,
// showing the records that differ.
func assertUnchanged(t *testing.T, s *Store, before []byte) {
	t.Helper()
	after := snapshotBytes(t, s)
	if bytes.Equal(before, after) {
		return
	}
	was, is := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(string(before), "\n") {
		was[l] = true
	}
	for _, l := range strings.Split(string(after), "\n") {
		is[l] = true
	}
	var diff strings.Builder
	for _, l := range strings.Split(string(before), "\n") {
		if !is[l] {
			fmt.Fprintf(&diff, "- %s\n", l)
		}
	}
	for _, l := range strings.Split(string(after), "\n") {
		if !was[l] {
			fmt.Fprintf(&diff, "+ %s\n", l)
		}
	}
	t.Fatalf("a rejected request changed the store:\n%s", diff.String())
}

// providerStore holds vlan 100 and the flat network of physical network
// physnet1, and vxlan network "ov".
func providerStore(t *testing.T) *Store {
	t.Helper()
	s := New()
	mustNet(t, s, "v100", NetworkSpec{NetworkType: str(TypeVLAN), PhysicalNetwork: str("physnet1"), SegmentationID: u32(100)})
	mustNet(t, s, "flat1", NetworkSpec{NetworkType: str(TypeFlat), PhysicalNetwork: str("physnet1")})
	mustNet(t, s, "ov", NetworkSpec{})
	return s
}

// TestProviderNetworks: what a flat or vlan network needs, what it gets,
// and which collisions are refused; a refused network changes nothing.
func TestProviderNetworks(t *testing.T) {
	vlan, flat, vxlan, gre := str(TypeVLAN), str(TypeFlat), str(TypeVXLAN), str(TypeGRE)
	cases := []struct {
		name string
		spec NetworkSpec
		// on success
		seg uint32
		mtu int
		// on failure
		kind Kind
		typ  string
	}{
		{name: "vlan", spec: NetworkSpec{NetworkType: vlan, PhysicalNetwork: str("physnet1"), SegmentationID: u32(101)}, seg: 101, mtu: 1500},
		{name: "vlan 1, the overlay's VNI", spec: NetworkSpec{NetworkType: vlan, PhysicalNetwork: str("physnet1"), SegmentationID: u32(1)}, seg: 1, mtu: 1500},
		{name: "vlan 4094", spec: NetworkSpec{NetworkType: vlan, PhysicalNetwork: str("physnet1"), SegmentationID: u32(MaxVLAN)}, seg: 4094, mtu: 1500},
		{name: "same vlan on another physical network", spec: NetworkSpec{NetworkType: vlan, PhysicalNetwork: str("physnet2"), SegmentationID: u32(100)}, seg: 100, mtu: 1500},
		{name: "vlan with its own mtu", spec: NetworkSpec{NetworkType: vlan, PhysicalNetwork: str("physnet1"), SegmentationID: u32(7), MTU: intp(9000)}, seg: 7, mtu: 9000},
		{name: "flat on another physical network", spec: NetworkSpec{NetworkType: flat, PhysicalNetwork: str("physnet2")}, seg: 0, mtu: 1500},
		{name: "flat with segmentation id 0", spec: NetworkSpec{NetworkType: flat, PhysicalNetwork: str("physnet2"), SegmentationID: u32(0)}, seg: 0, mtu: 1500},

		{name: "vlan in use", spec: NetworkSpec{NetworkType: vlan, PhysicalNetwork: str("physnet1"), SegmentationID: u32(100)}, kind: KindConflict, typ: "VlanIdInUse"},
		{name: "second flat network", spec: NetworkSpec{NetworkType: flat, PhysicalNetwork: str("physnet1")}, kind: KindConflict, typ: "FlatNetworkInUse"},
		{name: "vlan without id", spec: NetworkSpec{NetworkType: vlan, PhysicalNetwork: str("physnet1")}, kind: KindInvalid, typ: "InvalidInput"},
		{name: "vlan 0", spec: NetworkSpec{NetworkType: vlan, PhysicalNetwork: str("physnet1"), SegmentationID: u32(0)}, kind: KindInvalid, typ: "InvalidInput"},
		{name: "vlan 4095", spec: NetworkSpec{NetworkType: vlan, PhysicalNetwork: str("physnet1"), SegmentationID: u32(MaxVLAN + 1)}, kind: KindInvalid, typ: "InvalidInput"},
		{name: "vlan without physical network", spec: NetworkSpec{NetworkType: vlan, SegmentationID: u32(5)}, kind: KindInvalid, typ: "InvalidInput"},
		{name: "flat without physical network", spec: NetworkSpec{NetworkType: flat}, kind: KindInvalid, typ: "InvalidInput"},
		{name: "flat with a segmentation id", spec: NetworkSpec{NetworkType: flat, PhysicalNetwork: str("physnet2"), SegmentationID: u32(5)}, kind: KindInvalid, typ: "InvalidInput"},
		{name: "physical network name with a colon", spec: NetworkSpec{NetworkType: flat, PhysicalNetwork: str("phys:net")}, kind: KindInvalid, typ: "InvalidInput"},
		{name: "vxlan on a physical network", spec: NetworkSpec{NetworkType: vxlan, PhysicalNetwork: str("physnet1")}, kind: KindInvalid, typ: "InvalidInput"},
		{name: "gre on a physical network", spec: NetworkSpec{NetworkType: gre, PhysicalNetwork: str("physnet1")}, kind: KindInvalid, typ: "InvalidInput"},
		{name: "unknown type", spec: NetworkSpec{NetworkType: str("geneve")}, kind: KindInvalid, typ: "InvalidInput"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := providerStore(t)
			before := snapshotBytes(t, s)
			c.spec.ID = "new"
			out, err := s.CreateNetworks(5, []NetworkSpec{c.spec})
			if c.typ != "" {
				assertStoreError(t, err, c.kind, c.typ)
				assertUnchanged(t, s, before)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			n := out[0]
			if n.NetworkType != *c.spec.NetworkType || n.PhysicalNetwork != *c.spec.PhysicalNetwork || n.SegmentationID != c.seg || n.MTU != c.mtu || n.Key != 4 {
				t.Fatalf("got %s/%s/%d mtu %d key %d, want %s/%s/%d mtu %d key 4", n.NetworkType, n.PhysicalNetwork, n.SegmentationID, n.MTU, n.Key,
					*c.spec.NetworkType, *c.spec.PhysicalNetwork, c.seg, c.mtu)
			}
		})
	}
}

// TestProviderSegmentFreedOnDelete: deleting a vlan or flat network frees
// its VLAN or its physical network; a bulk create that fails frees what
// its earlier elements took.
func TestProviderSegmentFreedOnDelete(t *testing.T) {
	s := providerStore(t)
	vlan, flat := str(TypeVLAN), str(TypeFlat)
	if _, err := s.DeleteNetwork(5, "v100"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteNetwork(6, "flat1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateNetworks(7, []NetworkSpec{{ID: "v100b", NetworkType: vlan, PhysicalNetwork: str("physnet1"), SegmentationID: u32(100)},
		{ID: "flat1b", NetworkType: flat, PhysicalNetwork: str("physnet1")}}); err != nil {
		t.Fatalf("VLAN 100 and physnet1's flat network after deleting their networks: %v", err)
	}
	before := snapshotBytes(t, s)
	_, err := s.CreateNetworks(8, []NetworkSpec{{ID: "v200", NetworkType: vlan, PhysicalNetwork: str("physnet1"), SegmentationID: u32(200)},
		{ID: "v200b", NetworkType: vlan, PhysicalNetwork: str("physnet1"), SegmentationID: u32(200)}})
	assertStoreError(t, err, KindConflict, "VlanIdInUse")
	assertUnchanged(t, s, before)
	if _, err := s.CreateNetworks(9, []NetworkSpec{{ID: "v200", NetworkType: vlan, PhysicalNetwork: str("physnet1"), SegmentationID: u32(200)}}); err != nil {
		t.Fatalf("VLAN 200 after a rolled-back bulk create: %v", err)
	}
}

// TestProviderFieldsAreFixed: a network's type, physical network and
// segmentation id cannot change; restating them is fine.
func TestProviderFieldsAreFixed(t *testing.T) {
	cases := []struct {
		name string
		spec NetworkSpec
		typ  string
	}{
		{"vlan id", NetworkSpec{ID: "v100", SegmentationID: u32(101)}, "InvalidInput"},
		{"physical network", NetworkSpec{ID: "v100", PhysicalNetwork: str("physnet2")}, "InvalidInput"},
		{"type", NetworkSpec{ID: "v100", NetworkType: str(TypeFlat)}, "InvalidInput"},
		{"flat to vlan", NetworkSpec{ID: "flat1", NetworkType: str(TypeVLAN), SegmentationID: u32(5)}, "InvalidInput"},
		{"overlay to flat", NetworkSpec{ID: "ov", NetworkType: str(TypeFlat), PhysicalNetwork: str("physnet3")}, "InvalidInput"},
		{"restated", NetworkSpec{ID: "v100", NetworkType: str(TypeVLAN), PhysicalNetwork: str("physnet1"), SegmentationID: u32(100), Name: str("renamed")}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := providerStore(t)
			before := snapshotBytes(t, s)
			n, err := s.UpdateNetwork(5, c.spec)
			if c.typ != "" {
				assertStoreError(t, err, KindInvalid, c.typ)
				assertUnchanged(t, s, before)
				return
			}
			if err != nil || n.Name != "renamed" || n.SegmentationID != 100 || n.PhysicalNetwork != "physnet1" || n.RevisionNumber != 5 {
				t.Fatalf("restating the provider fields: %+v %v", n, err)
			}
		})
	}
}

// TestProviderSegmentsSurviveSnapshot: a restored store still knows which
// VLANs and flat physical networks are taken, and which are not.
func TestProviderSegmentsSurviveSnapshot(t *testing.T) {
	s := providerStore(t)
	snap := snapshotBytes(t, s)
	r, err := ReadSnapshot(bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snap, snapshotBytes(t, r)) {
		t.Fatal("restore then snapshot differs from the original snapshot")
	}
	vlan, flat := str(TypeVLAN), str(TypeFlat)
	cases := []struct {
		name string
		spec NetworkSpec
		typ  string
	}{
		{"vlan in use", NetworkSpec{ID: "x", NetworkType: vlan, PhysicalNetwork: str("physnet1"), SegmentationID: u32(100)}, "VlanIdInUse"},
		{"flat in use", NetworkSpec{ID: "x", NetworkType: flat, PhysicalNetwork: str("physnet1")}, "FlatNetworkInUse"},
		{"same vlan elsewhere", NetworkSpec{ID: "x", NetworkType: vlan, PhysicalNetwork: str("physnet2"), SegmentationID: u32(100)}, ""},
		{"flat elsewhere", NetworkSpec{ID: "x", NetworkType: flat, PhysicalNetwork: str("physnet2")}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := ReadSnapshot(bytes.NewReader(snap))
			if err != nil {
				t.Fatal(err)
			}
			out, err := r.CreateNetworks(5, []NetworkSpec{c.spec})
			if c.typ != "" {
				assertStoreError(t, err, KindConflict, c.typ)
				assertUnchanged(t, r, snap)
				return
			}
			if err != nil || out[0].Key != 4 {
				t.Fatalf("%+v %v", out, err)
			}
		})
	}
	// The restored overlay allocator carries on where the original was.
	a, errA := s.CreateNetworks(6, []NetworkSpec{{ID: "ov2"}})
	b, errB := r.CreateNetworks(6, []NetworkSpec{{ID: "ov2"}})
	if errA != nil || errB != nil || !reflect.DeepEqual(a, b) || a[0].SegmentationID != 2 {
		t.Fatalf("overlay allocation after restore: %+v %v / %+v %v", a, errA, b, errB)
	}
}

// TestChassisBridgeMappings: a chassis registers the physical networks it
// reaches and whether it is a gateway; a re-registration replaces both;
// reachability is recorded with changed telling whether it moved.
func TestChassisBridgeMappings(t *testing.T) {
	s := New()
	c, err := s.RegisterChassis(1, ChassisSpec{Name: "hv1", EncapIP: "172.31.0.1", Gateway: true,
		BridgeMappings: map[string]string{"physnet1": "br-ex", "physnet2": "br-vlan"}})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Gateway || !reflect.DeepEqual(c.BridgeMappings, map[string]string{"physnet1": "br-ex", "physnet2": "br-vlan"}) {
		t.Fatalf("registered %+v", c)
	}
	before := snapshotBytes(t, s)
	for name, m := range map[string]map[string]string{
		"empty bridge":     {"physnet1": ""},
		"bad physnet":      {"phys net": "br-ex"},
		"empty physnet":    {"": "br-ex"},
		"too long physnet": {"p123456789012345678901234567890123456789012345678901234567890123456789": "br-ex"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := s.RegisterChassis(2, ChassisSpec{Name: "hv1", EncapIP: "172.31.0.1", BridgeMappings: m})
			assertStoreError(t, err, KindInvalid, "InvalidInput")
		})
	}
	assertUnchanged(t, s, before)

	reach := []struct {
		name      string
		chassis   string
		reachable bool
		changed   bool
		typ       string
	}{
		{"lost", "hv1", false, true, ""},
		{"lost again", "hv1", false, false, ""},
		{"back", "hv1", true, true, ""},
		{"back again", "hv1", true, false, ""},
		{"unknown chassis", "hv9", false, false, "ChassisNotFound"},
	}
	for _, r := range reach {
		changed, err := s.SetChassisReachable(3, r.chassis, r.reachable)
		if r.typ != "" {
			assertStoreError(t, err, KindNotFound, r.typ)
			continue
		}
		got, _ := s.ChassisByName(r.chassis)
		if err != nil || changed != r.changed || got.Unreachable == r.reachable {
			t.Fatalf("%s: changed %v err %v unreachable %v", r.name, changed, err, got.Unreachable)
		}
	}
	if _, err := s.SetChassisReachable(4, "hv1", false); err != nil {
		t.Fatal(err)
	}
	// Registering again: reachability stays the leader's word (a chassis
	// the leader cannot reach may still report); the new mappings replace
	// the old ones, and no mapping means none.
	c, err = s.RegisterChassis(5, ChassisSpec{Name: "hv1", EncapIP: "172.31.0.1", BridgeMappings: map[string]string{"physnet3": "br-p3"}})
	if err != nil || !c.Unreachable || c.Gateway || !reflect.DeepEqual(c.BridgeMappings, map[string]string{"physnet3": "br-p3"}) || c.Key != 1 {
		t.Fatalf("re-registered %+v %v", c, err)
	}
	c, _ = s.RegisterChassis(6, ChassisSpec{Name: "hv1", EncapIP: "172.31.0.1"})
	if c.BridgeMappings != nil {
		t.Fatalf("mappings after registering none: %v", c.BridgeMappings)
	}
}

// TestBindingNeedsBridgeMapping: a port of a flat or vlan network
// reported by a chassis without a bridge mapping for its physical network
// is bound there (HostID, so the port says where it failed) but never
// located, and Nova reads binding_failed with the reason; the same port
// reported by a chassis with the mapping binds normally. Overlay ports
// need no mapping.
func TestBindingNeedsBridgeMapping(t *testing.T) {
	type want struct {
		host    string
		ofport  uint32
		status  string
		vifType string
		reason  string // vif_details' wyvern:binding_error, "" for none
	}
	noMapping := "chassis hv-plain has no bridge mapping for physical network physnet1"
	cases := []struct {
		name    string
		port    string
		chassis string
		report  bool // ReportPorts; else SetBindings
		want    want
	}{
		{"vlan port, no mapping, report", "pv", "hv-plain", true, want{"hv-plain", 0, StatusDown, VIFTypeBindingFailed, noMapping}},
		{"vlan port, no mapping, set bindings", "pv", "hv-plain", false, want{"hv-plain", 0, StatusDown, VIFTypeBindingFailed, noMapping}},
		{"flat port, no mapping, report", "pf", "hv-plain", true, want{"hv-plain", 0, StatusDown, VIFTypeBindingFailed, noMapping}},
		{"vlan port, mapping for another physnet", "pv", "hv-other", true,
			want{"hv-other", 0, StatusDown, VIFTypeBindingFailed, "chassis hv-other has no bridge mapping for physical network physnet1"}},
		{"vlan port, mapping, report", "pv", "hv-mapped", true, want{"hv-mapped", 7, StatusActive, VIFTypeOVS, ""}},
		{"flat port, mapping, set bindings", "pf", "hv-mapped", false, want{"hv-mapped", 7, StatusDown, VIFTypeOVS, ""}},
		{"overlay port, no mapping", "po", "hv-plain", true, want{"hv-plain", 7, StatusActive, VIFTypeOVS, ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := providerStore(t)
			mustSubnet(t, s, "v100-4", "v100", "10.100.0.0/24")
			mustSubnet(t, s, "flat1-4", "flat1", "10.1.0.0/24")
			if _, err := s.CreatePorts(3, []PortSpec{{ID: "pv", NetworkID: str("v100")}, {ID: "pf", NetworkID: str("flat1")}, {ID: "po", NetworkID: str("ov")}}); err != nil {
				t.Fatal(err)
			}
			for _, ch := range []ChassisSpec{
				{Name: "hv-plain", EncapIP: "172.31.0.1"},
				{Name: "hv-other", EncapIP: "172.31.0.2", BridgeMappings: map[string]string{"physnet2": "br-ex"}},
				{Name: "hv-mapped", EncapIP: "172.31.0.3", BridgeMappings: map[string]string{"physnet1": "br-ex"}},
			} {
				if _, err := s.RegisterChassis(4, ch); err != nil {
					t.Fatal(err)
				}
			}
			var changed []string
			var err error
			if c.report {
				changed, err = s.ReportPorts(5, c.chassis, []Binding{{PortID: c.port, OFPort: 7, Active: true}})
			} else {
				changed, err = s.SetBindings(5, c.chassis, []Binding{{PortID: c.port, OFPort: 7}})
			}
			if err != nil || !reflect.DeepEqual(changed, []string{c.port}) {
				t.Fatalf("changed %v, err %v; want [%s]", changed, err, c.port)
			}
			p, _ := s.Port(c.port)
			if p.HostID != c.want.host || p.OFPort != c.want.ofport || p.Status != c.want.status || p.VIFType != c.want.vifType {
				t.Fatalf("port %s: host %q ofport %d status %s vif_type %s; want %+v", c.port, p.HostID, p.OFPort, p.Status, p.VIFType, c.want)
			}
			if p.Located() != (c.want.ofport != 0) {
				t.Fatalf("Located() = %v with ofport %d", p.Located(), p.OFPort)
			}
			reason, _ := p.VIFDetails["wyvern:binding_error"].(string)
			if reason != c.want.reason {
				t.Fatalf("binding error %q, want %q", reason, c.want.reason)
			}
			if c.want.reason == "" && p.VIFDetails["bridge_name"] != "br-int" {
				t.Fatalf("vif_details %v", p.VIFDetails)
			}
			// The same report again changes nothing; a refused port is
			// never made ACTIVE.
			if c.report {
				changed, _ = s.ReportPorts(6, c.chassis, []Binding{{PortID: c.port, OFPort: 7, Active: true}})
			} else {
				changed, _ = s.SetBindings(6, c.chassis, []Binding{{PortID: c.port, OFPort: 7}})
			}
			if len(changed) != 0 {
				t.Fatalf("a repeated report changed %v", changed)
			}
			if got := s.SetPortsActive(7, c.chassis, []string{c.port}); c.want.ofport == 0 && len(got) != 0 {
				t.Fatalf("a refused port was made active: %v", got)
			}
		})
	}
}

// TestBindingRefusedThenMapped: once the chassis registers the mapping,
// its next report binds the refused port.
func TestBindingRefusedThenMapped(t *testing.T) {
	s := providerStore(t)
	if _, err := s.CreatePorts(3, []PortSpec{{ID: "pv", NetworkID: str("v100")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RegisterChassis(4, ChassisSpec{Name: "hv1", EncapIP: "172.31.0.1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReportPorts(5, "hv1", []Binding{{PortID: "pv", OFPort: 4, Active: true}}); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Port("pv"); p.Located() || p.VIFType != VIFTypeBindingFailed {
		t.Fatalf("refused port %+v", p)
	}
	if _, err := s.RegisterChassis(6, ChassisSpec{Name: "hv1", EncapIP: "172.31.0.1", BridgeMappings: map[string]string{"physnet1": "br-ex"}}); err != nil {
		t.Fatal(err)
	}
	changed, err := s.ReportPorts(7, "hv1", []Binding{{PortID: "pv", OFPort: 4, Active: true}})
	if err != nil || !reflect.DeepEqual(changed, []string{"pv"}) {
		t.Fatalf("changed %v err %v", changed, err)
	}
	if p, _ := s.Port("pv"); !p.Located() || p.OFPort != 4 || p.Status != StatusActive || p.VIFType != VIFTypeOVS || p.RevisionNumber != 7 {
		t.Fatalf("port after the mapping arrived: %+v", p)
	}
}

func intp(v int) *int { return &v }
