package apps

import (
	"testing"

	"github.com/wyvern-sdn/wyvern/pipeline"
)

// TestEveryPuntReasonHasItsApp: each reason a punt flow can carry is
// answered by exactly one registered app (compose panics on two), and
// every reason an app declares is one the pipeline declares.
func TestEveryPuntReasonHasItsApp(t *testing.T) {
	p := New(pipeline.Reactive)
	declared := map[pipeline.PuntReason]bool{}
	for _, r := range pipeline.PuntReasons {
		declared[r] = true
		if _, ok := p.byReason[r]; !ok {
			t.Errorf("punt reason %s: no registered app answers it", r)
		}
	}
	for r, a := range p.byReason {
		if !declared[r] {
			t.Errorf("%s answers reason %d, which pipeline.PuntReasons does not declare", a.ID(), r)
		}
	}
}
