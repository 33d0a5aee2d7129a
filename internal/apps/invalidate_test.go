package apps

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

func formatMods(mods []of.FlowMod) string {
	var s []string
	for _, m := range mods {
		s = append(s, m.Flow.Format(nil)+" mask="+pipeline.Cookie(m.CookieMask).String())
	}
	return strings.Join(s, "\n")
}

// TestInvalidations: which reactive flows each kind of change deletes.
func TestInvalidations(t *testing.T) {
	f := topologytest.Routed(t)
	step := func(change func(), ch ...topology.Change) string {
		before := view.Build(f.Store)
		change()
		return formatMods(New(pipeline.Reactive).Invalidates(before, view.Build(f.Store), ch))
	}
	pair := func(ip string) *[]topology.AddressPair { return &[]topology.AddressPair{{IPAddress: ip}} }

	// a1 alone holds 10.0.0.100: routes and ARP answers name a1. When a3
	// claims it too, the address changes hands: what named a1 for it goes,
	// by address, although a1 itself did not change.
	if _, err := f.Store.UpdatePort(1000, topology.PortSpec{ID: "a1", AllowedAddressPairs: pair("10.0.0.100")}); err != nil {
		t.Fatal(err)
	}
	got := step(func() {
		if _, err := f.Store.UpdatePort(1001, topology.PortSpec{ID: "a3", AllowedAddressPairs: pair("10.0.0.100")}); err != nil {
			t.Fatal(err)
		}
	}, topology.Change{Resource: "port", ID: "a3"})
	for _, want := range []string{tbl(pipeline.L3Lookup) + ", priority=0,ip,nw_dst=10.0.0.100", tbl(pipeline.ARPResponder) + ", priority=0,arp,metadata=0x1,arp_tpa=10.0.0.100"} {
		if !strings.Contains(got, want) {
			t.Errorf("a3 claiming a1's address: no delete %q in\n%s", want, got)
		}
	}
	// A rename changes no flow; removing an interface deletes the
	// router's routes by reg5 and its gateway answers.
	if got := step(func() {
		name := "renamed"
		if _, err := f.Store.UpdateRouter(1002, topology.RouterSpec{ID: "R", Name: &name}); err != nil {
			t.Fatal(err)
		}
	}, topology.Change{Resource: "router", ID: "R"}); got != "" {
		t.Errorf("a router rename deletes:\n%s", got)
	}
	before := view.Build(f.Store)
	f.RemoveRouterInterface(t, "R", "B4")
	mods := New(pipeline.Reactive).Invalidates(before, view.Build(f.Store), []topology.Change{{Resource: "router", ID: "R"}})
	got = formatMods(mods)
	if !strings.Contains(got, tbl(pipeline.L3Lookup)+", priority=0,reg5=0x1") || strings.Count(got, tbl(pipeline.ARPResponder)+",") != 2 {
		t.Errorf("R leaving B4 deletes:\n%s", got)
	}
	for _, m := range mods {
		// Narrowed to dvr's routes a punt installed: the reconciler's
		// echo answers and TTL guard (router and no object) stay, and so
		// do the reconciled routes to ports plugged here.
		if m.Flow.Table == pipeline.Table(pipeline.L3Lookup) &&
			(m.CookieMask != pipeline.AppMask|pipeline.KindMask|pipeline.OnDemandMask ||
				pipeline.Cookie(m.Flow.Cookie).Kind() != pipeline.KindPort || !pipeline.Cookie(m.Flow.Cookie).OnDemand()) {
			t.Errorf("a route delete not narrowed to per-destination flows: %s", m.Flow.Format(nil))
		}
	}
	// hv3 moves its tunnel endpoint: what tunnels to b2 there goes.
	b2, _ := f.Store.Port("b2")
	got = step(func() {
		if _, err := f.Store.RegisterChassis(1004, topology.ChassisSpec{Name: "hv3", EncapIP: "172.31.0.33",
			Encaps: []string{topology.TypeVXLAN, topology.TypeGRE}}); err != nil {
			t.Fatal(err)
		}
	}, topology.Change{Resource: "chassis", ID: "hv3"})
	obj := fmt.Sprintf("cookie=%#x, %s", pipeline.NewCookie(0, pipeline.AppTunnels, pipeline.PortObject(b2.Key))|pipeline.OnDemandMask, tbl(pipeline.Egress))
	if !strings.Contains(got, obj) || !strings.Contains(got, tbl(pipeline.L3Lookup)+",") {
		t.Errorf("hv3's new endpoint: want b2's Egress (%s) and routes deleted, got\n%s", obj, got)
	}
	if got := step(func() {}, topology.Change{Resource: "chassis", ID: "hv3"}); got != "" {
		t.Errorf("a chassis refresh with the same endpoint deletes:\n%s", got)
	}
}

// TestInvalidationsByMACAndGateway: a pair MAC becoming shared deletes the
// L2Lookup flow that switched it to its first holder; a router joining a
// subnet whose gateway a port's pair held deletes that port's answer for
// it, by address.
func TestInvalidationsByMACAndGateway(t *testing.T) {
	f := topologytest.ThreeChassis(t)
	step := func(change func(), ch ...topology.Change) string {
		before := view.Build(f.Store)
		change()
		return formatMods(New(pipeline.Reactive).Invalidates(before, view.Build(f.Store), ch))
	}
	vrrp := func(ip string) *[]topology.AddressPair {
		return &[]topology.AddressPair{{IPAddress: ip, MACAddress: "00:00:5e:00:01:07"}}
	}
	if _, err := f.Store.UpdatePort(1000, topology.PortSpec{ID: "a1", AllowedAddressPairs: vrrp("10.0.0.100")}); err != nil {
		t.Fatal(err)
	}
	got := step(func() {
		if _, err := f.Store.UpdatePort(1001, topology.PortSpec{ID: "a3", AllowedAddressPairs: vrrp("10.0.0.100")}); err != nil {
			t.Fatal(err)
		}
	}, topology.Change{Resource: "port", ID: "a3"})
	if !strings.Contains(got, tbl(pipeline.L2Lookup)+", priority=0,metadata=0x1,dl_dst=00:00:5e:00:01:07") {
		t.Errorf("a3 sharing a1's pair MAC: no L2Lookup delete by MAC in\n%s", got)
	}
	if _, err := f.Store.UpdatePort(1002, topology.PortSpec{ID: "b2", AllowedAddressPairs: &[]topology.AddressPair{{IPAddress: "10.1.0.1"}}}); err != nil {
		t.Fatal(err)
	}
	got = step(func() { f.AddRouter(t, "R2", "B4") }, topology.Change{Resource: "router", ID: "R2"})
	if !strings.Contains(got, tbl(pipeline.ARPResponder)+", priority=0,arp,metadata=0x2,arp_tpa=10.1.0.1") {
		t.Errorf("R2 taking B's gateway from b2's pair: no ARP delete by address in\n%s", got)
	}
}

// tbl is how a flow mod names a stage's table.
func tbl(stage string) string { return fmt.Sprintf("table=%d", pipeline.Table(stage)) }
