package chassis

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/wyvern-sdn/wyvern/controller/cluster"
	"github.com/wyvern-sdn/wyvern/internal/ovstest"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
)

// testChassis is a chassis on an in-memory cluster, reporting, with the
// bridges' side faked: what it hands them is recorded.
type testChassis struct {
	t  *testing.T
	c  *cluster.Memory
	ch *Chassis

	mu     sync.Mutex
	handed []topology.Binding
}

func str(s string) *string { return &s }

func newTestChassis(t *testing.T, wait time.Duration) *testChassis {
	tc := &testChassis{t: t, c: cluster.NewMemory("n1")}
	ctx := context.Background()
	for _, p := range []struct {
		t cluster.CommandType
		v any
	}{
		{cluster.CmdNetworksCreate, cluster.NetworksCreate{Specs: []topology.NetworkSpec{{ID: "A"}}}},
		{cluster.CmdSubnetsCreate, cluster.SubnetsCreate{Specs: []topology.SubnetSpec{{ID: "A4", NetworkID: str("A"), CIDR: str("10.0.0.0/24")}}}},
		{cluster.CmdPortsCreate, cluster.PortsCreate{Specs: []topology.PortSpec{{ID: "vm1", NetworkID: str("A")}, {ID: "vm2", NetworkID: str("A")}}}},
		{cluster.CmdChassisRegister, cluster.ChassisReg{Spec: topology.ChassisSpec{Name: "hv2", EncapIP: "172.31.0.2"}}},
	} {
		if _, err := tc.c.Propose(ctx, p.t, p.v); err != nil {
			t.Fatal(err)
		}
	}
	tc.ch = New(Config{Name: "hv1", EncapIP: "172.31.0.1", NodeID: "n1", BindWait: wait}, tc.c, Hooks{
		Local: func(_ uint64, _ view.Bridge, b []topology.Binding) {
			tc.mu.Lock()
			tc.handed = b
			tc.mu.Unlock()
		},
		Connected: func(uint64) bool { return true },
	}, zaptest.NewLogger(t))
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { tc.ch.report(rctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return tc
}

func (tc *testChassis) facts(bindings ...topology.Binding) {
	tc.ch.onFacts(BridgeFacts{DatapathID: 0xab, TunnelPorts: map[string]uint32{"vxlan": 100}, Bindings: bindings})
}

func (tc *testChassis) port(id string) topology.Port {
	var p topology.Port
	tc.c.Read(func(s *topology.Store) { p, _ = s.Port(id) })
	return p
}

func (tc *testChassis) handedOver() []topology.Binding {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.handed
}

// settle waits until the cluster has taken no command for a while.
func (tc *testChassis) settle() uint64 {
	tc.t.Helper()
	last := tc.c.AppliedIndex()
	for quiet := time.Now(); time.Since(quiet) < 150*time.Millisecond; time.Sleep(10 * time.Millisecond) {
		if i := tc.c.AppliedIndex(); i != last {
			last, quiet = i, time.Now()
		}
	}
	return last
}

// TestPluggedPortIsOneCommand: a VM plugged on the chassis is handed to
// the bridges at once, and once the bridge says it holds the port's flows
// one raft command records the binding and ACTIVE together.
func TestPluggedPortIsOneCommand(t *testing.T) {
	tc := newTestChassis(t, 2*time.Second)
	tc.facts()
	ovstest.Eventually(t, 5*time.Second, "hv1 registered", func() bool {
		var ok bool
		tc.c.Read(func(s *topology.Store) { _, ok = s.ChassisByName("hv1") })
		return ok
	})
	before := tc.settle()
	tc.facts(topology.Binding{PortID: "vm1", OFPort: 5})
	ovstest.Eventually(t, 5*time.Second, "vm1 handed to the bridges", func() bool {
		h := tc.handedOver()
		return len(h) == 1 && h[0].PortID == "vm1" && h[0].OFPort == 5
	})
	if i := tc.settle(); i != before {
		t.Fatalf("%d commands before the bridge held vm1's flows", i-before)
	}
	tc.ch.Programmed(map[string]uint32{"vm1": 5})
	ovstest.Eventually(t, 5*time.Second, "vm1 bound and ACTIVE", func() bool {
		p := tc.port("vm1")
		return p.HostID == "hv1" && p.OFPort == 5 && p.Status == topology.StatusActive
	})
	if n := tc.settle() - before; n != 1 {
		t.Fatalf("plugging vm1 took %d commands, want 1 (binding and ACTIVE together)", n)
	}
}

// TestUnprogrammedPortIsBoundDown: a port whose flows do not land within
// BindWait is recorded bound and DOWN, and ACTIVE later, when they do.
func TestUnprogrammedPortIsBoundDown(t *testing.T) {
	tc := newTestChassis(t, 100*time.Millisecond)
	tc.facts(topology.Binding{PortID: "vm1", OFPort: 5})
	ovstest.Eventually(t, 5*time.Second, "vm1 bound DOWN", func() bool {
		p := tc.port("vm1")
		return p.HostID == "hv1" && p.OFPort == 5 && p.Status == topology.StatusDown
	})
	tc.ch.Programmed(map[string]uint32{"vm1": 5})
	ovstest.Eventually(t, 5*time.Second, "vm1 ACTIVE", func() bool { return tc.port("vm1").Status == topology.StatusActive })
}

// TestPortHeldElsewhereIsNotClaimed: an interface naming a port another
// chassis still holds (a migration in progress) is neither handed to the
// bridges nor reported until the other chassis lets go; a port whose
// interface went is unbound.
func TestPortHeldElsewhereIsNotClaimed(t *testing.T) {
	tc := newTestChassis(t, 2*time.Second)
	if _, err := tc.c.Propose(context.Background(), cluster.CmdChassisPorts, cluster.ChassisPorts{Chassis: "hv2",
		Bindings: []topology.Binding{{PortID: "vm2", OFPort: 7, Active: true}}}); err != nil {
		t.Fatal(err)
	}
	tc.facts(topology.Binding{PortID: "vm1", OFPort: 5}, topology.Binding{PortID: "vm2", OFPort: 6})
	tc.ch.Programmed(map[string]uint32{"vm1": 5})
	ovstest.Eventually(t, 5*time.Second, "vm1 bound", func() bool { return tc.port("vm1").HostID == "hv1" })
	if h := tc.handedOver(); len(h) != 1 || h[0].PortID != "vm1" {
		t.Fatalf("handed over %v, want vm1 alone", h)
	}
	if p := tc.port("vm2"); p.HostID != "hv2" || p.OFPort != 7 {
		t.Fatalf("vm2 taken from hv2: %+v", p)
	}
	tc.facts() // vm1's interface goes
	ovstest.Eventually(t, 5*time.Second, "vm1 unbound", func() bool {
		p := tc.port("vm1")
		return p.OFPort == 0 && p.Status == topology.StatusDown
	})
}
