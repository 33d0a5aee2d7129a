package bench

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/apps"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
	"github.com/wyvern-sdn/wyvern/secgroup"
)

// The security group scale cloud: 500 ports over 10 chassis, 20 groups
// of 10 ingress rules each (and the egress rule every group starts
// with), every port in one or two groups.
const (
	sgChassis = 10
	sgPorts   = 500
	sgGroups  = 20
)

func sgID(g int) string { return fmt.Sprintf("g%02d", (g+sgGroups)%sgGroups) }

func sgInt(n int) *int { return &n }

// sgRules are group g's ten ingress rules: five admitting the members of
// another group (g+1 .. g+5), five admitting a prefix; TCP ports, TCP
// and UDP port ranges, UDP, ICMP.
func sgRules(g int) []topology.SecurityGroupRuleSpec {
	id := sgID(g)
	rule := func(k int, proto string, min, max *int, prefix, remote string) topology.SecurityGroupRuleSpec {
		return topology.SecurityGroupRuleSpec{ID: fmt.Sprintf("%s-r%d", id, k), SecurityGroupID: id, Direction: topology.DirectionIngress,
			Protocol: proto, PortRangeMin: min, PortRangeMax: max, RemoteIPPrefix: prefix, RemoteGroupID: remote}
	}
	return []topology.SecurityGroupRuleSpec{
		rule(0, "tcp", sgInt(22), sgInt(22), "", sgID(g+1)),
		rule(1, "tcp", sgInt(8000), sgInt(8080), "", sgID(g+2)),
		rule(2, "udp", sgInt(53), sgInt(53), "", sgID(g+3)),
		rule(3, "icmp", nil, nil, "", sgID(g+4)),
		rule(4, "tcp", sgInt(3000+g), sgInt(3000+g), "", sgID(g+5)),
		rule(5, "tcp", sgInt(443), sgInt(443), fmt.Sprintf("172.16.%d.0/24", g), ""),
		rule(6, "tcp", sgInt(8000), sgInt(8080), "192.168.0.0/16", ""),
		rule(7, "udp", sgInt(5000), sgInt(5100), fmt.Sprintf("172.17.%d.0/24", g), ""),
		rule(8, "icmp", sgInt(8), nil, "10.200.0.0/16", ""),
		rule(9, "tcp", sgInt(10000+100*g), sgInt(10000+100*g+99), "198.51.100.0/24", ""),
	}
}

// sgPortGroups is port n's groups (n from 1): a first group that
// changes every 10 ports — one port on each chassis — so that every
// chassis hosts members of every group; every third port a second one.
func sgPortGroups(n int) []string {
	first := (n - 1) / sgChassis % sgGroups
	out := []string{sgID(first)}
	if n%3 == 0 {
		out = append(out, sgID(first+1+n%7))
	}
	return out
}

// sgScale is the cloud, each chassis' desired flows, and the view they
// were computed from.
type sgScale struct {
	f       *topologytest.Fixture
	p       *apps.Pipeline
	chassis []string
	v       *view.View
	desired map[string]*apps.Desired
}

func newSGScale(tb testing.TB) *sgScale {
	tb.Helper()
	f := topologytest.Large(tb, sgChassis, sgPorts)
	for g := range sgGroups {
		f.Do(tb, func(i uint64) error {
			_, err := f.Store.CreateSecurityGroup(i, topology.SecurityGroupSpec{ID: sgID(g), Name: sgString(sgID(g)), EgressRuleID: sgID(g) + "-out"})
			return err
		})
	}
	for g := range sgGroups {
		for _, r := range sgRules(g) {
			f.Do(tb, func(i uint64) error { _, err := f.Store.CreateSecurityGroupRule(i, r); return err })
		}
	}
	for n := 1; n <= sgPorts; n++ {
		f.Do(tb, func(i uint64) error {
			_, err := f.Store.UpdatePort(i, topology.PortSpec{ID: fmt.Sprintf("p%d", n), SecurityGroups: sgPortGroups(n)})
			return err
		})
	}
	s := &sgScale{f: f, p: apps.New(pipeline.Reactive), v: f.View(), desired: map[string]*apps.Desired{}}
	for c := 1; c <= sgChassis; c++ {
		name := fmt.Sprintf("hv%d", c)
		s.chassis = append(s.chassis, name)
		s.desired[name] = s.p.Compute(s.v, topologytest.Bridge(name))
		filtered := 0
		for _, p := range s.v.LocalPorts(name) {
			if p.Filtered() {
				filtered++
			}
		}
		if filtered != sgPorts/sgChassis {
			tb.Fatalf("%s: %d filtered local ports, want %d", name, filtered, sgPorts/sgChassis)
		}
	}
	return s
}

