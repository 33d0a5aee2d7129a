package main

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wyvern-sdn/wyvern/internal/daemontest"
	"github.com/wyvern-sdn/wyvern/internal/ovstest"
	"github.com/wyvern-sdn/wyvern/trace"
)

// traceAnswer is /debug/trace, as far as the test reads it.
type traceAnswer struct {
	Node string      `json:"node"`
	Hops []trace.Hop `json:"hops"`
	End  trace.End   `json:"end"`
	Live *struct {
		DatapathActions string   `json:"datapath_actions"`
		Agrees          bool     `json:"agrees"`
		Differences     []string `json:"differences"`
		Raw             string   `json:"raw"`
	} `json:"live"`
}

func (tb *testbed) trace(h *hypervisor, query string) traceAnswer {
	tb.t.Helper()
	var a traceAnswer
	if code, err := daemontest.Call(tb.client, "GET", h.api, "/debug/trace?"+query, nil, &a); err != nil || code != http.StatusOK {
		tb.t.Fatalf("/debug/trace?%s on hv%d: %d %v", query, h.n, code, err)
	}
	return a
}

func stages(a traceAnswer) []string {
	var out []string
	for _, h := range a.Hops {
		out = append(out, h.Stage)
	}
	return out
}

// TestTrace: three hypervisors, networks A (vxlan 100) and B (gre 200)
// joined by router R; VM a1 on hv1 and a2 on hv2 in A, b3 on hv3 in B.
// On hv1, the trace from a1 to a2's address walks Classifier,
// PortSecurity, L2Lookup and Egress into the vxlan tunnel with tun_id
// 100 and tun_dst hv2's encap IP, and ofproto/trace on the real bridge
// agrees; from a spoofed source it ends in the PortSecurity drop, OVS
// agreeing; to b3's address it is routed: L3Lookup rewrites eth_src to
// hv1's DVR MAC and sends it into the gre tunnel with tun_id 200 to hv3.
// Before any packet, in reactive mode, the live trace flags OVS's punt
// and `wyvern trace --live` exits 1; bad requests are refused. hv1 asked
// about a2's chassis names hv2 (421); its flows are all installed. The
// real `wyvern trace --live` prints the walk and exits 0, and follows a
// port of another chassis to its node; `wyvern support-bundle` writes a
// tarball with every named file, none empty. In both forwarding modes
// (the CLI and the bundle in reactive mode only).
func TestTrace(t *testing.T) {
	for _, mode := range []string{"reactive", "proactive"} {
		t.Run(mode, func(t *testing.T) { testTrace(t, mode) })
	}
}

