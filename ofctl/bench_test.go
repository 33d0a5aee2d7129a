package ofctl

import (
	"context"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/flowgen"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

// BenchmarkInstall100k installs 100,000 flows on a real bridge through
// Switch.Bundle, and the same flows with `ovs-ofctl --bundle add-flows`
// (the fastest way OVS's own tool has) in the same run. It reports both
// rates and their ratio: the machines are noisy, the ratio is the figure.
func BenchmarkInstall100k(b *testing.B) {
	o, br, _, sw := realSwitch(b)
	ctx := context.Background()
	flows := flowgen.Distinct(rand.New(rand.NewSource(21)), 100_000)
	mods := make([]of.FlowMod, len(flows))
	lines := make([]string, len(flows))
	for i, f := range flows {
		mods[i] = of.FlowMod{Command: of.FlowAdd, Flow: f}
		lines[i] = f.Format(nil)
	}
	file := filepath.Join(b.TempDir(), "flows.txt")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	clear := func() {
		if _, err := o.OfctlErr("del-flows", br); err != nil {
			b.Fatal(err)
		}
	}
	count := func() int {
		out, err := o.OfctlErr("dump-aggregate", br)
		if err != nil {
			b.Fatal(err)
		}
		return strings.Count(out, "flow_count=100000")
	}
	var ours, theirs time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear()
		start := time.Now()
		if err := sw.Bundle(ctx, mods); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		if count() != 1 {
			b.Fatal("Bundle did not leave 100000 flows")
		}
		clear()
		start = time.Now()
		cmd := exec.Command("ovs-ofctl", "-O", "OpenFlow15", "--bundle", "add-flows", o.Mgmt(br), file)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("ovs-ofctl: %v: %s", err, out)
		}
		theirs += time.Since(start)
		if count() != 1 {
			b.Fatal("ovs-ofctl did not leave 100000 flows")
		}
	}
	b.StopTimer()
	n := float64(b.N) * 100_000
	b.ReportMetric(n/ours.Seconds(), "wyvern-flows/s")
	b.ReportMetric(n/theirs.Seconds(), "ovs-ofctl-flows/s")
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "speedup-vs-ovs-ofctl")
}
