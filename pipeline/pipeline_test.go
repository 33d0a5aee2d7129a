package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wyvern-sdn/wyvern/internal/golden"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

func TestStageRegionsDoNotOverlap(t *testing.T) {
	names := map[string]bool{}
	end := 0
	for i, s := range Stages {
		if s.Size == 0 {
			t.Errorf("stage %s has an empty region", s.Name)
		}
		if int(s.First) < end {
			t.Errorf("stage %s starts at table %d, inside the region of the stage before it (ends %d)", s.Name, s.First, end)
		}
		end = int(s.First) + int(s.Size)
		if end > 254 {
			t.Errorf("stage %s region ends past table 253", s.Name)
		}
		if names[s.Name] {
			t.Errorf("stage %s declared twice", s.Name)
		}
		names[s.Name] = true
		for _, m := range []Miss{s.Miss, s.ProactiveMiss} {
			if m.Kind == MissGoto {
				if _, ok := stageByName[m.Goto]; !ok {
					t.Errorf("stage %s misses to undeclared stage %q", s.Name, m.Goto)
				} else if Table(m.Goto) <= s.First {
					t.Errorf("stage %s misses backwards to %s", s.Name, m.Goto)
				}
			}
		}
		if i == 0 && s.First != 0 {
			t.Errorf("first stage must be table 0, where OVS starts every packet")
		}
		for tbl := s.First; int(tbl) < end; tbl++ {
			if got, ok := StageOf(tbl); !ok || got.Name != s.Name {
				t.Errorf("StageOf(%d) = %v, want %s", tbl, got.Name, s.Name)
			}
		}
	}
}

func TestRegFieldsDoNotOverlap(t *testing.T) {
	for i, a := range RegFields {
		if int(a.Ofs)+int(a.Bits) > int(a.Field.Bits()) {
			t.Errorf("%s does not fit %s", a.Name, a.Field)
		}
		for _, b := range RegFields[i+1:] {
			if a.Field == b.Field && a.Mask()&b.Mask() != 0 {
				t.Errorf("%s and %s overlap in %s", a.Name, b.Name, a.Field)
			}
		}
	}
}

func TestCookieRoundTrip(t *testing.T) {
	x := uint64(88172645463325252)
	next := func() uint64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
	for i := 0; i < 10000; i++ {
		round := uint16(next())
		app := App(next())
		obj := next() & MaxObject
		c := Cookie(NewCookie(round, app, obj))
		if c.Round() != round || c.App() != app || c.Object() != obj {
			t.Fatalf("NewCookie(%d,%d,%d) decodes as %d,%d,%d", round, app, obj, c.Round(), c.App(), c.Object())
		}
		r2 := uint16(next())
		if d := c.WithRound(r2); d.Round() != r2 || d.App() != app || d.Object() != obj {
			t.Fatalf("WithRound changed more than the round: %v -> %v", c, d)
		}
	}
	if RoundMask&AppMask != 0 || AppMask&ObjectMask != 0 || RoundMask|AppMask|ObjectMask != ^uint64(0) {
		t.Fatal("cookie masks must partition the 64 bits")
	}
}

func TestBasePipelineGolden(t *testing.T) {
	golden.Check(t, "base_reactive", of.FormatFlows(MissFlows(Reactive, 1), Names()))
	golden.Check(t, "base_proactive", of.FormatFlows(MissFlows(Proactive, 1), Names()))
}

func TestFormatUsesTableNames(t *testing.T) {
	f := of.Flow{Table: Table(Classifier), Priority: 0, Actions: []of.Action{of.GotoTable{Table: Table(L2Lookup)}}}
	want := "table=Classifier, priority=0 actions=goto_table:L2Lookup"
	if got := f.Format(Names()); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestDocsDescribeEveryStage keeps docs/pipeline.md true to the
// declaration: every stage's row names its table, region and misses, and
// every register field is listed.
func TestDocsDescribeEveryStage(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "pipeline.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	miss := func(m Miss) string {
		switch m.Kind {
		case MissGoto:
			return "goto " + m.Goto
		case MissPunt:
			return "punt"
		}
		return "drop"
	}
	for _, s := range Stages {
		row := fmt.Sprintf("| %d | %d–%d | %s | %s | %s | %s |", s.First, s.First, int(s.First)+int(s.Size)-1,
			s.Name, s.Owner, miss(s.Miss), miss(s.ProactiveMiss))
		if !strings.Contains(doc, row) {
			t.Errorf("docs/pipeline.md has no row starting %q", row)
		}
	}
	for _, r := range RegFields {
		bits := fmt.Sprintf("%s[%d..%d]", r.Field, r.Ofs, int(r.Ofs)+int(r.Bits)-1)
		if r.Bits == 1 {
			bits = fmt.Sprintf("%s[%d]", r.Field, r.Ofs)
		}
		if !strings.Contains(doc, "| "+r.Name+" | "+bits+" |") {
			t.Errorf("docs/pipeline.md does not list register field %s as %s", r.Name, bits)
		}
	}
}
