package topology

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func str(s string) *string { return &s }
func u32(v uint32) *uint32 { return &v }

func mustNet(t *testing.T, s *Store, id string, sp NetworkSpec) Network {
	t.Helper()
	sp.ID = id
	n, err := s.CreateNetworks(1, []NetworkSpec{sp})
	if err != nil {
		t.Fatal(err)
	}
	return n[0]
}

func mustSubnet(t *testing.T, s *Store, id, net, cidr string) Subnet {
	t.Helper()
	sn, err := s.CreateSubnets(2, []SubnetSpec{{ID: id, NetworkID: &net, CIDR: &cidr}})
	if err != nil {
		t.Fatal(err)
	}
	return sn[0]
}

func kindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

func TestNetworkDefaultsAndSegmentationIDs(t *testing.T) {
	s := New()
	a := mustNet(t, s, "a", NetworkSpec{})
	if a.NetworkType != TypeVXLAN || a.MTU != 1450 || a.SegmentationID != 1 || a.Key != 1 || !a.AdminStateUp || a.Status != StatusActive {
		t.Fatalf("defaults: %+v", a)
	}
	g := mustNet(t, s, "g", NetworkSpec{NetworkType: str(TypeGRE)})
	if g.MTU != 1458 || g.SegmentationID != 1 || g.Key != 2 {
		t.Fatalf("gre defaults: %+v (segmentation ids are unique per type)", g)
	}
	mustNet(t, s, "b", NetworkSpec{SegmentationID: u32(2)})
	c := mustNet(t, s, "c", NetworkSpec{})
	if c.SegmentationID != 3 {
		t.Fatalf("allocation must skip ids in use: got %d", c.SegmentationID)
	}
	_, err := s.CreateNetworks(3, []NetworkSpec{{ID: "d", SegmentationID: u32(2)}})
	if kindOf(err) != KindConflict {
		t.Fatalf("duplicate segmentation id: %v", err)
	}
	for _, bad := range []NetworkSpec{{ID: "e", SegmentationID: u32(0)}, {ID: "e", SegmentationID: u32(1 << 24)}, {ID: "e", NetworkType: str("vlan")}} {
		if _, err := s.CreateNetworks(3, []NetworkSpec{bad}); kindOf(err) != KindInvalid {
			t.Errorf("%+v: got %v, want invalid", bad, err)
		}
	}
}

func TestSubnetValidation(t *testing.T) {
	s := New()
	mustNet(t, s, "n", NetworkSpec{})
	sn := mustSubnet(t, s, "s1", "n", "10.0.0.0/24")
	if *sn.GatewayIP != "10.0.0.1" || len(sn.AllocationPools) != 1 || sn.AllocationPools[0] != (AllocationPool{"10.0.0.2", "10.0.0.254"}) {
		t.Fatalf("defaults: gateway %v pools %v", *sn.GatewayIP, sn.AllocationPools)
	}
	cases := []struct {
		name string
		spec SubnetSpec
		kind Kind
	}{
		{"bad cidr", SubnetSpec{ID: "x", NetworkID: str("n"), CIDR: str("10.0.0.0/33")}, KindInvalid},
		{"not a cidr", SubnetSpec{ID: "x", NetworkID: str("n"), CIDR: str("ten")}, KindInvalid},
		{"ipv6", SubnetSpec{ID: "x", NetworkID: str("n"), CIDR: str("fd00::/64")}, KindInvalid},
		{"overlap", SubnetSpec{ID: "x", NetworkID: str("n"), CIDR: str("10.0.0.128/25")}, KindInvalid}, // 400, as Neutron
		{"no network", SubnetSpec{ID: "x", NetworkID: str("nope"), CIDR: str("10.1.0.0/24")}, KindNotFound},
		{"gateway outside", SubnetSpec{ID: "x", NetworkID: str("n"), CIDR: str("10.1.0.0/24"), GatewayIP: str("10.2.0.1")}, KindInvalid},
		{"pool outside", SubnetSpec{ID: "x", NetworkID: str("n"), CIDR: str("10.1.0.0/24"), AllocationPools: []AllocationPool{{"10.1.0.10", "10.1.1.5"}}}, KindInvalid},
		{"pool holds gateway", SubnetSpec{ID: "x", NetworkID: str("n"), CIDR: str("10.1.0.0/24"), AllocationPools: []AllocationPool{{"10.1.0.1", "10.1.0.5"}}}, KindConflict},
	}
	for _, c := range cases {
		if _, err := s.CreateSubnets(3, []SubnetSpec{c.spec}); kindOf(err) != c.kind {
			t.Errorf("%s: got %v, want kind %d", c.name, err, c.kind)
		}
	}
	if got := len(s.Subnets()); got != 1 {
		t.Fatalf("rejected subnets changed the store: %d subnets", got)
	}
	// The same CIDR on another network is fine.
	mustNet(t, s, "m", NetworkSpec{})
	mustSubnet(t, s, "s2", "m", "10.0.0.0/24")
}

