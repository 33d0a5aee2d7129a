package secgroup_test

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/wyvern-sdn/wyvern/dvr"
	"github.com/wyvern-sdn/wyvern/internal/apps"
	"github.com/wyvern-sdn/wyvern/internal/golden"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
	"github.com/wyvern-sdn/wyvern/secgroup"
)

func str(s string) *string { return &s }
func num(n int) *int       { return &n }

// guarded is the routed fixture with groups: web (TCP 8080-8081 from
// 10.0.0.0/8, any protocol from members of app) on a1 (hv1) and b2 (hv3),
// app on a3 (hv2) and a2 (hv1); b1 has no group (unfiltered).
func guarded(t *testing.T) *topologytest.Fixture {
	t.Helper()
	f := topologytest.Routed(t)
	for _, g := range []string{"web", "app"} {
		f.Do(t, func(i uint64) error {
			_, err := f.Store.CreateSecurityGroup(i, topology.SecurityGroupSpec{ID: g, Name: str(g), EgressRuleID: g + "-out"})
			return err
		})
	}
	for _, r := range []topology.SecurityGroupRuleSpec{
		{ID: "web-8080", SecurityGroupID: "web", Direction: "ingress", Protocol: "tcp", PortRangeMin: num(8080), PortRangeMax: num(8081), RemoteIPPrefix: "10.0.0.0/8"},
		{ID: "web-app", SecurityGroupID: "web", Direction: "ingress", RemoteGroupID: "app"},
		{ID: "web-icmp", SecurityGroupID: "web", Direction: "ingress", Protocol: "icmp", PortRangeMin: num(8), RemoteGroupID: "app"},
	} {
		f.Do(t, func(i uint64) error { _, err := f.Store.CreateSecurityGroupRule(i, r); return err })
	}
	for port, groups := range map[string][]string{"a1": {"web"}, "b2": {"web"}, "a3": {"app"}, "a2": {"app", "web"}} {
		f.Do(t, func(i uint64) error {
			_, err := f.Store.UpdatePort(i, topology.PortSpec{ID: port, SecurityGroups: groups})
			return err
		})
	}
	return f
}

// TestGolden: every chassis' security group flows, and the l2pop flows
// that send a filtered port's IPv4 through them.
func TestGolden(t *testing.T) {
	f := guarded(t)
	v := f.View()
	for _, c := range []string{"hv1", "hv2", "hv3"} {
		flows := apps.New(pipeline.Proactive).Flows(v, topologytest.Bridge(c))
		var keep []of.Flow
		for _, fl := range flows {
			if pipeline.Cookie(fl.Cookie).App() == pipeline.AppSecurityGroup ||
				fl.Table == pipeline.Table(pipeline.PortSecurity) || fl.Table == pipeline.Table(pipeline.Delivery) {
				keep = append(keep, fl)
			}
		}
		golden.Check(t, "guarded_"+c, of.FormatFlows(keep, f.Names(c)))
	}
}