func sgString(s string) *string { return &s }

// sgCount is one chassis' flows: the security group app's (its ports'
// own, and the rules' shared ones), of them those that match rules (the
// rules' shared flows and each port's conjunction or allow-all flow: not
// conntrack's per-port plumbing), the bridge's, and the naive cross
// product.
type sgCount struct {
	sg, sgShared, sgRules, bridge, naive int
}

func (c sgCount) ratio() float64 { return float64(c.sg) / float64(c.naive) }

// ruleTable are the tables whose flows match the rules (not the accept
// tables after them).
var ruleTable = map[uint8]bool{pipeline.Table(pipeline.SGEgress): true, pipeline.Table(pipeline.SGIngress): true}

func (s *sgScale) count(chassis string) sgCount {
	var c sgCount
	for _, f := range s.desired[chassis].Flows() {
		c.bridge++
		if ck := pipeline.Cookie(f.Cookie); ck.App() == pipeline.AppSecurityGroup {
			c.sg++
			if ck.Object() == 0 {
				c.sgShared++
			}
			if ruleTable[f.Table] && (f.Priority == secgroup.PriorityRule || f.Priority == secgroup.PriorityAllowAll) {
				c.sgRules++
			}
		}
	}
	c.naive = naiveFlows(s.v, chassis)
	return c
}

// naiveFlows is what a firewall without conjunctive matches needs on a
// chassis: for each filtered local port, for each rule (both directions)
// of each of its groups, one flow per remote address (a remote group's
// member addresses, or the one prefix) and per port-range value/mask
// block.
func naiveFlows(v *view.View, chassis string) int {
	n := 0
	for _, p := range v.LocalPorts(chassis) {
		if !p.Filtered() {
			continue
		}
		for _, g := range v.PortGroups(*p) {
			for _, r := range g.Rules {
				remotes := 1
				if r.RemoteGroup != "" {
					remotes = len(v.GroupAddresses(r.RemoteGroup))
				}
				blocks := 1
				if r.Proto != of.IPProtoICMP && r.PortMin > 0 {
					blocks = rangeBlocks(r.PortMin, r.PortMax)
				}
				n += remotes * blocks
			}
		}
	}
	return n
}

// rangeBlocks is the number of value/mask matches that cover lo..hi
// exactly: the largest aligned power-of-two block at each step.
func rangeBlocks(lo, hi int) int {
	n := 0
	for lo <= hi {
		size := 1
		for lo%(2*size) == 0 && lo+2*size-1 <= hi {
			size *= 2
		}
		lo += size
		n++
	}
	return n
}

// sgBundle is what a change makes one chassis' reconciler send: flows
// added, deleted and modified, in all and of the security group app's
// shared flows (cookie object none).
type sgBundle struct {
	add, del, mod                   int
	sharedAdd, sharedDel, sharedMod int
}

func (b sgBundle) size() int   { return b.add + b.del + b.mod }
func (b sgBundle) shared() int { return b.sharedAdd + b.sharedDel + b.sharedMod }

// sgChange is one change applied to the store and recomputed on every
// chassis: each chassis' bundle, and the time of the incremental
// recomputes (all chassis, and the slowest one).
type sgChange struct {
	bundles      map[string]sgBundle
	total, worst time.Duration
	build        time.Duration // view.Build of the store after the change
}

