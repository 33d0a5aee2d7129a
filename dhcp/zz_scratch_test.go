package dhcp_test

import (
	"testing"

	"github.com/wyvern-sdn/wyvern/dhcp"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

func TestScratch(t *testing.T) {
	f := newFixture(t)
	f.must(t, func(i uint64) error {
		_, err := f.Store.CreateSubnets(i, []topology.SubnetSpec{{ID: "M4b", NetworkID: str("M"), CIDR: str("10.89.0.0/24")}})
		return err
	})
	f.must(t, func(i uint64) error {
		_, err := f.Store.CreatePorts(i, []topology.PortSpec{portSpec("m2", "M", "02:00:00:aa:bb:16", "10.89.0.10")})
		return err
	})
	f.Rebind(t)(topologytest.Port{ID: "m2", Network: "M", Chassis: "hv1", OFPort: 16})
	v := f.View()
	for _, fl := range arpFlows((dhcp.App{}).Flows(v, topologytest.Bridge("hv1"))) {
		t.Log(fl)
	}
	l := requestLease(t, (dhcp.App{}).Flows(v, topologytest.Bridge("hv1")), mustPort(t, v, "m2"), a("10.89.0.1"))
	t.Logf("%+v %v", l.opts, l.mac)
	f.must(t, func(i uint64) error {
		_, err := f.Store.UpdatePort(i, topology.PortSpec{ID: "v2", ExtraDHCPOpts: &[]topology.ExtraDHCPOpt{{OptName: "lease-time", OptValue: "3600"}, {OptName: "26", OptValue: "1400"}}})
		return err
	})
	v = f.View()
	l = requestLease(t, (dhcp.App{}).Flows(v, topologytest.Bridge("hv1")), mustPort(t, v, "v2"), a("10.77.0.1"))
	t.Logf("%+v", l.opts)
	out, err := dhcp.Answer(l.data, readHex(t, "dhclient_discover"))
	r := decodeReply(t, out)
	t.Logf("%v lease %x T1 %x T2 %x mtu %x", err, r.opts[51], r.opts[58], r.opts[59], r.opts[26])
	_ = of.Flow{}
}
