package logring

import (
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// TestRingKeepsTheLastLines: a logger teed into a ring of 3 keeps the
// last three entries its level lets through, oldest first, with the
// fields of With.
func TestRingKeepsTheLastLines(t *testing.T) {
	r := New(3)
	cfg := zap.NewProductionEncoderConfig()
	log := zap.New(r.Core(cfg, zapcore.InfoLevel)).With(zap.String("node", "hv1"))
	log.Debug("hidden")
	for i := range 5 {
		log.Info(fmt.Sprintf("line %d", i), zap.Int("i", i))
	}
	got := r.Lines()
	if len(got) != 3 {
		t.Fatalf("%d lines, want 3: %q", len(got), got)
	}
	for i, l := range got {
		if !strings.Contains(l, fmt.Sprintf("line %d", i+2)) || !strings.Contains(l, `"node": "hv1"`) {
			t.Errorf("line %d: %q, want line %d with the node field", i, l, i+2)
		}
	}
	if n := len(New(5).Lines()); n != 0 {
		t.Errorf("an empty ring holds %d lines", n)
	}
}