func testTrace(t *testing.T, mode string) {
	reactive := mode == "reactive"
	tb := newTestbed(t, 3, "--forwarding", mode)
	hv1, hv2, hv3 := tb.hvs[0], tb.hvs[1], tb.hvs[2]
	netA := tb.network("A", "vxlan", 100, "10.0.0.0/24")
	netB := tb.network("B", "gre", 200, "10.1.0.0/24")
	a1, p1 := tb.vm(hv1, netA, "10.0.0.11")
	_, p2 := tb.vm(hv2, netA, "10.0.0.12")
	b3, p3 := tb.vm(hv3, netB, "10.1.0.13")
	tb.waitActive(p1, p2, p3)
	tb.router("R", netA, netB)
	defaultRoutes(t, map[*ovstest.VM]string{a1: "10.0.0.1", b3: "10.1.0.1"})
	// Before any packet, in reactive mode, OVS punts where the walk
	// answers the punt and goes on: the live trace flags it, and the CLI
	// exits 1.
	bin := buildWyvern(t)
	cli := func(args ...string) (string, error) {
		out, err := hv1.ovs.NS.Command(append([]string{bin, "--api", "http://" + hv1.api}, args...)...).CombinedOutput()
		return string(out), err
	}
	if reactive {
		cold := tb.trace(hv1, "from="+p1+"&to=10.0.0.12&live=true")
		if cold.Live == nil || cold.Live.Agrees || !strings.Contains(strings.Join(cold.Live.Differences, "\n"), "OVS sends the packet to the controller") {
			t.Errorf("cold: the live trace does not flag OVS's punt: %+v", cold.Live)
		}
		if out, err := cli("trace", "--from", p1, "--to", "10.0.0.12", "--live"); err == nil || !strings.Contains(out, "DIFFERS") {
			t.Errorf("cold: wyvern trace --live: %v, want exit 1 and DIFFERS:\n%s", err, out)
		}
	}
	// Bad requests change nothing and say why.
	for q, want := range map[string]int{
		"from=" + p1 + "&to=10.0.0.12&tcp=0":         http.StatusBadRequest,
		"from=" + p1 + "&to=10.0.0.12&tcp=80&udp=53": http.StatusBadRequest,
		"from=" + p1 + "&to=10.0.0.12&bogus=1":       http.StatusBadRequest,
		"from=" + p1 + "&to=not-an-address":          http.StatusBadRequest,
		"from=" + p1 + "&to=10.0.0.12&src_ip=x":      http.StatusBadRequest,
		"from=no-such-port&to=10.0.0.12":             http.StatusNotFound,
		"from=" + p1 + "&to=10.0.0.77":               http.StatusNotFound,
	} {
		if code, err := daemontest.Call(tb.client, "GET", hv1.api, "/debug/trace?"+q, nil, nil); err != nil || code != want {
			t.Errorf("/debug/trace?%s: %d %v, want %d", q, code, err, want)
		}
	}
	// The first packets install the reactive flows and resolve the
	// tunnels' next hops, so that OVS's trace sees what the walk does.
	for _, ip := range []string{"10.0.0.12", "10.1.0.13"} {
		if err := ping(a1, ip); err != nil {
			t.Fatalf("a1 -> %s: %v", ip, err)
		}
	}
	dvr := tb.dvrMACs()

	// (1) To a remote VM of the same network: into the tunnel.
	a := tb.trace(hv1, "from="+p1+"&to=10.0.0.12&live=true")
	t.Logf("a1 -> a2:\n%s", trace.Format(trace.Result{Hops: a.Hops, End: a.End}, false))
	for _, s := range []string{"Classifier", "PortSecurity", "L2Lookup", "Egress"} {
		if !slices.Contains(stages(a), s) {
			t.Errorf("a1 -> a2: no %s hop in %v", s, stages(a))
		}
	}
	if a.End.Kind != trace.EndOutput || len(a.End.Outputs) != 1 {
		t.Fatalf("a1 -> a2: end %+v, want one output", a.End)
	}
	o := a.End.Outputs[0]
	if o.Kind != trace.PortTunnel || o.Name != "vxlan" || o.TunID == nil || *o.TunID != 100 || o.TunDst != "172.31.0.2" {
		t.Errorf("a1 -> a2: %s, want into vxlan with tun_id 100 and tun_dst 172.31.0.2 (hv2)", trace.FormatOutput(o))
	}
	if a.Live == nil || !a.Live.Agrees {
		t.Errorf("a1 -> a2: OVS disagrees: %+v", a.Live)
	}
	if a.Live != nil && (!strings.Contains(a.Live.DatapathActions, "0x64") || !strings.Contains(a.Live.DatapathActions, "172.31.0.2")) {
		t.Errorf("a1 -> a2: OVS's datapath actions %q hold no tunnel with key 0x64 to 172.31.0.2", a.Live.DatapathActions)
	}

	// (2) From a spoofed source: the PortSecurity drop.
	a = tb.trace(hv1, "from="+p1+"&to=10.0.0.12&src_ip=10.0.0.99&live=true")
	if a.End.Kind != trace.EndDrop || a.End.Stage != "PortSecurity" {
		t.Errorf("spoofed: end %+v, want the PortSecurity drop\n%s", a.End, trace.Format(trace.Result{Hops: a.Hops, End: a.End}, true))
	}
	if a.Live == nil || !a.Live.Agrees || a.Live.DatapathActions != "drop" {
		t.Errorf("spoofed: OVS: %+v", a.Live)
	}

	// (3) To another network: DVR on hv1.
	a = tb.trace(hv1, "from="+p1+"&to=10.1.0.13&live=true")
	t.Logf("a1 -> b3:\n%s", trace.Format(trace.Result{Hops: a.Hops, End: a.End}, false))
	rewrite := false
	for _, h := range a.Hops {
		if h.Stage == "L3Lookup" && slices.Contains(h.Changes, "eth_src="+dvr["hv1"]) {
			rewrite = true
		}
	}
	if !rewrite {
		t.Errorf("a1 -> b3: no L3Lookup hop rewrites eth_src to hv1's DVR MAC %s", dvr["hv1"])
	}
	if a.End.Kind != trace.EndOutput || len(a.End.Outputs) != 1 {
		t.Fatalf("a1 -> b3: end %+v, want one output", a.End)
	}
	o = a.End.Outputs[0]
	if o.Name != "gre" || o.TunID == nil || *o.TunID != 200 || o.TunDst != "172.31.0.3" || o.EthSrc != dvr["hv1"] || o.TTL != 63 {
		t.Errorf("a1 -> b3: %s, want into gre, tun_id 200, to 172.31.0.3, from %s, ttl 63", trace.FormatOutput(o), dvr["hv1"])
	}
	if a.Live == nil || !a.Live.Agrees {
		t.Errorf("a1 -> b3: OVS disagrees: %+v", a.Live)
	}

	// (4) a2's chassis is hv2's to explain.
	var e map[string]map[string]string
	code, err := daemontest.Call(tb.client, "GET", hv1.api, "/debug/trace?from="+p2+"&to=10.0.0.11", nil, &e)
	if err != nil || code != http.StatusMisdirectedRequest || !strings.Contains(e["NeutronError"]["message"], "node hv2") {
		t.Errorf("hv1 asked about a2: %d %v %v, want 421 naming node hv2", code, err, e)
	}
	if a := tb.trace(hv2, "from="+p2+"&to=10.0.0.11"); a.Node != "hv2" || a.End.Kind != trace.EndOutput || a.End.Outputs[0].TunDst != "172.31.0.1" {
		t.Errorf("hv2: a2 -> a1: %+v", a.End)
	}

	// (5) hv1's flows: every desired flow installed, nothing else but
	// the punts' answers.
	var fl struct {
		Compared bool           `json:"compared"`
		Counts   map[string]int `json:"counts"`
		Flows    []struct {
			App    string `json:"app"`
			Object string `json:"object"`
			State  string `json:"state"`
		} `json:"flows"`
	}
	if code, err := daemontest.Call(tb.client, "GET", hv1.api, "/debug/flows", nil, &fl); err != nil || code != http.StatusOK {
		t.Fatalf("/debug/flows: %d %v", code, err)
	}
	t.Logf("/debug/flows of hv1: %v", fl.Counts)
	if !fl.Compared || fl.Counts["installed"] < 20 || (fl.Counts["reactive"] == 0) == reactive || fl.Counts["missing"] != 0 || fl.Counts["undesired"] != 0 || fl.Counts["differs"] != 0 {
		t.Errorf("/debug/flows of hv1: compared %v, counts %v", fl.Compared, fl.Counts)
	}
	if code, err := daemontest.Call(tb.client, "GET", hv1.api, "/debug/flows?port="+p1, nil, &fl); err != nil || code != http.StatusOK {
		t.Fatalf("/debug/flows?port: %d %v", code, err)
	}
	for _, f := range fl.Flows {
		if f.Object != "port "+p1 {
			t.Errorf("/debug/flows?port=%s holds a flow of %s (%s)", p1, f.Object, f.App)
		}
	}
	if code, _ := daemontest.Call(tb.client, "GET", hv1.api, "/debug/flows?chassis=hv2", nil, nil); code != http.StatusMisdirectedRequest {
		t.Errorf("/debug/flows?chassis=hv2 on hv1: %d, want 421", code)
	}

	if !reactive {
		return
	}
	// (6) The real CLI.
	out, err := cli("trace", "--from", p1, "--to", "10.0.0.12", "--live")
	t.Logf("wyvern trace --live:\n%s", out)
	if err != nil || !strings.Contains(out, "tun_id=0x64 tun_dst=172.31.0.2") || !strings.Contains(out, "OVS agrees") {
		t.Errorf("wyvern trace --live: %v\n%s", err, out)
	}
	out, err = cli("trace", "--from", p1, "--to", "10.0.0.12", "--src-ip", "10.0.0.99")
	if err != nil || !strings.Contains(out, "=> drop in PortSecurity") {
		t.Errorf("wyvern trace --src-ip: %v\n%s", err, out)
	}
	out, err = cli("flows", "--port", p1)
	if err != nil || !strings.Contains(out, "PortSecurity") || !strings.Contains(out, "installed") || strings.Contains(out, "missing") {
		t.Errorf("wyvern flows --port: %v\n%s", err, out)
	}

	// Asked of hv1, the CLI asks the node that manages the chassis.
	out, err = cli("trace", "--from", p2, "--to", "10.0.0.11")
	if err != nil || !strings.Contains(out, "chassis hv2 (node hv2") || !strings.Contains(out, "tun_dst=172.31.0.1") {
		t.Errorf("wyvern trace from a2, through hv1's API: %v\n%s", err, out)
	}
	out, err = cli("flows", "--chassis", "hv3")
	if err != nil || !strings.Contains(out, "chassis hv3 (node hv3") {
		t.Errorf("wyvern flows --chassis hv3, through hv1's API: %v\n%s", err, out)
	}

	// (7) The support bundle.
	tarball := filepath.Join(t.TempDir(), "bundle.tar.gz")
	if out, err := cli("support-bundle", "--file", tarball); err != nil {
		t.Fatalf("wyvern support-bundle: %v\n%s", err, out)
	}
	got := readTarball(t, tarball)
	for _, name := range []string{"cluster.json", "chassis.json", "punts.json", "ovsdb.json", "logs.json",
		"flows-hv1.json", "flows-hv2.json", "flows-hv3.json"} {
		if len(got[name]) < 20 {
			t.Errorf("the bundle's %s: %q", name, got[name])
		}
	}
	if e, ok := got["errors.txt"]; ok {
		t.Errorf("the bundle's errors.txt: %s", e)
	}
	for name, want := range map[string]string{"ovsdb.json": "br-int", "logs.json": "bridge replayed", "flows-hv3.json": `"chassis": "hv3"`} {
		if !strings.Contains(got[name], want) {
			t.Errorf("the bundle's %s holds no %q:\n%.2000s", name, want, got[name])
		}
	}
}

func buildWyvern(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wyvern")
	if out, err := exec.Command("go", "build", "-o", bin, "../wyvern").CombinedOutput(); err != nil {
		t.Fatalf("building wyvern: %v\n%s", err, out)
	}
	return bin
}

func readTarball(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(h.Name, "wyvern-support/")] = string(b)
	}
}
