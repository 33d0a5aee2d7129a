package explain

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wyvern-sdn/wyvern/trace"
)

// routedWalk is what the walk in Go said of the packet of
// testdata/ofproto_trace_routed.txt — ofproto/trace of a routed packet on
// a real bridge (TestTrace's a1 -> b3, reactive flows installed):
// routed by L3Lookup into the gre tunnel to hv3 with the DVR MAC.
func routedWalk() trace.Result {
	id := uint64(0xc8)
	var hops []trace.Hop
	for _, t := range []uint8{0, 15, 20, 30, 31, 35, 60} {
		hops = append(hops, trace.Hop{Table: t})
	}
	resumed := uint8(70)
	hops = append(hops, trace.Hop{Table: 70, Punt: &trace.Punt{Reason: "route-miss", Resumed: &resumed}}, trace.Hop{Table: 70, Reactive: true})
	return trace.Result{Hops: hops, End: trace.End{Kind: trace.EndOutput, Outputs: []trace.Output{{Port: 2, Name: "gre",
		Kind: trace.PortTunnel, TunID: &id, TunDst: "172.31.0.3", EthSrc: "fa:16:3f:00:00:01", EthDst: "fa:16:3e:00:00:03", TTL: 63}}}}
}

func liveOf(t *testing.T) *LiveTrace {
	t.Helper()
	b, err := os.ReadFile("testdata/ofproto_trace_routed.txt")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	lt := &LiveTrace{Raw: text, Tables: liveHops(text, "br-int")}
	m := regexp.MustCompile(`(?m)^Datapath actions: (.*)$`).FindAllStringSubmatch(text, -1)
	lt.DatapathActions = m[len(m)-1][1]
	f := regexp.MustCompile(`(?m)^Final flow: (.*)$`).FindAllStringSubmatch(text, -1)
	lt.FinalFlow = f[len(f)-1][1]
	return lt
}

// TestCompareAgrees: the walk and the real trace agree on the routed
// packet: the integration bridge's tables (the uplink bridge's lookup
// and the punt the controller answered aside), the gre key and
// destination, the rewritten MACs.
func TestCompareAgrees(t *testing.T) {
	lt := liveOf(t)
	var tables []int
	for _, h := range lt.Tables {
		tables = append(tables, h.Table)
	}
	if want := []int{0, 15, 20, 30, 31, 35, 60, 70}; !slices.Equal(tables, want) {
		t.Fatalf("tables %v, want %v", tables, want)
	}
	if lt.Tables[7].Priority != 100 || lt.Tables[7].Cookie != "0x1051800000003" {
		t.Errorf("the routing hop: %+v", lt.Tables[7])
	}
	if d := compare(routedWalk(), lt); len(d) != 0 {
		t.Errorf("differences: %q", d)
	}
}

// TestCompareFlags: each thing the walk could get wrong is flagged.
func TestCompareFlags(t *testing.T) {
	lt := liveOf(t)
	for name, c := range map[string]struct {
		change func(r *trace.Result)
		want   string
	}{
		"tun_id":  {func(r *trace.Result) { id := uint64(0xc9); r.End.Outputs[0].TunID = &id }, "tun_id: Go 0xc9"},
		"tun_dst": {func(r *trace.Result) { r.End.Outputs[0].TunDst = "172.31.0.2" }, "tun_dst: Go 172.31.0.2"},
		"eth_src": {func(r *trace.Result) { r.End.Outputs[0].EthSrc = "fa:16:3e:00:00:07" }, "eth_src: Go fa:16:3e:00:00:07, OVS fa:16:3f:00:00:01"},
		"drop": {func(r *trace.Result) {
			r.End = trace.End{Kind: trace.EndDrop, Stage: "PortSecurity"}
			r.Hops = r.Hops[:3]
		}, "Go drops the packet in PortSecurity"},
		"local":  {func(r *trace.Result) { r.End.Outputs[0].TunID, r.End.Outputs[0].Kind = nil, trace.PortVM }, "OVS into a tunnel"},
		"tables": {func(r *trace.Result) { r.Hops = append(r.Hops[:2], r.Hops[3:]...) }, "tables: Go looks the packet up in [0 15 30"},
	} {
		r := routedWalk()
		c.change(&r)
		d := compare(r, lt)
		if !strings.Contains(strings.Join(d, "\n"), c.want) {
			t.Errorf("%s: differences %q, want one saying %q", name, d, c.want)
		}
	}
}
