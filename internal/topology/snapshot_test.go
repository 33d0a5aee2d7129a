package topology_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"

	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
)

// TestSnapshotLinesAreEncodedRecords: every line WriteSnapshot writes is
// byte for byte what json.Encoder makes of its record (the format older
// nodes wrote and every node reads), HTML escaping included.
func TestSnapshotLinesAreEncodedRecords(t *testing.T) {
	f := topologytest.ThreeChassis(t)
	name, net := "web <a&b>", "A"
	if _, err := f.Store.CreatePorts(10_000, []topology.PortSpec{{ID: "odd", NetworkID: &net, Name: &name}}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.Store.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(buf.Bytes()))
	sc.Buffer(nil, 1<<20)
	types := map[string]int{}
	for sc.Scan() {
		var rec struct {
			Type   string          `json:"type"`
			Record json.RawMessage `json:"record"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(rec); err != nil {
			t.Fatal(err)
		}
		if got := sc.Text() + "\n"; got != want.String() {
			t.Errorf("line\n%s\nwant\n%s", got, want.String())
		}
		types[rec.Type]++
	}
	if types["port"] < 2 || types["network"] < 2 || types["alloc"] != 1 {
		t.Errorf("records by type %v: want the fixture's ports and networks, and one alloc", types)
	}
	if !bytes.Contains(buf.Bytes(), []byte(`web \u003ca\u0026b\u003e`)) {
		t.Error("the port's name is not HTML-escaped as json.Encoder escapes it")
	}
}

// BenchmarkWriteSnapshot: a snapshot of 60,000 ports over 1,000 chassis,
// which raft takes on the FSM's goroutine (applies wait meanwhile).
func BenchmarkWriteSnapshot(b *testing.B) {
	f := topologytest.Large(b, 1000, 60_000)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		var buf bytes.Buffer
		if err := f.Store.WriteSnapshot(&buf); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(buf.Len()))
	}
}
