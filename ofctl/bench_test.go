package ofctl

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
func BenchmarkInstall100k(b *testing.B) { benchInstall(b, 100_000) }

// BenchmarkInstall1M is the same with 1,000,000 flows in one bundle each
// way, and reports memory: the benchmark's Go heap holding them and
// ovs-vswitchd's resident set with them installed.
func BenchmarkInstall1M(b *testing.B) { benchInstall(b, 1_000_000) }

func benchInstall(b *testing.B, total int) {
	o, br, _, sw := realSwitch(b)
	ctx := context.Background()
	flows := flowgen.Distinct(rand.New(rand.NewSource(21)), total)
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
	lines = nil
	clear := func() {
		if _, err := o.OfctlErr("del-flows", br); err != nil {
			b.Fatal(err)
		}
	}
	want := fmt.Sprintf("flow_count=%d", total)
	count := func() bool {
		out, err := o.OfctlErr("dump-aggregate", br)
		if err != nil {
			b.Fatal(err)
		}
		return strings.Contains(out, want)
	}
	var ours, theirs time.Duration
	var vswitchdRSS uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear()
		start := time.Now()
		if err := sw.Bundle(ctx, mods); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)
		if !count() {
			b.Fatalf("Bundle did not leave %d flows", total)
		}
		vswitchdRSS = max(vswitchdRSS, rssOf(o.VswitchdPID()))
		clear()
		start = time.Now()
		cmd := exec.Command("ovs-ofctl", "-O", "OpenFlow15", "--bundle", "add-flows", o.Mgmt(br), file)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("ovs-ofctl: %v: %s", err, out)
		}
		theirs += time.Since(start)
		if !count() {
			b.Fatalf("ovs-ofctl did not leave %d flows", total)
		}
	}
	b.StopTimer()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	n := float64(b.N) * float64(total)
	b.ReportMetric(n/ours.Seconds(), "wyvern-flows/s")
	b.ReportMetric(n/theirs.Seconds(), "ovs-ofctl-flows/s")
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "speedup-vs-ovs-ofctl")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "go-heap-MiB")
	b.ReportMetric(float64(vswitchdRSS)/(1<<20), "vswitchd-rss-MiB")
	runtime.KeepAlive(mods)
}

// rssOf is a process' resident set in bytes (0 when unknown).
func rssOf(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb uint64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
			return kb << 10
		}
	}
	return 0
}
