package topology

import (
	"reflect"
	"testing"
)

func TestFloatingIPCreate(t *testing.T) {
	type want struct {
		addr, port, fixed, router, status string
	}
	cases := []struct {
		name string
		pre  func(s *Store) error
		spec FloatingIPSpec
		want want
		kind Kind
		typ  string
	}{
		{name: "the next free address", spec: FloatingIPSpec{FloatingNetworkID: str("ext")},
			want: want{addr: "203.0.113.3", status: StatusDown}},
		{name: "a requested address", spec: FloatingIPSpec{FloatingNetworkID: str("ext"), FloatingIPAddress: str("203.0.113.77")},
			want: want{addr: "203.0.113.77", status: StatusDown}},
		{name: "a requested subnet", spec: FloatingIPSpec{FloatingNetworkID: str("ext2"), SubnetID: str("ext24")},
			want: want{addr: "198.51.100.2", status: StatusDown}},
		{name: "associated with a port", spec: FloatingIPSpec{FloatingNetworkID: str("ext"), PortID: str("vm")},
			want: want{addr: "203.0.113.3", port: "vm", fixed: "10.0.0.2", router: "r", status: StatusActive}},
		{name: "associated with a port's second address", spec: FloatingIPSpec{FloatingNetworkID: str("ext"), PortID: str("multi"), FixedIPAddress: str("10.0.0.11")},
			want: want{addr: "203.0.113.3", port: "multi", fixed: "10.0.0.11", router: "r", status: StatusActive}},
		{name: "another fixed IP of a port with a floating IP",
			pre: func(s *Store) error {
				_, err := s.CreateFloatingIP(10, FloatingIPSpec{ID: "f0", HolderPortID: "h0", FloatingNetworkID: str("ext"), PortID: str("multi"), FixedIPAddress: str("10.0.0.10")})
				return err
			},
			spec: FloatingIPSpec{FloatingNetworkID: str("ext"), PortID: str("multi"), FixedIPAddress: str("10.0.0.11")},
			want: want{addr: "203.0.113.4", port: "multi", fixed: "10.0.0.11", router: "r", status: StatusActive}},
		{name: "the address of a deleted floating IP",
			pre: func(s *Store) error {
				if _, err := s.CreateFloatingIP(10, FloatingIPSpec{ID: "f0", HolderPortID: "h0", FloatingNetworkID: str("ext"), FloatingIPAddress: str("203.0.113.9")}); err != nil {
					return err
				}
				_, err := s.DeleteFloatingIP(11, "f0")
				return err
			},
			spec: FloatingIPSpec{FloatingNetworkID: str("ext"), FloatingIPAddress: str("203.0.113.9")},
			want: want{addr: "203.0.113.9", status: StatusDown}},

		{name: "an address in use", spec: FloatingIPSpec{FloatingNetworkID: str("ext"), FloatingIPAddress: str("203.0.113.2")},
			kind: KindConflict, typ: "FloatingIPAddressInUse"},
		{name: "an address off the network", spec: FloatingIPSpec{FloatingNetworkID: str("ext"), FloatingIPAddress: str("198.51.100.5")},
			kind: KindConflict, typ: "InvalidIpForNetwork"},
		{name: "a subnet of another network", spec: FloatingIPSpec{FloatingNetworkID: str("ext"), SubnetID: str("ext24")},
			kind: KindInvalid, typ: "InvalidInput"},
		{name: "a network that is not external", spec: FloatingIPSpec{FloatingNetworkID: str("int")},
			kind: KindInvalid, typ: "InvalidInput"},
		{name: "an unknown network", spec: FloatingIPSpec{FloatingNetworkID: str("nope")},
			kind: KindNotFound, typ: "NetworkNotFound"},
		{name: "no network", spec: FloatingIPSpec{},
			kind: KindInvalid, typ: "InvalidInput"},
		{name: "an external network without a subnet",
			pre: func(s *Store) error {
				_, err := s.CreateNetworks(10, []NetworkSpec{{ID: "bare", External: boolp(true)}})
				return err
			},
			spec: FloatingIPSpec{FloatingNetworkID: str("bare")},
			kind: KindInvalid, typ: "InvalidInput"},
		{name: "a port no router connects to the network", spec: FloatingIPSpec{FloatingNetworkID: str("ext"), PortID: str("far")},
			kind: KindNotFound, typ: "ExternalGatewayForFloatingIPNotFound"},
		{name: "a port whose router's gateway is elsewhere", spec: FloatingIPSpec{FloatingNetworkID: str("ext2"), PortID: str("vm")},
			kind: KindNotFound, typ: "ExternalGatewayForFloatingIPNotFound"},
		{name: "an unknown port", spec: FloatingIPSpec{FloatingNetworkID: str("ext"), PortID: str("nope")},
			kind: KindNotFound, typ: "PortNotFound"},
		{name: "a router's interface", spec: FloatingIPSpec{FloatingNetworkID: str("ext"), PortID: str("ri")},
			kind: KindInvalid, typ: "InvalidInput"},
		{name: "a fixed IP the port does not have", spec: FloatingIPSpec{FloatingNetworkID: str("ext"), PortID: str("vm"), FixedIPAddress: str("10.0.0.3")},
			kind: KindInvalid, typ: "InvalidInput"},
		{name: "a fixed IP with a floating IP already",
			pre: func(s *Store) error {
				_, err := s.CreateFloatingIP(10, FloatingIPSpec{ID: "f0", HolderPortID: "h0", FloatingNetworkID: str("ext"), PortID: str("vm")})
				return err
			},
			spec: FloatingIPSpec{FloatingNetworkID: str("ext"), PortID: str("vm")},
			kind: KindConflict, typ: "FloatingIPPortAlreadyAssociated"},
		{name: "a taken id",
			pre: func(s *Store) error {
				_, err := s.CreateFloatingIP(10, FloatingIPSpec{ID: "f", HolderPortID: "h0", FloatingNetworkID: str("ext")})
				return err
			},
			spec: FloatingIPSpec{FloatingNetworkID: str("ext")},
			kind: KindConflict, typ: "FloatingIPExists"},
		{name: "a taken holder port id", spec: FloatingIPSpec{FloatingNetworkID: str("ext"), HolderPortID: "vm"},
			kind: KindConflict, typ: "PortExists"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := externalStore(t)
			if c.pre != nil {
				if err := c.pre(s); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshotBytes(t, s)
			sp := c.spec
			sp.ID = "f"
			if sp.HolderPortID == "" {
				sp.HolderPortID = "h"
			}
			f, err := s.CreateFloatingIP(20, sp)
			if c.typ != "" {
				assertStoreError(t, err, c.kind, c.typ)
				assertUnchanged(t, s, before)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := want{f.FloatingIPAddress, f.PortID, f.FixedIPAddress, f.RouterID, f.Status}
			if got != c.want || f.HolderPortID != "h" || f.FloatingNetworkID != *sp.FloatingNetworkID || f.RevisionNumber != 20 {
				t.Fatalf("floating IP %+v, want %+v", f, c.want)
			}
			if stored := mustFIP(t, s, "f"); !reflect.DeepEqual(stored, f) {
				t.Fatalf("stored %+v, returned %+v", stored, f)
			}
			h := mustPort(t, s, "h")
			if h.DeviceOwner != OwnerFloatingIP || h.DeviceID != "f" || h.NetworkID != f.FloatingNetworkID || h.Status != StatusActive ||
				len(h.FixedIPs) != 1 || h.FixedIPs[0].IPAddress != c.want.addr {
				t.Fatalf("holder port %+v", h)
			}
		})
	}
}

// associatedStore is externalStore with floating IP f (holder h,
// 203.0.113.3) associated with vm.
func associatedStore(t *testing.T) *Store {
	t.Helper()
	s := externalStore(t)
	if _, err := s.CreateFloatingIP(10, FloatingIPSpec{ID: "f", HolderPortID: "h", FloatingNetworkID: str("ext"), PortID: str("vm")}); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFloatingIPAssociation: what moves a floating IP's association, and
// what it holds in place.
func TestFloatingIPAssociation(t *testing.T) {
	type assoc struct{ port, fixed, router, status string }
	cases := []struct {
		name string
		pre  func(s *Store) error
		op   func(s *Store) error
		want assoc
		kind Kind
		typ  string
	}{
		{name: "disassociate", op: func(s *Store) error {
			_, err := s.UpdateFloatingIP(20, FloatingIPSpec{ID: "f", PortID: str("")})
			return err
		}, want: assoc{status: StatusDown}},
		{name: "move to another port", op: func(s *Store) error {
			_, err := s.UpdateFloatingIP(20, FloatingIPSpec{ID: "f", PortID: str("vm2")})
			return err
		}, want: assoc{"vm2", "10.0.0.3", "r", StatusActive}},
		{name: "description only keeps the association", op: func(s *Store) error {
			_, err := s.UpdateFloatingIP(20, FloatingIPSpec{ID: "f", Description: str("web")})
			return err
		}, want: assoc{"vm", "10.0.0.2", "r", StatusActive}},
		{name: "deleting the port disassociates", op: func(s *Store) error {
			return s.DeletePort(20, "vm")
		}, want: assoc{status: StatusDown}},
		{name: "deleting another port does not", op: func(s *Store) error {
			return s.DeletePort(20, "vm2")
		}, want: assoc{"vm", "10.0.0.2", "r", StatusActive}},
		{name: "enable_snat on the gateway", op: func(s *Store) error {
			_, err := s.UpdateRouter(20, RouterSpec{ID: "r", Gateway: &GatewaySpec{NetworkID: "ext", EnableSNAT: boolp(false)}})
			return err
		}, want: assoc{"vm", "10.0.0.2", "r", StatusActive}},

		{name: "removing the interface it goes through", op: func(s *Store) error {
			_, err := s.RemoveRouterInterface(20, "r", "int4")
			return err
		}, kind: KindConflict, typ: "RouterInterfaceInUseByFloatingIP"},
		{name: "clearing the gateway", op: func(s *Store) error {
			_, err := s.UpdateRouter(20, RouterSpec{ID: "r", Gateway: &GatewaySpec{Clear: true}})
			return err
		}, kind: KindConflict, typ: "RouterExternalGatewayInUseByFloatingIp"},
		{name: "moving the gateway", op: func(s *Store) error {
			_, err := s.UpdateRouter(20, RouterSpec{ID: "r", GatewayPortID: "gw-r-2", Gateway: &GatewaySpec{NetworkID: "ext2"}})
			return err
		}, kind: KindConflict, typ: "RouterExternalGatewayInUseByFloatingIp"},
		{name: "deleting the router", op: func(s *Store) error {
			return s.DeleteRouter(20, "r")
		}, kind: KindConflict, typ: "RouterInUse"},
		{name: "readdressing the port away from its fixed IP", op: func(s *Store) error {
			_, err := s.UpdatePort(20, PortSpec{ID: "vm", FixedIPs: &[]FixedIPSpec{{IPAddress: "10.0.0.99"}}})
			return err
		}, kind: KindConflict, typ: "FloatingIPAssociated"},
		{name: "unsetting router:external", op: func(s *Store) error {
			_, err := s.UpdateNetwork(20, NetworkSpec{ID: "ext", External: boolp(false)})
			return err
		}, kind: KindConflict, typ: "ExternalNetworkInUse"},
		{name: "changing the address", op: func(s *Store) error {
			_, err := s.UpdateFloatingIP(20, FloatingIPSpec{ID: "f", FloatingIPAddress: str("203.0.113.99")})
			return err
		}, kind: KindInvalid, typ: "InvalidInput"},
		{name: "changing the network", op: func(s *Store) error {
			_, err := s.UpdateFloatingIP(20, FloatingIPSpec{ID: "f", FloatingNetworkID: str("ext2")})
			return err
		}, kind: KindInvalid, typ: "InvalidInput"},
		{name: "moving to an unreachable port", op: func(s *Store) error {
			_, err := s.UpdateFloatingIP(20, FloatingIPSpec{ID: "f", PortID: str("far")})
			return err
		}, kind: KindNotFound, typ: "ExternalGatewayForFloatingIPNotFound"},
		{name: "a second floating IP for the fixed IP", pre: func(s *Store) error {
			_, err := s.CreateFloatingIP(20, FloatingIPSpec{ID: "f2", HolderPortID: "h2", FloatingNetworkID: str("ext")})
			return err
		}, op: func(s *Store) error {
			_, err := s.UpdateFloatingIP(21, FloatingIPSpec{ID: "f2", PortID: str("vm")})
			return err
		}, kind: KindConflict, typ: "FloatingIPPortAlreadyAssociated"},
		{name: "deleting the holder port", op: func(s *Store) error {
			return s.DeletePort(20, "h")
		}, kind: KindConflict, typ: "PortInUse"},
		{name: "updating an unknown floating IP", op: func(s *Store) error {
			_, err := s.UpdateFloatingIP(20, FloatingIPSpec{ID: "nope", PortID: str("")})
			return err
		}, kind: KindNotFound, typ: "FloatingIPNotFound"},
		{name: "deleting an unknown floating IP", op: func(s *Store) error {
			_, err := s.DeleteFloatingIP(20, "nope")
			return err
		}, kind: KindNotFound, typ: "FloatingIPNotFound"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := associatedStore(t)
			if c.pre != nil {
				if err := c.pre(s); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshotBytes(t, s)
			err := c.op(s)
			if c.typ != "" {
				assertStoreError(t, err, c.kind, c.typ)
				assertUnchanged(t, s, before)
				if f := mustFIP(t, s, "f"); f.PortID != "vm" || f.RouterID != "r" {
					t.Fatalf("f after a refused request: %+v", f)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			f := mustFIP(t, s, "f")
			if got := (assoc{f.PortID, f.FixedIPAddress, f.RouterID, f.Status}); got != c.want {
				t.Fatalf("association %+v, want %+v", got, c.want)
			}
			if f.FloatingIPAddress != "203.0.113.3" || mustPort(t, s, "h").FixedIPs[0].IPAddress != "203.0.113.3" {
				t.Fatalf("the address moved: %+v", f)
			}
		})
	}
}

// TestFloatingIPDelete: deleting a floating IP removes its holder port
// and frees its address; the router then goes.
func TestFloatingIPDelete(t *testing.T) {
	s := associatedStore(t)
	f, err := s.DeleteFloatingIP(20, "f")
	if err != nil || f.ID != "f" || f.FloatingIPAddress != "203.0.113.3" {
		t.Fatalf("deleted %+v %v", f, err)
	}
	assertNoPort(t, s, "h")
	if _, ok := s.FloatingIP("f"); ok || len(s.FloatingIPs()) != 0 {
		t.Fatal("the floating IP is still there")
	}
	g, err := s.CreateFloatingIP(21, FloatingIPSpec{ID: "g", HolderPortID: "hg", FloatingNetworkID: str("ext"), FloatingIPAddress: str("203.0.113.3"), PortID: str("vm")})
	if err != nil || g.FloatingIPAddress != "203.0.113.3" || g.PortID != "vm" || g.Key != 2 {
		t.Fatalf("taking the freed address: %+v %v", g, err)
	}
	if _, err := s.DeleteFloatingIP(22, "g"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveRouterInterface(23, "r", "int4"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRouter(24, "r"); err != nil {
		t.Fatalf("router with no interface and no floating IP: %v", err)
	}
	assertNoPort(t, s, "gw-r")
}

// forwardingStore is externalStore with floating IP f (203.0.113.3),
// not associated, and port forwarding pf1: tcp 8080 → vm (10.0.0.2):80.
func forwardingStore(t *testing.T) *Store {
	t.Helper()
	s := externalStore(t)
	if _, err := s.CreateFloatingIP(10, FloatingIPSpec{ID: "f", HolderPortID: "h", FloatingNetworkID: str("ext")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreatePortForwarding(11, pfSpec("pf1", "tcp", 8080, 80, "10.0.0.2", "vm")); err != nil {
		t.Fatal(err)
	}
	return s
}

func pfSpec(id, proto string, ext, in int, ip, port string) PortForwardingSpec {
	return PortForwardingSpec{FloatingIPID: "f", ID: id, Protocol: &proto, ExternalPort: &ext, InternalPort: &in, InternalIPAddress: &ip, InternalPortID: &port}
}

// TestPortForwardings: port forwardings on a floating IP without a port;
// (protocol, external port) unique per floating IP; ports 1..65535.
func TestPortForwardings(t *testing.T) {
	cases := []struct {
		name string
		spec PortForwardingSpec
		want PortForwarding
		kind Kind
		typ  string
	}{
		{name: "another port", spec: pfSpec("pf2", "udp", 5353, 53, "10.0.0.3", "vm2"),
			want: PortForwarding{ID: "pf2", Protocol: "udp", ExternalPort: 5353, InternalPort: 53, InternalIPAddress: "10.0.0.3", InternalPortID: "vm2"}},
		{name: "the same external port, the other protocol", spec: pfSpec("pf2", "udp", 8080, 80, "10.0.0.2", "vm"),
			want: PortForwarding{ID: "pf2", Protocol: "udp", ExternalPort: 8080, InternalPort: 80, InternalIPAddress: "10.0.0.2", InternalPortID: "vm"}},
		{name: "protocol in capitals, ports at the ends", spec: pfSpec("pf2", "TCP", 65535, 1, "10.0.0.11", "multi"),
			want: PortForwarding{ID: "pf2", Protocol: "tcp", ExternalPort: 65535, InternalPort: 1, InternalIPAddress: "10.0.0.11", InternalPortID: "multi"}},

		{name: "the same protocol and external port", spec: pfSpec("pf2", "tcp", 8080, 81, "10.0.0.3", "vm2"), kind: KindConflict, typ: "PortForwardingInUse"},
		{name: "the same internal address and port", spec: pfSpec("pf2", "tcp", 8081, 80, "10.0.0.2", "vm"), kind: KindConflict, typ: "PortForwardingInUse"},
		{name: "icmp", spec: pfSpec("pf2", "icmp", 8081, 80, "10.0.0.2", "vm"), kind: KindInvalid, typ: "InvalidInput"},
		{name: "external port 0", spec: pfSpec("pf2", "tcp", 0, 80, "10.0.0.2", "vm"), kind: KindInvalid, typ: "InvalidInput"},
		{name: "external port 65536", spec: pfSpec("pf2", "tcp", 65536, 80, "10.0.0.2", "vm"), kind: KindInvalid, typ: "InvalidInput"},
		{name: "internal port 0", spec: pfSpec("pf2", "tcp", 8081, 0, "10.0.0.2", "vm"), kind: KindInvalid, typ: "InvalidInput"},
		{name: "internal port 65536", spec: pfSpec("pf2", "tcp", 8081, 65536, "10.0.0.2", "vm"), kind: KindInvalid, typ: "InvalidInput"},
		{name: "an address the port does not have", spec: pfSpec("pf2", "tcp", 8081, 80, "10.0.0.3", "vm"), kind: KindInvalid, typ: "InvalidInput"},
		{name: "an unknown port", spec: pfSpec("pf2", "tcp", 8081, 80, "10.0.0.2", "nope"), kind: KindNotFound, typ: "PortNotFound"},
		{name: "a router's interface", spec: pfSpec("pf2", "tcp", 8081, 80, "10.0.0.1", "ri"), kind: KindInvalid, typ: "InvalidInput"},
		{name: "a port the network does not reach", spec: pfSpec("pf2", "tcp", 8081, 80, "10.9.0.2", "far"), kind: KindNotFound, typ: "ExternalGatewayForFloatingIPNotFound"},
		{name: "a taken id", spec: pfSpec("pf1", "tcp", 8081, 81, "10.0.0.2", "vm"), kind: KindConflict, typ: "PortForwardingExists"},
		{name: "no id", spec: pfSpec("", "tcp", 8081, 81, "10.0.0.2", "vm"), kind: KindInvalid, typ: "InvalidInput"},
		{name: "no protocol", spec: func() PortForwardingSpec {
			sp := pfSpec("pf2", "tcp", 8081, 81, "10.0.0.2", "vm")
			sp.Protocol = nil
			return sp
		}(),
			kind: KindInvalid, typ: "InvalidInput"},
		{name: "an unknown floating IP", spec: func() PortForwardingSpec {
			sp := pfSpec("pf2", "tcp", 8081, 81, "10.0.0.2", "vm")
			sp.FloatingIPID = "nope"
			return sp
		}(),
			kind: KindNotFound, typ: "FloatingIPNotFound"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := forwardingStore(t)
			before := snapshotBytes(t, s)
			pf, err := s.CreatePortForwarding(20, c.spec)
			if c.typ != "" {
				assertStoreError(t, err, c.kind, c.typ)
				assertUnchanged(t, s, before)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pf != c.want {
				t.Fatalf("port forwarding %+v, want %+v", pf, c.want)
			}
			f := mustFIP(t, s, "f")
			if len(f.PortForwardings) != 2 || f.PortForwardings[1] != c.want || f.RouterID != "r" || f.Status != StatusActive || f.RevisionNumber != 20 {
				t.Fatalf("floating IP %+v", f)
			}
		})
	}
}

// TestPortForwardingExcludesAssociation: a floating IP has port
// forwardings or a port, never both.
func TestPortForwardingExcludesAssociation(t *testing.T) {
	s := forwardingStore(t)
	before := snapshotBytes(t, s)
	_, err := s.UpdateFloatingIP(20, FloatingIPSpec{ID: "f", PortID: str("vm2")})
	assertStoreError(t, err, KindConflict, "FloatingIPPortForwardingInUse")
	assertUnchanged(t, s, before)

	a := associatedStore(t)
	before = snapshotBytes(t, a)
	_, err = a.CreatePortForwarding(20, pfSpec("pf", "tcp", 22, 22, "10.0.0.3", "vm2"))
	assertStoreError(t, err, KindConflict, "FloatingIPPortAlreadyAssociated")
	assertUnchanged(t, a, before)
}

// TestPortForwardingLifecycle: updates keep the uniqueness rules; the
// last port forwarding gone leaves the floating IP as it was made.
func TestPortForwardingLifecycle(t *testing.T) {
	s := forwardingStore(t)
	if _, err := s.CreatePortForwarding(20, pfSpec("pf2", "tcp", 2222, 22, "10.0.0.3", "vm2")); err != nil {
		t.Fatal(err)
	}
	before := snapshotBytes(t, s)
	ext := 8080
	_, err := s.UpdatePortForwarding(21, PortForwardingSpec{FloatingIPID: "f", ID: "pf2", ExternalPort: &ext})
	assertStoreError(t, err, KindConflict, "PortForwardingInUse")
	assertUnchanged(t, s, before)
	_, err = s.UpdatePortForwarding(21, PortForwardingSpec{FloatingIPID: "f", ID: "nope", ExternalPort: &ext})
	assertStoreError(t, err, KindNotFound, "PortForwardingNotFound")
	ext = 2223
	pf, err := s.UpdatePortForwarding(22, PortForwardingSpec{FloatingIPID: "f", ID: "pf2", ExternalPort: &ext})
	if err != nil || pf.ExternalPort != 2223 || pf.InternalPort != 22 || pf.InternalPortID != "vm2" {
		t.Fatalf("updated %+v %v", pf, err)
	}
	if f := mustFIP(t, s, "f"); f.PortForwardings[1] != pf || f.RevisionNumber != 22 {
		t.Fatalf("stored %+v", f.PortForwardings)
	}
	// The interface the forwardings go through is held.
	before = snapshotBytes(t, s)
	_, err = s.RemoveRouterInterface(23, "r", "int4")
	assertStoreError(t, err, KindConflict, "RouterInterfaceInUseByFloatingIP")
	assertUnchanged(t, s, before)
	_, err = s.UpdateRouter(23, RouterSpec{ID: "r", Gateway: &GatewaySpec{Clear: true}})
	assertStoreError(t, err, KindConflict, "RouterExternalGatewayInUseByFloatingIp")
	assertUnchanged(t, s, before)

	// Deleting vm2 drops pf2 only.
	if err := s.DeletePort(24, "vm2"); err != nil {
		t.Fatal(err)
	}
	if f := mustFIP(t, s, "f"); len(f.PortForwardings) != 1 || f.PortForwardings[0].ID != "pf1" || f.RouterID != "r" || f.Status != StatusActive {
		t.Fatalf("after deleting vm2: %+v", f)
	}
	if err := s.DeletePortForwarding(25, "f", "nope"); kindOf(err) != KindNotFound {
		t.Fatalf("deleting an unknown port forwarding: %v", err)
	}
	if err := s.DeletePortForwarding(25, "f", "pf1"); err != nil {
		t.Fatal(err)
	}
	if f := mustFIP(t, s, "f"); len(f.PortForwardings) != 0 || f.RouterID != "" || f.Status != StatusDown {
		t.Fatalf("after its last port forwarding: %+v", f)
	}
	// Now it may take a port, and the interface may go.
	if _, err := s.UpdateFloatingIP(26, FloatingIPSpec{ID: "f", PortID: str("vm")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateFloatingIP(27, FloatingIPSpec{ID: "f", PortID: str("")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveRouterInterface(28, "r", "int4"); err != nil {
		t.Fatal(err)
	}
}

// TestDeletingTheLastForwardedPort: deleting the only port a floating
// IP's forwardings go to leaves it as DeletePortForwarding would: no
// router, DOWN.
func TestDeletingTheLastForwardedPort(t *testing.T) {
	s := forwardingStore(t)
	if got := s.FloatingIPsOfPort("vm"); !reflect.DeepEqual(got, []string{"f"}) {
		t.Fatalf("floating IPs of vm: %v", got)
	}
	if err := s.DeletePort(20, "vm"); err != nil {
		t.Fatal(err)
	}
	if f := mustFIP(t, s, "f"); len(f.PortForwardings) != 0 || f.RouterID != "" || f.Status != StatusDown {
		t.Fatalf("after deleting the forwarded port: %+v", f)
	}
	if _, err := s.RemoveRouterInterface(21, "r", "int4"); err != nil {
		t.Fatalf("the interface is still held: %v", err)
	}
}

// TestPortForwardingAddress: a port forwarding names the address it goes
// to; without one it takes the port's first address, never none (an
// empty address would slip past the interface's guard).
func TestPortForwardingAddress(t *testing.T) {
	s := forwardingStore(t)
	pf, err := s.CreatePortForwarding(20, pfSpec("pf2", "tcp", 2222, 22, "", "multi"))
	if err != nil || pf.InternalIPAddress != "10.0.0.10" {
		t.Fatalf("port forwarding without an address: %+v %v", pf, err)
	}
	if err := s.DeletePortForwarding(21, "f", "pf1"); err != nil {
		t.Fatal(err)
	}
	_, err = s.RemoveRouterInterface(22, "r", "int4")
	assertStoreError(t, err, KindConflict, "RouterInterfaceInUseByFloatingIP")
}

// TestPortForwardingsShareOneRouter: a floating IP is translated by one
// router (its RouterID, which guards that router's interfaces and
// gateway); a port forwarding to a port behind another router is
// refused.
func TestPortForwardingsShareOneRouter(t *testing.T) {
	s := forwardingStore(t)
	mustNet(t, s, "int2", NetworkSpec{})
	mustSubnet(t, s, "int24", "int2", "10.2.0.0/24")
	if _, err := s.CreatePorts(20, []PortSpec{{ID: "vm-b", NetworkID: str("int2")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateRouters(21, []RouterSpec{{ID: "r2", GatewayPortID: "gw-r2", Gateway: &GatewaySpec{NetworkID: "ext"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRouterInterface(22, "r2", "int24", "ri2"); err != nil {
		t.Fatal(err)
	}
	before := snapshotBytes(t, s)
	_, err := s.CreatePortForwarding(23, pfSpec("pf2", "tcp", 2222, 22, "10.2.0.2", "vm-b"))
	assertStoreError(t, err, KindInvalid, "InvalidInput")
	assertUnchanged(t, s, before)
	in := "vm-b"
	ip := "10.2.0.2"
	_, err = s.UpdatePortForwarding(23, PortForwardingSpec{FloatingIPID: "f", ID: "pf1", InternalPortID: &in, InternalIPAddress: &ip})
	if err != nil {
		t.Fatalf("moving the only port forwarding behind another router: %v", err)
	}
	if f := mustFIP(t, s, "f"); f.RouterID != "r2" {
		t.Fatalf("floating IP after its only forwarding moved: %+v", f)
	}
	if _, err := s.RemoveRouterInterface(24, "r", "int4"); err != nil {
		t.Fatalf("r's interface after the forwarding moved away: %v", err)
	}
	_, err = s.RemoveRouterInterface(25, "r2", "int24")
	assertStoreError(t, err, KindConflict, "RouterInterfaceInUseByFloatingIP")
}

// TestLearnNeighbour: changed is true only when the MAC is new.