func TestPortAllocationAndConflicts(t *testing.T) {
	s := New()
	mustNet(t, s, "n", NetworkSpec{})
	mustSubnet(t, s, "s", "n", "10.0.0.0/29") // hosts .2-.6 after the gateway
	var specs []PortSpec
	for i := 0; i < 5; i++ {
		specs = append(specs, PortSpec{ID: fmt.Sprintf("p%d", i), NetworkID: str("n")})
	}
	ports, err := s.CreatePorts(3, specs)
	if err != nil {
		t.Fatal(err)
	}
	seenIP, seenMAC := map[string]bool{}, map[string]bool{}
	for i, p := range ports {
		if len(p.FixedIPs) != 1 || seenIP[p.FixedIPs[0].IPAddress] || seenMAC[p.MACAddress] {
			t.Fatalf("port %d: %+v (duplicate or missing allocation)", i, p)
		}
		seenIP[p.FixedIPs[0].IPAddress], seenMAC[p.MACAddress] = true, true
		if p.Key != uint32(i+1) || p.Status != StatusDown {
			t.Fatalf("port %d key %d status %s", i, p.Key, p.Status)
		}
	}
	if ports[0].FixedIPs[0].IPAddress != "10.0.0.2" || ports[0].MACAddress != "fa:16:3e:00:00:01" {
		t.Fatalf("first allocation: %v %s", ports[0].FixedIPs, ports[0].MACAddress)
	}
	// The pool is exhausted.
	_, err = s.CreatePorts(4, []PortSpec{{ID: "full", NetworkID: str("n")}})
	if e, _ := err.(*Error); e == nil || e.Type != "IpAddressGenerationFailure" {
		t.Fatalf("exhausted pool: %v", err)
	}
	// Free one; the next allocation finds it.
	if err := s.DeletePort(5, "p2"); err != nil {
		t.Fatal(err)
	}
	p, err := s.CreatePorts(6, []PortSpec{{ID: "again", NetworkID: str("n")}})
	if err != nil || p[0].FixedIPs[0].IPAddress != ports[2].FixedIPs[0].IPAddress {
		t.Fatalf("reuse of a freed address: %v %v", p, err)
	}
	for name, sp := range map[string]PortSpec{
		"dup mac":    {ID: "x", NetworkID: str("n"), MACAddress: str(ports[0].MACAddress), FixedIPs: &[]FixedIPSpec{}},
		"dup ip":     {ID: "x", NetworkID: str("n"), FixedIPs: &[]FixedIPSpec{{IPAddress: "10.0.0.2"}}},
		"ip outside": {ID: "x", NetworkID: str("n"), FixedIPs: &[]FixedIPSpec{{SubnetID: "s", IPAddress: "10.0.1.2"}}},
	} {
		if _, err := s.CreatePorts(7, []PortSpec{sp}); kindOf(err) != KindConflict {
			t.Errorf("%s: got %v, want conflict", name, err)
		}
	}
	if _, err := s.CreatePorts(7, []PortSpec{{ID: "x", NetworkID: str("n"), MACAddress: str("zz")}}); kindOf(err) != KindInvalid {
		t.Errorf("bad mac: got %v", err)
	}
	if _, err := s.DeleteNetwork(8, "n"); kindOf(err) != KindConflict {
		t.Errorf("delete network with ports: %v", err)
	}
	if err := s.DeleteSubnet(8, "s"); kindOf(err) != KindConflict {
		t.Errorf("delete subnet in use: %v", err)
	}
}

