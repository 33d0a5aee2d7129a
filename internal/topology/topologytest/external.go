package topologytest

import (
	"fmt"
	"testing"

	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
)

// PhysicalPort is the patch port to physnet1 on every fixture bridge.
const PhysicalPort = 102

// External is Routed with a way out: every chassis maps physical network
// physnet1 (hv3 is also a gateway chassis); network EXT (flat on physnet1,
// router:external, 203.0.113.0/24, gateway 203.0.113.1) is R's gateway
// network; network V (vlan 100 on physnet1, 10.2.0.0/24) joins R at
// 10.2.0.1, with port v1 on hv2; floating IP F1 (203.0.113.20) is a1's;
// and the outside router 203.0.113.1 is known at 02:00:00:00:00:01.
func External(t testing.TB) *Fixture {
	t.Helper()
	f := Routed(t)
	for n, c := range []string{"hv1", "hv2", "hv3"} {
		f.must(t, func(i uint64) error {
			_, err := f.Store.RegisterChassis(i, topology.ChassisSpec{Name: c, EncapIP: fmt.Sprintf("172.31.0.%d", n+1),
				Encaps: []string{topology.TypeVXLAN, topology.TypeGRE}, DatapathID: fmt.Sprintf("%016x", n+1),
				BridgeMappings: map[string]string{"physnet1": "br-ex"}, Gateway: c == "hv3"})
			return err
		})
	}
	flat, vlan, yes, vid := topology.TypeFlat, topology.TypeVLAN, true, uint32(100)
	f.must(t, func(i uint64) error {
		_, err := f.Store.CreateNetworks(i, []topology.NetworkSpec{
			{ID: "EXT", Name: str("EXT"), NetworkType: &flat, PhysicalNetwork: str("physnet1"), External: &yes},
			{ID: "V", Name: str("V"), NetworkType: &vlan, PhysicalNetwork: str("physnet1"), SegmentationID: &vid}})
		return err
	})
	f.must(t, func(i uint64) error {
		_, err := f.Store.CreateSubnets(i, []topology.SubnetSpec{
			{ID: "EXT4", NetworkID: str("EXT"), CIDR: str("203.0.113.0/24")},
			{ID: "V4", NetworkID: str("V"), CIDR: str("10.2.0.0/24")}})
		return err
	})
	f.must(t, func(i uint64) error {
		_, err := f.Store.AddRouterInterface(i, "R", "V4", "R-V4")
		return err
	})
	f.must(t, func(i uint64) error {
		_, err := f.Store.UpdateRouter(i, topology.RouterSpec{ID: "R", Gateway: &topology.GatewaySpec{NetworkID: "EXT"},
			GatewayPortID: "R-gw"})
		return err
	})
	f.AddPorts(t, Port{"v1", "V", "hv2", 4})
	f.must(t, func(i uint64) error {
		_, err := f.Store.CreateFloatingIP(i, topology.FloatingIPSpec{ID: "F1", HolderPortID: "F1-holder",
			FloatingNetworkID: str("EXT"), FloatingIPAddress: str("203.0.113.20"), PortID: str("a1")})
		return err
	})
	f.must(t, func(i uint64) error {
		_, err := f.Store.LearnNeighbour(i, topology.Neighbour{NetworkID: "EXT", IP: "203.0.113.1", MAC: "02:00:00:00:00:01"})
		return err
	})
	return f
}

// ExternalBridge is the facts of an External fixture chassis' bridge.
func ExternalBridge(chassis string) view.Bridge {
	br := Bridge(chassis)
	br.PhysicalPorts = map[string]uint32{"physnet1": PhysicalPort}
	return br
}

// Do applies one store operation at the fixture's next index.
func (f *Fixture) Do(t testing.TB, op func(index uint64) error) { t.Helper(); f.must(t, op) }