// apply makes one store operation, publishes it as changes (the FSM's),
// and recomputes every chassis incrementally with Pipeline.Update; the
// bundles are from comparing each chassis' desired flows before and
// after, over the keys Update returned.
func (s *sgScale) apply(tb testing.TB, op func(index uint64) error, changes func(index uint64) []topology.Change) sgChange {
	tb.Helper()
	var index uint64
	s.f.Do(tb, func(i uint64) error { index = i; return op(i) })
	before := map[string]map[of.FlowKey]of.Flow{}
	for _, c := range s.chassis {
		m := map[of.FlowKey]of.Flow{}
		for _, f := range s.desired[c].Flows() {
			m[f.Key()] = f
		}
		before[c] = m
	}
	start := time.Now()
	after := view.Build(s.f.Store)
	out := sgChange{build: time.Since(start), bundles: map[string]sgBundle{}}
	chs := changes(index)
	keys := map[string][]of.FlowKey{}
	b, timed := tb.(*testing.B) // a benchmark's time is the recomputes'
	for _, c := range s.chassis {
		if timed {
			b.StartTimer()
		}
		start := time.Now()
		keys[c] = s.p.Update(s.desired[c], s.v, after, topologytest.Bridge(c), chs)
		d := time.Since(start)
		if timed {
			b.StopTimer()
		}
		out.total += d
		out.worst = max(out.worst, d)
	}
	for _, c := range s.chassis {
		current := map[of.FlowKey]of.Flow{}
		for _, f := range s.desired[c].Flows() {
			current[f.Key()] = f
		}
		var b sgBundle
		for _, k := range keys[c] {
			was, had := before[c][k]
			now, has := current[k]
			shared := func(f of.Flow) bool {
				ck := pipeline.Cookie(f.Cookie)
				return ck.App() == pipeline.AppSecurityGroup && ck.Object() == 0
			}
			switch {
			case has && !had:
				b.add++
				if shared(now) {
					b.sharedAdd++
				}
			case had && !has:
				b.del++
				if shared(was) {
					b.sharedDel++
				}
			case had && has && !was.SameContent(now):
				b.mod++
				if shared(now) || shared(was) {
					b.sharedMod++
				}
			}
		}
		out.bundles[c] = b
	}
	s.v = after
	return out
}

// incrementalIsFull checks every chassis' incrementally updated flows
// against a full recompute from the current view.
func (s *sgScale) incrementalIsFull(tb testing.TB, what string) {
	tb.Helper()
	for _, c := range s.chassis {
		got := of.FormatFlows(s.desired[c].Flows(), nil)
		want := of.FormatFlows(s.p.Flows(s.v, topologytest.Bridge(c)), nil)
		if !slices.Equal(got, want) {
			tb.Errorf("%s: %s incremental flows (%d) differ from a full recompute (%d)", what, c, len(got), len(want))
		}
	}
}

// ruleChange adds a remote-group rule to g00 (TCP 7000 from g10's
// members), then deletes it: the change as the FSM publishes it, a
// security group update.
func (s *sgScale) ruleChange(tb testing.TB, id string) (add, del sgChange) {
	tb.Helper()
	published := func(i uint64) []topology.Change {
		return []topology.Change{{Index: i, Resource: topology.ResourceSecurityGroup, Op: "update", ID: sgID(0)}}
	}
	add = s.apply(tb, func(i uint64) error {
		_, err := s.f.Store.CreateSecurityGroupRule(i, topology.SecurityGroupRuleSpec{ID: id, SecurityGroupID: sgID(0),
			Direction: topology.DirectionIngress, Protocol: "tcp", PortRangeMin: sgInt(7000), PortRangeMax: sgInt(7000), RemoteGroupID: sgID(10)})
		return err
	}, published)
	del = s.apply(tb, func(i uint64) error { _, err := s.f.Store.DeleteSecurityGroupRule(i, id); return err }, published)
	return add, del
}

// sgJoiner is the port that joins a group, and its chassis: p1 (hv1),
// in g00 alone; it joins g10, whose members g05..g09's rules admit.
const (
	sgJoiner        = "p1"
	sgJoinerChassis = "hv1"
	sgJoined        = 10
)

// memberJoin: the joiner joins g10, then leaves it again; the change a
// port update, as the FSM publishes it.
func (s *sgScale) memberJoin(tb testing.TB) (join, leave sgChange) {
	tb.Helper()
	published := func(i uint64) []topology.Change {
		return []topology.Change{{Index: i, Resource: topology.ResourcePort, Op: "update", ID: sgJoiner}}
	}
	groups := func(gs ...string) func(uint64) error {
		return func(i uint64) error {
			_, err := s.f.Store.UpdatePort(i, topology.PortSpec{ID: sgJoiner, SecurityGroups: gs})
			return err
		}
	}
	if got := sgPortGroups(1); !slices.Equal(got, []string{sgID(0)}) {
		tb.Fatalf("%s holds %v, want g00 alone", sgJoiner, got)
	}
	join = s.apply(tb, groups(sgID(0), sgID(sgJoined)), published)
	leave = s.apply(tb, groups(sgID(0)), published)
	return join, leave
}