// TestBulkIsAllOrNothing: the last element of a bulk create conflicts; the
// store, counters included, is exactly as before.
func TestBulkIsAllOrNothing(t *testing.T) {
	s := New()
	mustNet(t, s, "n", NetworkSpec{})
	mustSubnet(t, s, "s", "n", "10.0.0.0/24")
	before := snapshotBytes(t, s)
	specs := []PortSpec{{ID: "a", NetworkID: str("n")}, {ID: "b", NetworkID: str("n")},
		{ID: "c", NetworkID: str("n"), FixedIPs: &[]FixedIPSpec{{IPAddress: "10.0.0.2"}}}} // a got .2
	_, err := s.CreatePorts(3, specs)
	if kindOf(err) != KindConflict {
		t.Fatalf("got %v, want a conflict on the third port", err)
	}
	if after := snapshotBytes(t, s); !bytes.Equal(before, after) {
		t.Fatalf("a rejected bulk create changed the store:\n%s\n%s", before, after)
	}
}

func snapshotBytes(t *testing.T, s *Store) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := s.WriteSnapshot(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestSnapshotContinuesIdentically: a store restored from a snapshot makes
// the same allocations afterwards as the store that wrote it.
func TestSnapshotContinuesIdentically(t *testing.T) {
	s := New()
	mustNet(t, s, "n", NetworkSpec{})
	mustSubnet(t, s, "s", "n", "10.0.0.0/24")
	var specs []PortSpec
	for i := 0; i < 10; i++ {
		specs = append(specs, PortSpec{ID: fmt.Sprintf("p%d", i), NetworkID: str("n")})
	}
	if _, err := s.CreatePorts(3, specs); err != nil {
		t.Fatal(err)
	}
	_ = s.DeletePort(4, "p3")
	if _, err := s.RegisterChassis(5, ChassisSpec{Name: "hv1", EncapIP: "172.31.0.1", Encaps: []string{"vxlan"}}); err != nil {
		t.Fatal(err)
	}
	snap := snapshotBytes(t, s)
	r, err := ReadSnapshot(bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snap, snapshotBytes(t, r)) {
		t.Fatal("restore then snapshot differs from the original snapshot")
	}
	more := []PortSpec{{ID: "q1", NetworkID: str("n")}, {ID: "q2", NetworkID: str("n")}}
	a, errA := s.CreatePorts(6, more)
	b, errB := r.CreatePorts(6, more)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if errA != nil || errB != nil || !bytes.Equal(ja, jb) {
		t.Fatalf("restored store allocates differently:\n%s\n%s", ja, jb)
	}
	if c, _ := r.RegisterChassis(7, ChassisSpec{Name: "hv2", EncapIP: "172.31.0.2"}); c.DVRMAC != "fa:16:3f:00:00:02" {
		t.Fatalf("second chassis DVR MAC %s", c.DVRMAC)
	}
}

func TestRouterInterface(t *testing.T) {
	s := New()
	mustNet(t, s, "n", NetworkSpec{})
	mustSubnet(t, s, "s", "n", "10.0.0.0/24")
	if _, err := s.CreateRouters(3, []RouterSpec{{ID: "r"}}); err != nil {
		t.Fatal(err)
	}
	p, err := s.AddRouterInterface(4, "r", "s", "rp")
	if err != nil {
		t.Fatal(err)
	}
	if p.FixedIPs[0].IPAddress != "10.0.0.1" || p.DeviceOwner != OwnerRouterInterface || p.DeviceID != "r" {
		t.Fatalf("interface port %+v", p)
	}
	if _, err := s.AddRouterInterface(5, "r", "s", "rp2"); kindOf(err) != KindInvalid { // 400, as Neutron
		t.Fatalf("second interface on one subnet: %v", err)
	}
	if err := s.DeleteRouter(6, "r"); kindOf(err) != KindConflict {
		t.Fatalf("delete router with interfaces: %v", err)
	}
	if _, err := s.RemoveRouterInterface(7, "r", "s"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRouter(8, "r"); err != nil {
		t.Fatal(err)
	}
}

// TestRouterSubnetsMustNotOverlap: a router cannot join two subnets
// whose CIDRs overlap (on different networks): it could not tell which a
// destination is in. Nothing changes.
func TestRouterSubnetsMustNotOverlap(t *testing.T) {
	s := New()
	mustNet(t, s, "n1", NetworkSpec{})
	mustNet(t, s, "n2", NetworkSpec{})
	mustSubnet(t, s, "s1", "n1", "10.0.0.0/24")
	mustSubnet(t, s, "s2", "n2", "10.0.0.0/25")
	_, _ = s.CreateRouters(3, []RouterSpec{{ID: "r"}})
	if _, err := s.AddRouterInterface(4, "r", "s1", "p1"); err != nil {
		t.Fatal(err)
	}
	before := len(s.Ports())
	if _, err := s.AddRouterInterface(5, "r", "s2", "p2"); kindOf(err) != KindInvalid || !strings.Contains(err.Error(), "overlaps") {
		t.Fatalf("overlapping interface: %v", err)
	}
	if len(s.Ports()) != before {
		t.Fatal("a rejected interface left a port")
	}
}

// TestRouterInterfacesComeOnlyFromRouters: a port cannot make itself a
// router interface, on create or update; it would route and answer for
// the router without any of add_router_interface's checks.
func TestRouterInterfacesComeOnlyFromRouters(t *testing.T) {
	s := New()
	mustNet(t, s, "n", NetworkSpec{})
	mustSubnet(t, s, "s", "n", "10.0.0.0/24")
	_, _ = s.CreateRouters(3, []RouterSpec{{ID: "r"}})
	net, owner, r := "n", OwnerRouterInterface, "r"
	if _, err := s.CreatePorts(4, []PortSpec{{ID: "p", NetworkID: &net, DeviceOwner: &owner, DeviceID: &r}}); kindOf(err) != KindInvalid {
		t.Fatalf("a port created as a router interface: %v", err)
	}
	if _, err := s.CreatePorts(5, []PortSpec{{ID: "p", NetworkID: &net}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdatePort(6, PortSpec{ID: "p", DeviceOwner: &owner, DeviceID: &r}); kindOf(err) != KindInvalid {
		t.Fatalf("a port turned into a router interface: %v", err)
	}
	if p, _ := s.Port("p"); p.DeviceOwner != "" {
		t.Fatalf("the rejected update changed the port: %+v", p)
	}
	if _, err := s.AddRouterInterface(7, "r", "s", "rp"); err != nil {
		t.Fatal(err)
	}
}

// TestDVRMACsAreReserved: no port or address pair may take a MAC in the
// range of chassis DVR MACs, which marks routed frames on the underlay.
func TestDVRMACsAreReserved(t *testing.T) {
	s := New()
	mustNet(t, s, "n", NetworkSpec{})
	mustSubnet(t, s, "s", "n", "10.0.0.0/24")
	net := "n"
	dvr := "fa:16:3f:00:00:01"
	if _, err := s.CreatePorts(3, []PortSpec{{ID: "p", NetworkID: &net, MACAddress: &dvr}}); kindOf(err) != KindInvalid {
		t.Fatalf("a port with a DVR MAC: %v", err)
	}
	if _, err := s.CreatePorts(4, []PortSpec{{ID: "p", NetworkID: &net,
		AllowedAddressPairs: &[]AddressPair{{IPAddress: "10.0.0.9", MACAddress: dvr}}}}); kindOf(err) != KindInvalid {
		t.Fatalf("an address pair with a DVR MAC: %v", err)
	}
	if len(s.Ports()) != 0 {
		t.Fatal("a rejected port was stored")
	}
	c, err := s.RegisterChassis(5, ChassisSpec{Name: "hv1", EncapIP: "172.31.0.1"})
	if err != nil || c.DVRMAC != dvr {
		t.Fatalf("first chassis DVR MAC %q: %v", c.DVRMAC, err)
	}
}

// Regressions found in review.

// TestAllocationInOneRequestNeverSpins: a request asking for more
// addresses than are free must fail, not loop inside Apply.
func TestAllocationInOneRequestNeverSpins(t *testing.T) {
	s := New()
	mustNet(t, s, "n", NetworkSpec{})
	mustSubnet(t, s, "s", "n", "10.0.0.0/30") // one host address after the gateway: .2
	done := make(chan error, 1)
	go func() {
		_, err := s.CreatePorts(3, []PortSpec{{ID: "p", NetworkID: str("n"),
			FixedIPs: &[]FixedIPSpec{{SubnetID: "s", IPAddress: "10.0.0.2"}, {SubnetID: "s"}}}})
		done <- err
	}()
	select {
	case err := <-done:
		if e, _ := err.(*Error); e == nil || e.Type != "IpAddressGenerationFailure" {
			t.Fatalf("got %v, want IpAddressGenerationFailure", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("CreatePorts is spinning")
	}
}

// TestCopiesDoNotChangeUnderReaders: a copy handed out before an update
// keeps its passive fields (readers encode copies after the lock is gone).
func TestCopiesDoNotChangeUnderReaders(t *testing.T) {
	s := New()
	mustNet(t, s, "n", NetworkSpec{Extra: map[string]json.RawMessage{"dns_domain": json.RawMessage(`"a."`)}})
	before, _ := s.Network("n")
	if _, err := s.UpdateNetwork(2, NetworkSpec{ID: "n", Extra: map[string]json.RawMessage{"dns_domain": json.RawMessage(`"b."`)}}); err != nil {
		t.Fatal(err)
	}
	if string(before.Extra["dns_domain"]) != `"a."` {
		t.Fatalf("an earlier copy changed: %s", before.Extra["dns_domain"])
	}
}

// TestRejectedUpdateChangesNothing: an update failing after its addresses
// were resolved leaves the allocation cursor where it was.
func TestRejectedUpdateChangesNothing(t *testing.T) {
	s := New()
	mustNet(t, s, "n", NetworkSpec{})
	mustSubnet(t, s, "s", "n", "10.0.0.0/24")
	if _, err := s.CreatePorts(3, []PortSpec{{ID: "p", NetworkID: str("n")}}); err != nil {
		t.Fatal(err)
	}
	before := snapshotBytes(t, s)
	_, err := s.UpdatePort(4, PortSpec{ID: "p", FixedIPs: &[]FixedIPSpec{{SubnetID: "s"}},
		AllowedAddressPairs: &[]AddressPair{{IPAddress: "not-an-ip"}}})
	if kindOf(err) != KindInvalid {
		t.Fatalf("got %v", err)
	}
	if after := snapshotBytes(t, s); !bytes.Equal(before, after) {
		t.Fatal("a rejected update changed the store")
	}
}

func TestHostChangeDropsTheOldBinding(t *testing.T) {
	s := New()
	mustNet(t, s, "n", NetworkSpec{})
	if _, err := s.CreatePorts(2, []PortSpec{{ID: "p", NetworkID: str("n")}}); err != nil {
		t.Fatal(err)
	}
	_, _ = s.RegisterChassis(3, ChassisSpec{Name: "hv1", EncapIP: "172.31.0.1"})
	if _, err := s.SetBindings(4, "hv1", []Binding{{PortID: "p", OFPort: 5}}); err != nil {
		t.Fatal(err)
	}
	p, err := s.UpdatePort(5, PortSpec{ID: "p", HostID: str("hv2")})
	if err != nil || p.OFPort != 0 || p.Status != StatusDown {
		t.Fatalf("after moving binding:host_id: %+v %v", p, err)
	}
}

func TestRouterInterfacePortsAreGuarded(t *testing.T) {
	s := New()
	mustNet(t, s, "n", NetworkSpec{})
	mustSubnet(t, s, "s", "n", "10.0.0.0/24")
	_, _ = s.CreateRouters(3, []RouterSpec{{ID: "r"}})
	p, err := s.AddRouterInterface(4, "r", "s", "rp")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePort(5, p.ID); kindOf(err) != KindConflict {
		t.Fatalf("deleting a router interface through the ports API: %v", err)
	}
	if _, err := s.UpdatePort(5, PortSpec{ID: p.ID, FixedIPs: &[]FixedIPSpec{}}); kindOf(err) != KindConflict {
		t.Fatalf("readdressing a router interface: %v", err)
	}
}
