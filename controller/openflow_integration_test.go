package controller

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
	"github.com/wyvern-sdn/wyvern/internal/tlsconfig/tlstest"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// goldenLines reads a golden file of the pipeline package.
func goldenLines(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "pipeline", "testdata", name+".golden"))
	if err != nil {
		t.Fatal(err)
	}
	return of.NormalizeDump(string(b))
}

// startNode runs a node, its listener opened inside the hypervisor's
// namespace, until the test ends.
func startNode(t *testing.T, ns *ovstest.NetNS, addr string, mode pipeline.Mode) *Node {
	t.Helper()
	var n *Node
	err := ns.Do(func() (err error) {
		n, err = NewNode(NodeConfig{NodeID: "test", OpenFlowAddr: addr, Mode: mode}, zaptest.NewLogger(t))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	runNode(t, n)
	return n
}

// runNode runs a node until the test ends; a Run error fails the test.
func runNode(t testing.TB, n *Node) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node: %v", err)
		}
	})
}

func waitForFlows(t *testing.T, o *ovstest.OVS, bridge string, want []string) {
	t.Helper()
	var got []string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		got, _ = o.DumpFlowsErr(bridge)
		if strings.Join(got, "\n") == strings.Join(want, "\n") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("bridge %s flows differ from the golden file:\n--- got\n%s\n--- want\n%s", bridge,
		strings.Join(got, "\n"), strings.Join(want, "\n"))
}

// TestBasePipelineOnRealBridge connects a netdev bridge to the node over
// tcp and over unix, and compares ovs-ofctl's own dump, with table names,
// to the golden file the model produced.
func TestBasePipelineOnRealBridge(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode pipeline.Mode
	}{{"tcp", pipeline.Reactive}, {"unix", pipeline.Proactive}} {
		t.Run(tc.name, func(t *testing.T) {
			o := ovstest.Start(t)
			var target string
			if tc.name == "tcp" {
				n := startNode(t, o.NS, "tcp:127.0.0.1:0", tc.mode)
				target = "tcp:" + n.OpenFlowAddr()
			} else {
				sock := filepath.Join(o.Dir, "wyvern.sock")
				startNode(t, o.NS, "unix:"+sock, tc.mode)
				target = "unix:" + sock
			}
			br := ovstest.Name("br")
			o.AddBridge(br, ovstest.BridgeOptions{Controller: target})
			waitForFlows(t, o, br, goldenLines(t, "base_"+tc.mode.String()))
			// Table names are on the switch itself, not just in our text.
			out := o.Ofctl("dump-table-features", br)
			for _, s := range pipeline.Stages {
				if !strings.Contains(out, `"`+s.Name+`"`) {
					t.Errorf("table %d is not named %q on the switch", s.First, s.Name)
				}
			}
		})
	}
}

// TestBasePipelineOverSSL: a node with --openflow-addr ssl: and the
// node's TLS files programs a bridge that connects with a certificate of
// the same CA (set-ssl); without TLS files the node does not start.
func TestBasePipelineOverSSL(t *testing.T) {
	o := ovstest.Start(t)
	ca := tlstest.NewCA(t, o.Dir, "cluster")
	node, hv := ca.Issue(t, "node"), ca.Issue(t, "hv1")
	if _, err := NewNode(NodeConfig{NodeID: "test", OpenFlowAddr: "ssl:127.0.0.1:0"}, zaptest.NewLogger(t)); err == nil ||
		!strings.Contains(err.Error(), "TLS") {
		t.Fatalf("a node served ssl: without TLS files: %v", err)
	}
	var n *Node
	if err := o.NS.Do(func() (err error) {
		n, err = NewNode(NodeConfig{NodeID: "test", OpenFlowAddr: "ssl:127.0.0.1:0", Mode: pipeline.Reactive, TLS: node}, zaptest.NewLogger(t))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	runNode(t, n)
	o.Vsctl("set-ssl", hv.Key, hv.Cert, hv.CA)
	br := ovstest.Name("br")
	o.AddBridge(br, ovstest.BridgeOptions{Controller: "ssl:" + n.OpenFlowAddr()})
	waitForFlows(t, o, br, goldenLines(t, "base_reactive"))
}
