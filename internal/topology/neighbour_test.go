package topology

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
)

func TestLearnNeighbour(t *testing.T) {
	s := externalStore(t)
	cases := []struct {
		name    string
		nb      Neighbour
		changed bool
		kind    Kind
		typ     string
	}{
		{"new", Neighbour{"ext", "203.0.113.1", "52:54:00:ab:cd:01"}, true, 0, ""},
		{"known", Neighbour{"ext", "203.0.113.1", "52:54:00:ab:cd:01"}, false, 0, ""},
		{"known, in capitals", Neighbour{"ext", "203.0.113.1", "52:54:00:AB:CD:01"}, false, 0, ""},
		{"moved", Neighbour{"ext", "203.0.113.1", "52:54:00:00:00:02"}, true, 0, ""},
		{"another address", Neighbour{"ext", "203.0.113.254", "52:54:00:00:00:03"}, true, 0, ""},
		{"another network", Neighbour{"ext2", "198.51.100.1", "52:54:00:00:00:04"}, true, 0, ""},
		{"unknown network", Neighbour{"nope", "203.0.113.1", "52:54:00:00:00:01"}, false, KindNotFound, "NetworkNotFound"},
		{"bad address", Neighbour{"ext", "203.0.113", "52:54:00:00:00:01"}, false, KindInvalid, "InvalidInput"},
		{"IPv6 address", Neighbour{"ext", "2001:db8::1", "52:54:00:00:00:01"}, false, KindInvalid, "InvalidInput"},
		{"bad MAC", Neighbour{"ext", "203.0.113.1", "52:54:00"}, false, KindInvalid, "InvalidInput"},
		{"multicast MAC", Neighbour{"ext", "203.0.113.1", "01:00:5e:00:00:01"}, false, KindInvalid, "InvalidInput"},
	}
	for _, c := range cases {
		before := snapshotBytes(t, s)
		changed, err := s.LearnNeighbour(30, c.nb)
		if c.typ != "" {
			if changed {
				t.Errorf("%s: changed on an error", c.name)
			}
			assertStoreError(t, err, c.kind, c.typ)
			assertUnchanged(t, s, before)
			continue
		}
		if err != nil || changed != c.changed {
			t.Fatalf("%s: changed %v err %v, want changed %v", c.name, changed, err, c.changed)
		}
		if !c.changed {
			assertUnchanged(t, s, before)
		}
	}
	var got []Neighbour
	s.EachNeighbour(func(nb Neighbour) { got = append(got, nb) })
	want := []Neighbour{{"ext", "203.0.113.1", "52:54:00:00:00:02"}, {"ext", "203.0.113.254", "52:54:00:00:00:03"}, {"ext2", "198.51.100.1", "52:54:00:00:00:04"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("neighbours %+v, want %+v", got, want)
	}
	if _, err := s.DeleteNetwork(31, "ext2"); err != nil {
		t.Fatal(err)
	}
	got = nil
	s.EachNeighbour(func(nb Neighbour) { got = append(got, nb) })
	if !reflect.DeepEqual(got, want[:2]) {
		t.Fatalf("neighbours after deleting ext2: %+v", got)
	}
}

// TestExternalSnapshotRoundTrip: floating IPs, port forwardings,
// neighbours, gateways, routes and chassis mappings come back from a
// snapshot, and the restored store refuses and allocates as the original.
func TestExternalSnapshotRoundTrip(t *testing.T) {
	s := forwardingStore(t)
	if _, err := s.CreateFloatingIP(20, FloatingIPSpec{ID: "g", HolderPortID: "hg", FloatingNetworkID: str("ext"), PortID: str("vm2"),
		Description: str("db"), Tags: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateRouter(21, RouterSpec{ID: "r", Routes: &[]HostRoute{{"0.0.0.0/0", "203.0.113.1"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LearnNeighbour(22, Neighbour{"ext", "203.0.113.1", "52:54:00:00:00:01"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RegisterChassis(23, ChassisSpec{Name: "gw1", EncapIP: "172.31.0.9", Gateway: true, BridgeMappings: map[string]string{"public": "br-ex"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetChassisReachable(24, "gw1", false); err != nil {
		t.Fatal(err)
	}
	snap := snapshotBytes(t, s)
	r, err := ReadSnapshot(bytes.NewReader(snap))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snap, snapshotBytes(t, r)) {
		t.Fatalf("restore then snapshot differs:\n%s\n%s", snap, snapshotBytes(t, r))
	}
	if !reflect.DeepEqual(s.FloatingIPs(), r.FloatingIPs()) || len(r.FloatingIPs()) != 2 {
		t.Fatalf("floating IPs:\n%+v\n%+v", s.FloatingIPs(), r.FloatingIPs())
	}
	if !reflect.DeepEqual(s.Routers(), r.Routers()) || !reflect.DeepEqual(s.Ports(), r.Ports()) || !reflect.DeepEqual(s.Chassis(), r.Chassis()) {
		t.Fatal("routers, ports or chassis differ after restore")
	}
	var nbs []Neighbour
	r.EachNeighbour(func(nb Neighbour) { nbs = append(nbs, nb) })
	if !reflect.DeepEqual(nbs, []Neighbour{{"ext", "203.0.113.1", "52:54:00:00:00:01"}}) {
		t.Fatalf("neighbours after restore: %+v", nbs)
	}
	if changed, err := r.LearnNeighbour(25, Neighbour{"ext", "203.0.113.1", "52:54:00:00:00:01"}); err != nil || changed {
		t.Fatalf("a restored neighbour relearned: changed %v err %v", changed, err)
	}
	// Both refuse alike.
	for _, st := range []*Store{s, r} {
		_, err := st.CreateFloatingIP(30, FloatingIPSpec{ID: "x", HolderPortID: "hx", FloatingNetworkID: str("ext"), PortID: str("vm2")})
		assertStoreError(t, err, KindConflict, "FloatingIPPortAlreadyAssociated")
		_, err = st.CreatePortForwarding(30, pfSpec("x", "tcp", 8080, 9, "10.0.0.10", "multi"))
		assertStoreError(t, err, KindConflict, "PortForwardingInUse")
		_, err = st.RemoveRouterInterface(30, "r", "int4")
		assertStoreError(t, err, KindConflict, "RouterInterfaceInUseByFloatingIP")
		_, err = st.CreateFloatingIP(30, FloatingIPSpec{ID: "x", HolderPortID: "hx", FloatingNetworkID: str("ext"), FloatingIPAddress: str("203.0.113.4")})
		assertStoreError(t, err, KindConflict, "FloatingIPAddressInUse")
	}
	// ... and allocate alike.
	a, errA := s.CreateFloatingIP(31, FloatingIPSpec{ID: "n", HolderPortID: "hn", FloatingNetworkID: str("ext")})
	b, errB := r.CreateFloatingIP(31, FloatingIPSpec{ID: "n", HolderPortID: "hn", FloatingNetworkID: str("ext")})
	if errA != nil || errB != nil || !reflect.DeepEqual(a, b) || a.FloatingIPAddress != "203.0.113.5" || a.Key != 3 {
		t.Fatalf("allocation after restore:\n%+v %v\n%+v %v", a, errA, b, errB)
	}
	if !reflect.DeepEqual(mustPort(t, s, "hn"), mustPort(t, r, "hn")) {
		t.Fatal("holder ports differ")
	}
}

// TestNeighbourTableIsBounded: a network learns at most MaxNeighbours
// addresses; past it a new one is refused and changes nothing, a known
// one still changes its MAC.
func TestNeighbourTableIsBounded(t *testing.T) {
	s := externalStore(t)
	for i := range MaxNeighbours {
		ip := fmt.Sprintf("203.0.%d.%d", 113+i/254, i%254+1)
		if _, err := s.LearnNeighbour(uint64(100+i), Neighbour{NetworkID: "ext", IP: ip, MAC: "02:00:00:00:00:01"}); err != nil {
			t.Fatalf("%s: %v", ip, err)
		}
	}
	_, err := s.LearnNeighbour(5000, Neighbour{NetworkID: "ext", IP: "198.51.100.1", MAC: "02:00:00:00:00:02"})
	assertStoreError(t, err, KindConflict, "NeighbourTableFull")
	if changed, err := s.LearnNeighbour(5001, Neighbour{NetworkID: "ext", IP: "203.0.113.1", MAC: "02:00:00:00:00:03"}); err != nil || !changed {
		t.Errorf("a known neighbour's new MAC: %v %v", changed, err)
	}
}