// TestFilteredOncePerDirection: on every chassis, every IPv4 a filtered
// port sends leaves PortSecurity into SGEgress and nothing else, and
// every flow of any table that outputs IPv4 to a filtered port is an
// SGIngress flow — Flood's IPv4 copies skip filtered ports; an
// unfiltered port is never sent through the firewall.
func TestFilteredOncePerDirection(t *testing.T) {
	f := guarded(t)
	v := f.View()
	for _, c := range []string{"hv1", "hv2", "hv3"} {
		br := topologytest.Bridge(c)
		flows := apps.New(pipeline.Reactive).Flows(v, br)
		for _, p := range v.LocalPorts(c) {
			filtered := p.Filtered()
			for _, fl := range flows {
				line := fl.Format(f.Names(c))
				ip := strings.Contains(line, ",ip,") || strings.Contains(line, "priority="+itoa(int(fl.Priority))+",ip")
				switch {
				case fl.Table == pipeline.Table(pipeline.PortSecurity) && ip && hasReg(fl, pipeline.SrcPortKey, p.Key):
					toFW := strings.Contains(line, "table=SGEgress")
					if toFW != filtered {
						t.Errorf("%s: port %s (filtered %v): %s", c, p.ID, filtered, line)
					}
				case outputs(fl, p.OFPort) && ip && fl.Table != pipeline.Table(pipeline.SGIngress)+1:
					if filtered {
						t.Errorf("%s: IPv4 to filtered %s bypasses SGIngress: %s", c, p.ID, line)
					}
				}
			}
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func hasReg(f of.Flow, r of.RegField, key uint32) bool {
	c, ok := f.Match.Get(r.Field)
	return ok && c.Value&r.Mask() == uint64(key)<<r.Ofs&r.Mask()
}

func outputs(f of.Flow, port uint32) bool {
	for _, a := range f.Actions {
		if o, ok := a.(of.Output); ok && o.Port == port {
			return true
		}
	}
	return false
}

// TestMemberJoinAddsOneFlow: a port joining app adds, on a chassis
// filtering by app, one address flow (its address, every rule naming app)
// and changes nothing else of the rules' shared flows.
func TestMemberJoinAddsOneFlow(t *testing.T) {
	f := guarded(t)
	br := topologytest.Bridge("hv1")
	shared := func() map[string]bool {
		out := map[string]bool{}
		for _, fl := range (secgroup.App{}).Flows(f.View(), br) {
			if pipeline.Cookie(fl.Cookie).Object() == 0 {
				out[fl.Format(f.Names("hv1"))] = true
			}
		}
		return out
	}
	before := shared()
	f.Do(t, func(i uint64) error {
		_, err := f.Store.UpdatePort(i, topology.PortSpec{ID: "b1", SecurityGroups: []string{"app"}})
		return err
	})
	after := shared()
	var added, removed []string
	for l := range after {
		if !before[l] {
			added = append(added, l)
		}
	}
	for l := range before {
		if !after[l] {
			removed = append(removed, l)
		}
	}
	if len(added) != 1 || len(removed) != 0 || !strings.Contains(added[0], "nw_src=10.1.0.2") {
		t.Fatalf("b1 (10.1.0.2) joining app: added %q, removed %q", added, removed)
	}
}

// TestReactiveFiltersAsProactive: the firewall is never installed on
// demand — in reactive mode every bridge holds exactly the proactive
// flows of the firewall's tables and of the tables that lead into them
// (PortSecurity, Delivery) — and no punt's answer (a route, in this
// fixture every reachable one) adds a flow to any of them: a punt cannot
// be answered around the filter.
func TestReactiveFiltersAsProactive(t *testing.T) {
	f := guarded(t)
	v := f.View()
	guardedTables := map[uint8]bool{}
	for _, st := range []string{pipeline.PortSecurity, pipeline.SGEgress, pipeline.Delivery, pipeline.SGIngress} {
		guardedTables[pipeline.Table(st)], guardedTables[pipeline.Table(st)+1] = true, true
	}
	pick := func(fs []of.Flow) of.FlowSet {
		var keep []of.Flow
		for _, fl := range fs {
			if guardedTables[fl.Table] {
				keep = append(keep, fl)
			}
		}
		return of.NewFlowSet(keep...)
	}
	r, _ := v.Router("R")
	for _, c := range []string{"hv1", "hv2", "hv3"} {
		br := topologytest.Bridge(c)
		reactive, proactive := pick(apps.New(pipeline.Reactive).Flows(v, br)), pick(apps.New(pipeline.Proactive).Flows(v, br))
		if !reactive.Equal(proactive) {
			d := of.Diff(proactive, reactive)
			t.Errorf("%s: the firewall's flows differ between modes: %d extra, %d missing, %d differ", c, len(d.Adds), len(d.Deletes), len(d.Modifies))
		}
		for _, p := range f.Store.Ports() {
			for _, fip := range p.FixedIPs {
				for _, fl := range dvr.OnMiss(v, br, r.Key, netip.MustParseAddr(fip.IPAddress)) {
					if guardedTables[fl.Table] {
						t.Errorf("%s: the answer to a punt for %s writes the firewall's path: %s", c, fip.IPAddress, fl.Format(f.Names(c)))
					}
				}
			}
		}
	}
}
