package of_test

import (
	"math/rand"
	"testing"

	"github.com/wyvern-sdn/wyvern/internal/flowgen"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

const benchFlows = 100_000

// BenchmarkEncode100k encodes 100k flow-mods to OpenFlow 1.5 bytes.
func BenchmarkEncode100k(b *testing.B) {
	flows := flowgen.Distinct(rand.New(rand.NewSource(1)), benchFlows)
	buf := make([]byte, 0, 200*benchFlows)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		buf = buf[:0]
		for j, f := range flows {
			var err error
			if buf, err = of.AppendFlowMod(buf, uint32(j), of.FlowMod{Flow: f}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(benchFlows)*float64(b.N)/b.Elapsed().Seconds(), "flows/s")
	b.ReportMetric(float64(len(buf))/benchFlows, "bytes/flow")
}

// BenchmarkDiff100k diffs two 100k-flow sets that differ in 10% of flows
// (5% changed, 5% replaced), as a large topology change would.
func BenchmarkDiff100k(b *testing.B) {
	rng := rand.New(rand.NewSource(2))
	flows := flowgen.Distinct(rng, benchFlows)
	from := of.NewFlowSet(flows...)
	to := from.Clone()
	for i := 0; i < benchFlows/20; i++ {
		f := flows[rng.Intn(benchFlows)]
		f.Actions = append([]of.Action{of.DecTTL{}}, f.Actions...)
		to.Add(f)
		to.Remove(flows[rng.Intn(benchFlows)])
	}
	var c of.Changes
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c = of.Diff(from, to)
	}
	b.ReportMetric(float64(benchFlows)*float64(b.N)/b.Elapsed().Seconds(), "flows/s")
	b.ReportMetric(float64(c.Len()), "changes")
}

// BenchmarkFormat100k renders 100k flows as ovs-ofctl text.
func BenchmarkFormat100k(b *testing.B) {
	flows := flowgen.Distinct(rand.New(rand.NewSource(3)), benchFlows)
	names := pipeline.Names()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, f := range flows {
			_ = f.Format(names)
		}
	}
	b.ReportMetric(float64(benchFlows)*float64(b.N)/b.Elapsed().Seconds(), "flows/s")
}