// TestSecurityGroupScaleProperties: on the scale cloud, the security
// group flows are at most a tenth of the naive cross product (over the
// cloud: every chassis' flows over every chassis' naive count); a member
// joining a group changes 1 or 2 shared flows on each chassis (its
// address flow, added or given more conjunctions) and, on other chassis
// than its own, nothing else; a rule added changes every chassis and
// deleting it undoes as much; incremental recomputes give exactly what a
// full recompute gives, and once the rule and the member have come and
// gone every chassis is back where it was.
func TestSecurityGroupScaleProperties(t *testing.T) {
	s := newSGScale(t)
	start := map[string][]string{}
	var sum sgCount
	for _, c := range s.chassis {
		n := s.count(c)
		sum.sg, sum.naive = sum.sg+n.sg, sum.naive+n.naive
		t.Logf("%s: %d security group flows, naive %d: ratio %.4f", c, n.sg, n.naive, n.ratio())
		start[c] = of.FormatFlows(s.desired[c].Flows(), nil)
	}
	if sum.ratio() > 0.1 {
		t.Errorf("%d security group flows on %d chassis for a naive %d: ratio %.4f, want ≤ 0.1", sum.sg, len(s.chassis), sum.naive, sum.ratio())
	}

	add, del := s.ruleChange(t, "extra")
	s.incrementalIsFull(t, "rule added and deleted")
	for _, c := range s.chassis {
		if add.bundles[c].size() == 0 || del.bundles[c].size() != add.bundles[c].size() {
			t.Errorf("%s: rule added: %+v, deleted: %+v; want a change, undone by as many flows", c, add.bundles[c], del.bundles[c])
		}
	}

	join, _ := s.memberJoin(t)
	s.incrementalIsFull(t, "member joined and left")
	for _, c := range s.chassis {
		b := join.bundles[c]
		if b.shared() == 0 || b.shared() > 2 {
			t.Errorf("%s: %s joining %s changed %d shared flows (%+v), want 1 or 2", c, sgJoiner, sgID(sgJoined), b.shared(), b)
		}
		if c != sgJoinerChassis && b.size() != b.shared() {
			t.Errorf("%s: %s (on %s) joining changed %d flows here, only %d of them shared ones", c, sgJoiner, sgJoinerChassis, b.size(), b.shared())
		}
		if got := of.FormatFlows(s.desired[c].Flows(), nil); !slices.Equal(got, start[c]) {
			t.Errorf("%s: after the rule and the member came and went, %d flows, want the %d of the start", c, len(got), len(start[c]))
		}
	}
}

