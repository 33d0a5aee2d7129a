package cluster_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/wyvern-sdn/wyvern/controller/cluster"
	"github.com/wyvern-sdn/wyvern/controller/northbound"
	"github.com/wyvern-sdn/wyvern/internal/daemontest"
	"github.com/wyvern-sdn/wyvern/internal/ovstest"
	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// TestRemoteRegistersAChassis: an agent that is no member registers a
// chassis and binds a port through a one-node cluster's internal channel
// with the cluster secret, as a node's chassis does — found from the
// member's API, past an address where no member listens; the port is
// located on the chassis in the member's view. A report for an unknown
// chassis comes back as the store's error, and a wrong secret is refused.
func TestRemoteRegistersAChassis(t *testing.T) {
	secret := []byte(strings.Repeat("s", 32))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t)
	reg := prometheus.NewRegistry()
	c, err := cluster.New(cluster.Config{NodeID: "n1", DataDir: t.TempDir(), RaftAddr: ovstest.FreeAddr(t),
		APIAddr: ln.Addr().String(), Secret: secret, Metrics: reg}, log)
	if err != nil {
		t.Fatal(err)
	}
	api := northbound.New(c, northbound.Options{}, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _ = api.Serve(ln) }()
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = api.Shutdown(context.Background())
	})
	select {
	case <-c.ReadyCh():
	case <-time.After(20 * time.Second):
		t.Fatal("n1 not ready")
	}

	hc := &http.Client{Timeout: 10 * time.Second}
	var netOut struct{ Network struct{ ID string } }
	if code, err := daemontest.Call(hc, "POST", ln.Addr().String(), "/v2.0/networks", map[string]any{"network": map[string]any{"name": "a"}}, &netOut); code != http.StatusCreated {
		t.Fatalf("network: %d %v", code, err)
	}
	var portOut struct{ Port struct{ ID string } }
	if code, err := daemontest.Call(hc, "POST", ln.Addr().String(), "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": netOut.Network.ID}}, &portOut); code != http.StatusCreated {
		t.Fatalf("port: %d %v", code, err)
	}

	rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer rcancel()
	addrs, err := cluster.RaftAddresses(rctx, hc, []string{"http://" + ln.Addr().String()})
	if err != nil || len(addrs) != 1 || addrs[0] != c.RaftAddress() {
		t.Fatalf("raft addresses %v, %v; want [%s]", addrs, err, c.RaftAddress())
	}
	// A dead address first: the client moves on to the next member.
	r, err := cluster.NewRemote(cluster.RemoteConfig{Members: []string{ovstest.FreeAddr(t), addrs[0]}, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	committed0, errors0 := proposals(t, reg, "committed"), proposals(t, reg, "error")
	spec := topology.ChassisSpec{Name: "emu-1", EncapIP: "127.0.0.9", Encaps: []string{topology.TypeVXLAN},
		DatapathID: "00000000000e0001", Connected: true, Bridge: "br-int", DatapathType: "system"}
	if _, err := r.Propose(rctx, cluster.CmdChassisRegister, cluster.ChassisReg{Spec: spec}); err != nil {
		t.Fatal(err)
	}
	res, err := r.Propose(rctx, cluster.CmdChassisPorts, cluster.ChassisPorts{Chassis: "emu-1",
		Bindings: []topology.Binding{{PortID: portOut.Port.ID, OFPort: 7, Active: true}}})
	if err != nil {
		t.Fatal(err)
	}
	var changed []string
	if err := res.Decode(&changed); err != nil || len(changed) != 1 || changed[0] != portOut.Port.ID {
		t.Fatalf("changed ports %v, %v", changed, err)
	}
	if err := c.WaitIndex(rctx, res.Index); err != nil {
		t.Fatal(err)
	}
	p, ok := c.View().LocatedPort(portOut.Port.ID)
	if !ok || p.Chassis != "emu-1" || p.OFPort != 7 {
		t.Fatalf("port after the report: %+v located %v; want on emu-1 at ofport 7", p, ok)
	}

	_, err = r.Propose(rctx, cluster.CmdChassisPorts, cluster.ChassisPorts{Chassis: "nowhere"})
	var te *topology.Error
	if !errors.As(err, &te) || te.Type != "ChassisNotFound" {
		t.Fatalf("report for an unknown chassis: %v, want ChassisNotFound", err)
	}
	// The agent's commands are proposals on the leader, timed there.
	if n := proposals(t, reg, "committed") - committed0; n < 2 {
		t.Errorf("the leader timed %d of the agent's two committed commands", n)
	}
	if n := proposals(t, reg, "error") - errors0; n != 1 {
		t.Errorf("the leader timed %d refused commands, want the unknown chassis' report", n)
	}

	bad, err := cluster.NewRemote(cluster.RemoteConfig{Members: addrs, Secret: []byte(strings.Repeat("x", 32))})
	if err != nil {
		t.Fatal(err)
	}
	bctx, bcancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer bcancel()
	if _, err := bad.Propose(bctx, cluster.CmdChassisRegister, cluster.ChassisReg{Spec: spec}); !errors.Is(err, cluster.ErrNoLeader) || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("wrong secret: %v, want a refused secret", err)
	}
	if _, err := cluster.NewRemote(cluster.RemoteConfig{}); err == nil {
		t.Fatal("a remote without members was accepted")
	}
}

// proposals is how many commands wyvern_raft_propose_seconds has timed
// with an outcome.
func proposals(t *testing.T, reg *prometheus.Registry, outcome string) uint64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "wyvern_raft_propose_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}
