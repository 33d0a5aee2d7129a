package of_test

import (
	"math/rand"
	"testing"

	"github.com/wyvern-sdn/wyvern/internal/flowgen"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

func TestDiffApplyProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for i := 0; i < 300; i++ {
		a := flowgen.Set(rng, rng.Intn(60))
		b := flowgen.Mutate(rng, a)
		if rng.Intn(5) == 0 {
			b = flowgen.Set(rng, rng.Intn(60))
		}
		c := of.Diff(a, b)
		if got := a.Apply(c); !got.Equal(b) {
			t.Fatalf("iteration %d: Apply(a, of.Diff(a, b)) != b (%s)", i, c)
		}
		if !of.Diff(b, b).Empty() {
			t.Fatalf("Diff(b, b) is not empty")
		}
		// Bundle order: every delete precedes every add or modify.
		seenAdd := false
		for _, fm := range c.Ordered() {
			if fm.Command == of.FlowDeleteStrict && seenAdd {
				t.Fatalf("delete after add in bundle order")
			}
			if fm.Command == of.FlowAdd {
				seenAdd = true
			}
		}
	}
}

func TestFlowModRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 2000; i++ {
		f := flowgen.Flow(rng)
		b, err := of.AppendFlowMod(nil, uint32(i), of.FlowMod{Command: of.FlowAdd, Flow: f})
		if err != nil {
			t.Fatalf("encode %s: %v", f, err)
		}
		xid, fm, err := of.DecodeFlowMod(b)
		if err != nil {
			t.Fatalf("decode %s: %v", f, err)
		}
		if xid != uint32(i) || !fm.Flow.Equal(f) {
			t.Fatalf("round trip changed the flow:\n got %s\nwant %s", fm.Flow, f)
		}
	}
}
