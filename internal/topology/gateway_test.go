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
