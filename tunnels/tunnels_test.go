package tunnels_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
	"github.com/wyvern-sdn/wyvern/pipeline"
	"github.com/wyvern-sdn/wyvern/tunnels"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, lines []string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	got := strings.Join(lines, "\n") + "\n"
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from its golden file:\n--- got\n%s--- want\n%s", name, got, want)
	}
}

func TestGoldenPerChassis(t *testing.T) {
	f := topologytest.ThreeChassis(t)
	v := topology.NewView(f.Store)
	for _, c := range []string{"hv1", "hv2", "hv3"} {
		golden(t, "three_chassis_"+c, pipeline.FormatFlows(tunnels.Flows(v, topologytest.Bridge(c)), f.Names(c)))
	}
}

// TestNoEncapNoSteering: a chassis that does not terminate an
// encapsulation gets no tunnel to it, and a bridge without the tunnel port
// carries no network of that type off the chassis.
func TestNoEncapNoSteering(t *testing.T) {
	f := topologytest.ThreeChassis(t)
	if _, err := f.Store.RegisterChassis(99, topology.ChassisSpec{Name: "hv2", EncapIP: "172.31.0.2", Encaps: []string{topology.TypeGRE}}); err != nil {
		t.Fatal(err)
	}
	v := topology.NewView(f.Store)
	for _, l := range pipeline.FormatFlows(tunnels.Flows(v, topologytest.Bridge("hv1")), f.Names("hv1")) {
		if strings.Contains(l, "172.31.0.2") {
			t.Errorf("hv2 lost vxlan but hv1 still tunnels to it: %s", l)
		}
	}
	noGRE := topologytest.Bridge("hv1")
	delete(noGRE.TunnelPorts, topology.TypeGRE)
	for _, l := range pipeline.FormatFlows(tunnels.Flows(v, noGRE), f.Names("hv1")) {
		if strings.Contains(l, "tun_id=0xc8") || strings.Contains(l, "gre0") {
			t.Errorf("a bridge without a gre port steers network B: %s", l)
		}
	}
}
