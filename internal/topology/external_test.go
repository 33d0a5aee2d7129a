package topology

import (
	"bytes"
	"reflect"
	"testing"
)

func boolp(v bool) *bool { return &v }

// externalStore builds:
//   - ext: external flat network on physnet "public", subnet ext4
//     203.0.113.0/24 (pool .2-.254);
//   - ext2: external vxlan network, subnet ext24 198.51.100.0/24;
//   - int: subnet int4 10.0.0.0/24 with ports vm (10.0.0.2), vm2
//     (10.0.0.3) and multi (10.0.0.10 and 10.0.0.11);
//   - lonely: subnet lonely4 10.9.0.0/24 with port far (10.9.0.2), on
//     router rl, which has no gateway;
//   - router r: gateway on ext (port gw-r, 203.0.113.2), interface ri on
//     int4 (10.0.0.1).
func externalStore(t *testing.T) *Store {
	t.Helper()
	s := New()
	mustNet(t, s, "ext", NetworkSpec{NetworkType: str(TypeFlat), PhysicalNetwork: str("public"), External: boolp(true)})
	mustNet(t, s, "ext2", NetworkSpec{External: boolp(true)})
	mustNet(t, s, "int", NetworkSpec{})
	mustNet(t, s, "lonely", NetworkSpec{})
	mustSubnet(t, s, "ext4", "ext", "203.0.113.0/24")
	mustSubnet(t, s, "ext24", "ext2", "198.51.100.0/24")
	mustSubnet(t, s, "int4", "int", "10.0.0.0/24")
	mustSubnet(t, s, "lonely4", "lonely", "10.9.0.0/24")
	if _, err := s.CreatePorts(3, []PortSpec{{ID: "vm", NetworkID: str("int")}, {ID: "vm2", NetworkID: str("int")},
		{ID: "multi", NetworkID: str("int"), FixedIPs: &[]FixedIPSpec{{IPAddress: "10.0.0.10"}, {IPAddress: "10.0.0.11"}}},
		{ID: "far", NetworkID: str("lonely")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateRouters(4, []RouterSpec{{ID: "r", Gateway: &GatewaySpec{NetworkID: "ext"}, GatewayPortID: "gw-r"}, {ID: "rl"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRouterInterface(5, "r", "int4", "ri"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRouterInterface(6, "rl", "lonely4", "ril"); err != nil {
		t.Fatal(err)
	}
	return s
}

func mustPort(t *testing.T, s *Store, id string) Port {
	t.Helper()
	p, ok := s.Port(id)
	if !ok {
		t.Fatalf("port %s does not exist", id)
	}
	return p
}

func assertNoPort(t *testing.T, s *Store, id string) {
	t.Helper()
	if p, ok := s.Port(id); ok {
		t.Fatalf("port %s still exists: %+v", id, p)
	}
}

func mustRouter(t *testing.T, s *Store, id string) Router {
	t.Helper()
	r, ok := s.Router(id)
	if !ok {
		t.Fatalf("router %s does not exist", id)
	}
	return r
}

func mustFIP(t *testing.T, s *Store, id string) FloatingIP {
	t.Helper()
	f, ok := s.FloatingIP(id)
	if !ok {
		t.Fatalf("floating IP %s does not exist", id)
	}
	return f
}

// assertGatewayPort checks a router's gateway and the port holding it.
func assertGatewayPort(t *testing.T, s *Store, router, port, network string, snat bool, fixed ...FixedIP) {
	t.Helper()
	r := mustRouter(t, s, router)
	want := &ExternalGateway{NetworkID: network, EnableSNAT: snat, ExternalFixedIPs: fixed}
	if r.GatewayPortID != port || !reflect.DeepEqual(r.ExternalGateway, want) {
		t.Fatalf("router %s: gateway port %q %+v; want %q %+v", router, r.GatewayPortID, r.ExternalGateway, port, want)
	}
	p := mustPort(t, s, port)
	if p.NetworkID != network || p.DeviceOwner != OwnerRouterGateway || p.DeviceID != router || p.Status != StatusActive ||
		!reflect.DeepEqual(p.FixedIPs, fixed) {
		t.Fatalf("gateway port %+v", p)
	}
}

// assertAddressFree checks that an address of a subnet can be taken by a
// new port (on a throwaway copy of the store).
func assertAddressFree(t *testing.T, s *Store, network, ip string) {
	t.Helper()
	c, err := ReadSnapshot(bytes.NewReader(snapshotBytes(t, s)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreatePorts(99, []PortSpec{{ID: "probe", NetworkID: &network, FixedIPs: &[]FixedIPSpec{{IPAddress: ip}}}}); err != nil {
		t.Fatalf("address %s is not free: %v", ip, err)
	}
}

func TestExternalFixture(t *testing.T) {
	s := externalStore(t)
	assertGatewayPort(t, s, "r", "gw-r", "ext", true, FixedIP{"ext4", "203.0.113.2"})
	if r := mustRouter(t, s, "rl"); r.ExternalGateway != nil || r.GatewayPortID != "" {
		t.Fatalf("router without a gateway: %+v", r)
	}
	if ips := mustPort(t, s, "vm").FixedIPs; ips[0].IPAddress != "10.0.0.2" {
		t.Fatalf("vm %v", ips)
	}
}

// TestRouterGateway: setting, changing and clearing a router's gateway
// creates, replaces and removes its port; a rejected request changes
// nothing.
func TestRouterGateway(t *testing.T) {
	cases := []struct {
		name  string
		op    func(s *Store) error
		kind  Kind
		typ   string
		check func(t *testing.T, s *Store)
	}{
		{
			name: "on create, the next free address",
			op: func(s *Store) error {
				_, err := s.CreateRouters(10, []RouterSpec{{ID: "r2", Gateway: &GatewaySpec{NetworkID: "ext"}, GatewayPortID: "gw-r2"}})
				return err
			},
			check: func(t *testing.T, s *Store) {
				assertGatewayPort(t, s, "r2", "gw-r2", "ext", true, FixedIP{"ext4", "203.0.113.3"})
			},
		},
		{
			name: "on create, a requested address, without SNAT",
			op: func(s *Store) error {
				_, err := s.CreateRouters(10, []RouterSpec{{ID: "r2", GatewayPortID: "gw-r2",
					Gateway: &GatewaySpec{NetworkID: "ext", EnableSNAT: boolp(false), FixedIPs: &[]FixedIPSpec{{SubnetID: "ext4", IPAddress: "203.0.113.200"}}}}})
				return err
			},
			check: func(t *testing.T, s *Store) {
				assertGatewayPort(t, s, "r2", "gw-r2", "ext", false, FixedIP{"ext4", "203.0.113.200"})
			},
		},
		{
			name: "another address replaces the port",
			op: func(s *Store) error {
				_, err := s.UpdateRouter(10, RouterSpec{ID: "r", GatewayPortID: "gw-r-b",
					Gateway: &GatewaySpec{NetworkID: "ext", FixedIPs: &[]FixedIPSpec{{IPAddress: "203.0.113.50"}}}})
				return err
			},
			check: func(t *testing.T, s *Store) {
				assertGatewayPort(t, s, "r", "gw-r-b", "ext", true, FixedIP{"ext4", "203.0.113.50"})
				assertNoPort(t, s, "gw-r")
				assertAddressFree(t, s, "ext", "203.0.113.2")
			},
		},
		{
			name: "the port's own address, asked for again",
			op: func(s *Store) error {
				_, err := s.UpdateRouter(10, RouterSpec{ID: "r", GatewayPortID: "gw-r-b",
					Gateway: &GatewaySpec{NetworkID: "ext", FixedIPs: &[]FixedIPSpec{{IPAddress: "203.0.113.2"}}}})
				return err
			},
			check: func(t *testing.T, s *Store) {
				assertGatewayPort(t, s, "r", "gw-r-b", "ext", true, FixedIP{"ext4", "203.0.113.2"})
				assertNoPort(t, s, "gw-r")
			},
		},
		{
			name: "another network replaces the port",
			op: func(s *Store) error {
				_, err := s.UpdateRouter(10, RouterSpec{ID: "r", GatewayPortID: "gw-r-2", Gateway: &GatewaySpec{NetworkID: "ext2"}})
				return err
			},
			check: func(t *testing.T, s *Store) {
				assertGatewayPort(t, s, "r", "gw-r-2", "ext2", true, FixedIP{"ext24", "198.51.100.2"})
				assertNoPort(t, s, "gw-r")
				assertAddressFree(t, s, "ext", "203.0.113.2")
			},
		},
		{
			name: "enable_snat alone keeps the port",
			op: func(s *Store) error {
				_, err := s.UpdateRouter(10, RouterSpec{ID: "r", GatewayPortID: "unused", Gateway: &GatewaySpec{NetworkID: "ext", EnableSNAT: boolp(false)}})
				return err
			},
			check: func(t *testing.T, s *Store) {
				assertGatewayPort(t, s, "r", "gw-r", "ext", false, FixedIP{"ext4", "203.0.113.2"})
				assertNoPort(t, s, "unused")
			},
		},
		{
			name: "no gateway field keeps the gateway",
			op: func(s *Store) error {
				_, err := s.UpdateRouter(10, RouterSpec{ID: "r", Name: str("renamed")})
				return err
			},
			check: func(t *testing.T, s *Store) {
				assertGatewayPort(t, s, "r", "gw-r", "ext", true, FixedIP{"ext4", "203.0.113.2"})
			},
		},
		{
			name: "clear removes the port",
			op: func(s *Store) error {
				_, err := s.UpdateRouter(10, RouterSpec{ID: "r", Gateway: &GatewaySpec{Clear: true}})
				return err
			},
			check: func(t *testing.T, s *Store) {
				if r := mustRouter(t, s, "r"); r.ExternalGateway != nil || r.GatewayPortID != "" {
					t.Fatalf("router after clearing its gateway: %+v", r)
				}
				assertNoPort(t, s, "gw-r")
				assertAddressFree(t, s, "ext", "203.0.113.2")
			},
		},
		{
			name: "clearing no gateway is a no-op",
			op: func(s *Store) error {
				_, err := s.UpdateRouter(10, RouterSpec{ID: "rl", Gateway: &GatewaySpec{Clear: true}})
				return err
			},
			check: func(t *testing.T, s *Store) {
				if r := mustRouter(t, s, "rl"); r.ExternalGateway != nil || r.GatewayPortID != "" || r.RevisionNumber != 10 {
					t.Fatalf("router %+v", r)
				}
			},
		},
		{
			name: "deleting the router removes the port",
			op: func(s *Store) error {
				if _, err := s.RemoveRouterInterface(10, "r", "int4"); err != nil {
					return err
				}
				return s.DeleteRouter(11, "r")
			},
			check: func(t *testing.T, s *Store) {
				assertNoPort(t, s, "gw-r")
				assertNoPort(t, s, "ri")
				assertAddressFree(t, s, "ext", "203.0.113.2")
				if _, err := s.DeleteNetwork(12, "ext"); err != nil {
					t.Fatalf("the external network still has ports: %v", err)
				}
			},
		},

		{
			name: "a network that is not external",
			op: func(s *Store) error {
				_, err := s.UpdateRouter(10, RouterSpec{ID: "rl", GatewayPortID: "gw-rl", Gateway: &GatewaySpec{NetworkID: "int"}})
				return err
			},
			kind: KindInvalid, typ: "InvalidInput",
		},
		{
			name: "a network that is not external, on create",
			op: func(s *Store) error {
				_, err := s.CreateRouters(10, []RouterSpec{{ID: "r2", GatewayPortID: "gw-r2", Gateway: &GatewaySpec{NetworkID: "lonely"}}})
				return err
			},
			kind: KindInvalid, typ: "InvalidInput",
		},
		{
			name: "an unknown network",
			op: func(s *Store) error {
				_, err := s.UpdateRouter(10, RouterSpec{ID: "rl", GatewayPortID: "gw-rl", Gateway: &GatewaySpec{NetworkID: "nope"}})
				return err
			},
			kind: KindNotFound, typ: "NetworkNotFound",
		},
		{
			name: "an address another router's gateway holds",
			op: func(s *Store) error {
				_, err := s.CreateRouters(10, []RouterSpec{{ID: "r2", GatewayPortID: "gw-r2",
					Gateway: &GatewaySpec{NetworkID: "ext", FixedIPs: &[]FixedIPSpec{{IPAddress: "203.0.113.2"}}}}})
				return err
			},
			kind: KindConflict, typ: "IpAddressInUse",
		},
		{
			name: "an address off the network",
			op: func(s *Store) error {
				_, err := s.UpdateRouter(10, RouterSpec{ID: "r", GatewayPortID: "gw-r-b",
					Gateway: &GatewaySpec{NetworkID: "ext", FixedIPs: &[]FixedIPSpec{{IPAddress: "10.0.0.50"}}}})
				return err
			},
			kind: KindConflict, typ: "InvalidIpForNetwork",
		},
		{
			name: "a new port without an id",
			op: func(s *Store) error {
				_, err := s.UpdateRouter(10, RouterSpec{ID: "r", Gateway: &GatewaySpec{NetworkID: "ext2"}})
				return err
			},
			kind: KindInvalid, typ: "InvalidInput",
		},
		{
			name: "a new port with a taken id",
			op: func(s *Store) error {
				_, err := s.UpdateRouter(10, RouterSpec{ID: "r", GatewayPortID: "vm", Gateway: &GatewaySpec{NetworkID: "ext2"}})
				return err
			},
			kind: KindConflict, typ: "PortExists",
		},
		{
			name: "deleting the gateway port",
			op:   func(s *Store) error { return s.DeletePort(10, "gw-r") },
			kind: KindConflict, typ: "PortInUse",
		},
		{
			name: "readdressing the gateway port",
			op: func(s *Store) error {
				_, err := s.UpdatePort(10, PortSpec{ID: "gw-r", FixedIPs: &[]FixedIPSpec{{IPAddress: "203.0.113.9"}}})
				return err
			},
			kind: KindConflict, typ: "PortInUse",
		},
		{
			name: "a port made a gateway port",
			op: func(s *Store) error {
				_, err := s.CreatePorts(10, []PortSpec{{ID: "fake", NetworkID: str("ext"), DeviceOwner: str(OwnerRouterGateway), DeviceID: str("r")}})
				return err
			},
			kind: KindInvalid, typ: "InvalidInput",
		},
		{
			name: "bulk create: a later router's gateway is refused",
			op: func(s *Store) error {
				_, err := s.CreateRouters(10, []RouterSpec{{ID: "r2", GatewayPortID: "gw-r2", Gateway: &GatewaySpec{NetworkID: "ext"}},
					{ID: "r3", GatewayPortID: "gw-r3", Gateway: &GatewaySpec{NetworkID: "int"}}})
				return err
			},
			kind: KindInvalid, typ: "InvalidInput",
		},
		{
			name: "bulk create: a later router's id is taken",
			op: func(s *Store) error {
				_, err := s.CreateRouters(10, []RouterSpec{{ID: "r2", GatewayPortID: "gw-r2", Gateway: &GatewaySpec{NetworkID: "ext"}}, {ID: "r"}})
				return err
			},
			kind: KindConflict, typ: "RouterExists",
		},
		{
			name: "unsetting router:external under a gateway",
			op: func(s *Store) error {
				_, err := s.UpdateNetwork(10, NetworkSpec{ID: "ext", External: boolp(false)})
				return err
			},
			kind: KindConflict, typ: "ExternalNetworkInUse",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := externalStore(t)
			before := snapshotBytes(t, s)
			err := c.op(s)
			if c.typ != "" {
				assertStoreError(t, err, c.kind, c.typ)
				assertUnchanged(t, s, before)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, s)
		})
	}
}

// TestUnsettingExternal: router:external can be unset once no gateway
// and no floating IP uses the network.
func TestUnsettingExternal(t *testing.T) {
	s := externalStore(t)
	if _, err := s.UpdateNetwork(10, NetworkSpec{ID: "ext2", External: boolp(false)}); err != nil {
		t.Fatalf("unused external network: %v", err)
	}
	if _, err := s.CreateFloatingIP(11, FloatingIPSpec{ID: "f", HolderPortID: "h", FloatingNetworkID: str("ext")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateRouter(12, RouterSpec{ID: "r", Gateway: &GatewaySpec{Clear: true}}); err != nil {
		t.Fatal(err)
	}
	before := snapshotBytes(t, s)
	_, err := s.UpdateNetwork(13, NetworkSpec{ID: "ext", External: boolp(false)})
	assertStoreError(t, err, KindConflict, "ExternalNetworkInUse")
	assertUnchanged(t, s, before)
	if _, err := s.DeleteFloatingIP(14, "f"); err != nil {
		t.Fatal(err)
	}
	n, err := s.UpdateNetwork(15, NetworkSpec{ID: "ext", External: boolp(false)})
	if err != nil || n.External {
		t.Fatalf("unsetting router:external of an unused network: %+v %v", n, err)
	}
	_, err = s.UpdateRouter(16, RouterSpec{ID: "r", GatewayPortID: "gw", Gateway: &GatewaySpec{NetworkID: "ext"}})
	assertStoreError(t, err, KindInvalid, "InvalidInput")
}

// TestRouterStaticRoutes: a static route's next hop must be on a subnet
// the router is connected to, through an interface or its gateway.
func TestRouterStaticRoutes(t *testing.T) {
	routes := func(rs ...HostRoute) *[]HostRoute { return &rs }
	cases := []struct {
		name   string
		op     func(s *Store) (Router, error)
		kind   Kind
		typ    string
		routes []HostRoute // the router's routes after a success
	}{
		{
			name: "next hop on an interface's subnet, destination masked",
			op: func(s *Store) (Router, error) {
				return s.UpdateRouter(10, RouterSpec{ID: "r", Routes: routes(HostRoute{"192.168.7.9/16", "10.0.0.254"})})
			},
			routes: []HostRoute{{"192.168.0.0/16", "10.0.0.254"}},
		},
		{
			name: "next hop on the gateway's subnet",
			op: func(s *Store) (Router, error) {
				return s.UpdateRouter(10, RouterSpec{ID: "r", Routes: routes(HostRoute{"0.0.0.0/0", "203.0.113.1"})})
			},
			routes: []HostRoute{{"0.0.0.0/0", "203.0.113.1"}},
		},
		{
			name: "duplicates collapse",
			op: func(s *Store) (Router, error) {
				return s.UpdateRouter(10, RouterSpec{ID: "r", Routes: routes(HostRoute{"172.16.0.0/12", "10.0.0.9"},
					HostRoute{"172.16.0.1/12", "10.0.0.9"}, HostRoute{"172.16.0.0/12", "10.0.0.8"})})
			},
			routes: []HostRoute{{"172.16.0.0/12", "10.0.0.9"}, {"172.16.0.0/12", "10.0.0.8"}},
		},
		{
			name: "an empty list clears them",
			op: func(s *Store) (Router, error) {
				if _, err := s.UpdateRouter(10, RouterSpec{ID: "r", Routes: routes(HostRoute{"0.0.0.0/0", "203.0.113.1"})}); err != nil {
					return Router{}, err
				}
				return s.UpdateRouter(11, RouterSpec{ID: "r", Routes: routes()})
			},
			routes: []HostRoute{},
		},
		{
			name: "on create, through the new gateway",
			op: func(s *Store) (Router, error) {
				out, err := s.CreateRouters(10, []RouterSpec{{ID: "r2", GatewayPortID: "gw-r2", Gateway: &GatewaySpec{NetworkID: "ext2"},
					Routes: routes(HostRoute{"0.0.0.0/0", "198.51.100.1"})}})
				if err != nil {
					return Router{}, err
				}
				return out[0], nil
			},
			routes: []HostRoute{{"0.0.0.0/0", "198.51.100.1"}},
		},

		{
			name: "next hop on no connected subnet",
			op: func(s *Store) (Router, error) {
				return s.UpdateRouter(10, RouterSpec{ID: "r", Routes: routes(HostRoute{"0.0.0.0/0", "10.9.0.1"})})
			},
			kind: KindInvalid, typ: "InvalidInput",
		},
		{
			name: "destination not a CIDR",
			op: func(s *Store) (Router, error) {
				return s.UpdateRouter(10, RouterSpec{ID: "r", Routes: routes(HostRoute{"default", "10.0.0.9"})})
			},
			kind: KindInvalid, typ: "InvalidInput",
		},
		{
			name: "next hop not IPv4",
			op: func(s *Store) (Router, error) {
				return s.UpdateRouter(10, RouterSpec{ID: "r", Routes: routes(HostRoute{"0.0.0.0/0", "fe80::1"})})
			},
			kind: KindInvalid, typ: "InvalidInput",
		},
		{
			name: "on create, with no subnet at all",
			op: func(s *Store) (Router, error) {
				out, err := s.CreateRouters(10, []RouterSpec{{ID: "r2", Routes: routes(HostRoute{"0.0.0.0/0", "10.0.0.9"})}})
				return routerOrZero(out), err
			},
			kind: KindInvalid, typ: "InvalidInput",
		},
		{
			name: "on create, not through the new gateway",
			op: func(s *Store) (Router, error) {
				out, err := s.CreateRouters(10, []RouterSpec{{ID: "r2", GatewayPortID: "gw-r2", Gateway: &GatewaySpec{NetworkID: "ext"},
					Routes: routes(HostRoute{"0.0.0.0/0", "198.51.100.1"})}})
				return routerOrZero(out), err
			},
			kind: KindInvalid, typ: "InvalidInput",
		},
		{
			name: "a gateway change with a route it cannot carry",
			op: func(s *Store) (Router, error) {
				return s.UpdateRouter(10, RouterSpec{ID: "r", GatewayPortID: "gw-r-2", Gateway: &GatewaySpec{NetworkID: "ext2"},
					Routes: routes(HostRoute{"0.0.0.0/0", "203.0.113.1"})})
			},
			kind: KindInvalid, typ: "InvalidInput",
		},
		{
			name: "enable_snat with a route it cannot carry",
			op: func(s *Store) (Router, error) {
				return s.UpdateRouter(10, RouterSpec{ID: "r", Gateway: &GatewaySpec{NetworkID: "ext", EnableSNAT: boolp(false)},
					Routes: routes(HostRoute{"0.0.0.0/0", "10.9.0.1"})})
			},
			kind: KindInvalid, typ: "InvalidInput",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := externalStore(t)
			before := snapshotBytes(t, s)
			r, err := c.op(s)
			if c.typ != "" {
				assertStoreError(t, err, c.kind, c.typ)
				assertUnchanged(t, s, before)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.Routes, c.routes) {
				t.Fatalf("routes %v, want %v", r.Routes, c.routes)
			}
			if stored := mustRouter(t, s, r.ID); !reflect.DeepEqual(stored.Routes, c.routes) {
				t.Fatalf("stored routes %v, want %v", stored.Routes, c.routes)
			}
		})
	}
}

func routerOrZero(rs []Router) Router {
	if len(rs) == 0 {
		return Router{}
	}
	return rs[0]
}

// TestRoutesHoldTheirSubnets: the interface or gateway a route's next
// hop is reached through cannot go while the route is there.
func TestRoutesHoldTheirSubnets(t *testing.T) {
	cases := []struct {
		name  string
		route HostRoute
		op    func(s *Store) error
		kind  Kind
		typ   string
	}{
		{"the interface", HostRoute{"192.168.0.0/16", "10.0.0.254"}, func(s *Store) error {
			_, err := s.RemoveRouterInterface(20, "r", "int4")
			return err
		}, KindConflict, "RouterInterfaceInUseByRoute"},
		{"the gateway, cleared", HostRoute{"0.0.0.0/0", "203.0.113.1"}, func(s *Store) error {
			_, err := s.UpdateRouter(20, RouterSpec{ID: "r", Gateway: &GatewaySpec{Clear: true}})
			return err
		}, KindInvalid, "InvalidInput"},
		{"the gateway, moved to another network", HostRoute{"0.0.0.0/0", "203.0.113.1"}, func(s *Store) error {
			_, err := s.UpdateRouter(20, RouterSpec{ID: "r", GatewayPortID: "gw-r-2", Gateway: &GatewaySpec{NetworkID: "ext2"}})
			return err
		}, KindInvalid, "InvalidInput"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := externalStore(t)
			if _, err := s.UpdateRouter(10, RouterSpec{ID: "r", Routes: &[]HostRoute{c.route}}); err != nil {
				t.Fatal(err)
			}
			before := snapshotBytes(t, s)
			assertStoreError(t, c.op(s), c.kind, c.typ)
			assertUnchanged(t, s, before)
			assertGatewayPort(t, s, "r", "gw-r", "ext", true, FixedIP{"ext4", "203.0.113.2"})
		})
	}
}

// TestFloatingIPCreate: a floating IP's address is held by a port of its
// own on the external network; an association finds the router between
// the port's subnet and that network. A refused create changes nothing.
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
