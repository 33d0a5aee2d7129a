package bridge

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// TestPuntAnsweredOnRealOVS: a VM namespace plugged into a real bridge as
// a1 of the three-chassis fixture — on an ofport only the chassis' own
// report knows — ARPs for a3 (on hv2). The bridge's ARPResponder misses
// and punts with the reason in its userdata; the manager answers with
// the ARP reply flow and re-injects the request, which the new flow turns
// around in OVS: the VM learns a3's MAC.
func TestPuntAnsweredOnRealOVS(t *testing.T) {
	o := ovstest.Start(t)
	f := topologytest.ThreeChassis(t)
	log := zaptest.NewLogger(t)
	m := NewManager(Config{Mode: pipeline.Reactive}, Hooks{}, log)
	m.Update(f.View(), nil, true)
	m.SetReady()
	sock := filepath.Join(o.Dir, "wyvern.sock")
	srv, err := ofctl.Listen(ofctl.Config{Addr: "unix:" + sock, TableNames: pipeline.TableNames(), PuntSource: PuntSource}, m, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-served })

	br := ovstest.Name("br")
	o.AddBridge(br, ovstest.BridgeOptions{Controller: "unix:" + sock})
	a1, _ := f.Store.Port("a1")
	a3, _ := f.Store.Port("a3")
	vm := o.AddVM(br, "a1", a1.MACAddress, a1.FixedIPs[0].IPAddress+"/24")
	ovstest.Eventually(t, 10*time.Second, "switch connected", func() bool { return len(srv.Switches()) == 1 })
	bindings := []topology.Binding{{PortID: "a1", OFPort: uint32(vm.OFPort)}}
	for _, p := range f.Store.Ports() {
		if p.HostID == "hv1" && p.Located() && p.ID != "a1" {
			bindings = append(bindings, topology.Binding{PortID: p.ID, OFPort: p.OFPort})
		}
	}
	m.SetLocal(Local{DPID: srv.Switches()[0].DPID(), Bridge: topologytest.Bridge("hv1"), Bindings: bindings})
	ovstest.Eventually(t, 10*time.Second, "a1's flows", func() bool {
		for _, l := range o.DumpFlows(br) {
			if strings.Contains(l, "in_port="+vm.Tap) {
				return true
			}
		}
		return false
	})
	ip := a3.FixedIPs[0].IPAddress
	_, _ = vm.Exec("ping", "-c", "1", "-W", "1", ip) // the echo goes nowhere; the neighbour entry is what counts
	var neigh string
	ovstest.Eventually(t, 10*time.Second, "neighbour entry for a3", func() bool {
		neigh, _ = vm.Exec("ip", "neigh", "show", ip, "dev", "eth0")
		return strings.Contains(neigh, "lladdr "+a3.MACAddress)
	})
	if m.stats.Answered.Load() == 0 {
		t.Fatalf("the neighbour entry appeared without an answered punt: %s", neigh)
	}
	answer := false
	for _, l := range o.DumpFlows(br) {
		answer = answer || strings.Contains(l, "arp_tpa="+ip) && strings.Contains(l, "idle_timeout=60")
	}
	if !answer {
		t.Fatal("no reactive answer flow for a3's address on the bridge")
	}
	t.Logf("neighbour: %s", strings.TrimSpace(neigh))
}