// BenchmarkSecurityGroupScale measures the security groups app on a
// cloud of 500 ports over 10 chassis (50 filtered ports each), 20 groups
// of 10 ingress rules (half admitting another group's members, half a
// prefix), each port in 1 or 2 groups, built through the store's API.
// Reported, per chassis: the app's flows and the bridge's (reactive
// mode, wyvernd's default), against the naive cross product a firewall
// without conjunctive matches needs (one flow per port × rule × remote
// address × port-range block); one rule added to a group and deleted
// (the incremental recompute of all 10 chassis, and the bundle each
// chassis gets); one member joining a group (the flows each chassis
// changes). No switch: the desired flows are what a reconciler sends.
// ns/op is the incremental recomputes alone (Pipeline.Update on every
// chassis, for the 4 changes of an iteration).
func BenchmarkSecurityGroupScale(b *testing.B) {
	b.StopTimer()
	s := newSGScale(b)
	counts := make([]sgCount, len(s.chassis))
	var sum, most sgCount
	mostRatio := 0.0
	for i, c := range s.chassis {
		n := s.count(c)
		counts[i] = n
		sum = sgCount{sum.sg + n.sg, sum.sgShared + n.sgShared, sum.sgRules + n.sgRules, sum.bridge + n.bridge, sum.naive + n.naive}
		most = sgCount{max(most.sg, n.sg), max(most.sgShared, n.sgShared), max(most.sgRules, n.sgRules), max(most.bridge, n.bridge), max(most.naive, n.naive)}
		mostRatio = max(mostRatio, n.ratio())
	}

	var adds, dels, joins, leaves []sgChange
	for i := range b.N {
		add, del := s.ruleChange(b, fmt.Sprintf("extra-%d", i))
		join, leave := s.memberJoin(b)
		adds, dels, joins, leaves = append(adds, add), append(dels, del), append(joins, join), append(leaves, leave)
	}
	s.incrementalIsFull(b, "after the changes")

	nc := float64(len(s.chassis))
	b.ReportMetric(float64(sum.sg)/nc, "sg-flows/chassis")
	b.ReportMetric(float64(sum.bridge)/nc, "bridge-flows/chassis")
	b.ReportMetric(float64(sum.naive)/nc, "naive/chassis")
	b.ReportMetric(sum.ratio(), "ours/naive")
	b.ReportMetric(mostRatio, "ours/naive-max")
	b.ReportMetric(sgMillis(meanTotal(adds)), "rule-add-ms")
	b.ReportMetric(sgMillis(meanTotal(dels)), "rule-del-ms")
	b.ReportMetric(meanBundle(adds, s.chassis, sgBundle.size), "rule-bundle/chassis")
	b.ReportMetric(meanBundle(joins, s.chassis, sgBundle.shared), "join-shared/chassis")
	b.ReportMetric(float64(joins[0].bundles[sgJoinerChassis].size()), "join-own-chassis")

	b.Logf("%d ports on %d chassis, %d groups of 10 ingress rules (+1 egress each), reactive mode. Per chassis:", sgPorts, sgChassis, sgGroups)
	b.Logf("  sg: the app's flows (shared: those of no port; rules: those matching rules, not conntrack's per-port flows); bridge: all apps'")
	b.Logf("  ratio: sg/naive; rules/n: rules/naive; max row: the largest of each column over the chassis")
	b.Logf("  bundles of the first iteration: +added -deleted ~modified")
	b.Logf("%-5s %6s %6s %6s %6s %6s %6s %6s | %9s %9s | %8s %7s", "", "sg", "shared", "rules", "bridge", "naive", "ratio", "rules/n",
		"rule add", "rule del", "join", "shared")
	row := func(name string, n sgCount, ratio, rulesRatio float64, cols ...any) {
		b.Logf("%-5s %6d %6d %6d %6d %6d %6.4f %6.4f | %9s %9s | %8s %7s",
			append([]any{name, n.sg, n.sgShared, n.sgRules, n.bridge, n.naive, ratio, rulesRatio}, cols...)...)
	}
	mostRules := 0.0
	for i, c := range s.chassis {
		n := counts[i]
		rr := float64(n.sgRules) / float64(n.naive)
		mostRules = max(mostRules, rr)
		row(c, n, n.ratio(), rr, bundleText(adds[0].bundles[c]), bundleText(dels[0].bundles[c]),
			bundleText(joins[0].bundles[c]), fmt.Sprint(joins[0].bundles[c].shared()))
	}
	k := len(counts)
	row("avg", sgCount{sum.sg / k, sum.sgShared / k, sum.sgRules / k, sum.bridge / k, sum.naive / k},
		sum.ratio(), float64(sum.sgRules)/float64(sum.naive), "", "", "", "")
	row("max", most, mostRatio, mostRules, "", "", "", "")
	b.Logf("rule add (g00: tcp 7000 from g10's members), Pipeline.Update on all %d chassis: %s (slowest chassis %s; view build %s)",
		len(s.chassis), meanTotal(adds).Round(time.Microsecond), adds[0].worst.Round(time.Microsecond), adds[0].build.Round(time.Microsecond))
	b.Logf("rule delete: %s (slowest chassis %s; view build %s)",
		meanTotal(dels).Round(time.Microsecond), dels[0].worst.Round(time.Microsecond), dels[0].build.Round(time.Microsecond))
	b.Logf("member join (%s on %s joins %s), all chassis: %s (slowest %s); leave: %s (slowest %s)", sgJoiner, sgJoinerChassis, sgID(sgJoined),
		meanTotal(joins).Round(time.Microsecond), joins[0].worst.Round(time.Microsecond),
		meanTotal(leaves).Round(time.Microsecond), leaves[0].worst.Round(time.Microsecond))
	if sum.ratio() > 0.1 || mostRatio > 0.1 {
		b.Logf("GOAL MISSED: ours/naive %.4f (worst chassis %.4f), want ≤ 0.1", sum.ratio(), mostRatio)
	}
	if t := meanTotal(adds); t > 100*time.Millisecond {
		b.Logf("GOAL MISSED: a rule change takes %s on all chassis, want < 100 ms", t)
	}
}

func sgMillis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func meanTotal(cs []sgChange) time.Duration {
	var t time.Duration
	for _, c := range cs {
		t += c.total
	}
	return t / time.Duration(len(cs))
}

func meanBundle(cs []sgChange, chassis []string, size func(sgBundle) int) float64 {
	n := 0
	for _, c := range cs {
		for _, ch := range chassis {
			n += size(c.bundles[ch])
		}
	}
	return float64(n) / float64(len(cs)*len(chassis))
}

func bundleText(b sgBundle) string { return fmt.Sprintf("+%d-%d~%d", b.add, b.del, b.mod) }
