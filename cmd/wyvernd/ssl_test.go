package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
	"github.com/wyvern-sdn/wyvern/internal/tlsconfig/tlstest"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// TestBridgeOverSSL runs wyvernd with --openflow-addr ssl: and the node's
// --tls-* files: it gives its OVS those files (get-ssl shows them), points
// the bridge at ssl:127.0.0.1:PORT, and the bridge connects over TLS and
// gets the base pipeline.
func TestBridgeOverSSL(t *testing.T) {
	o := ovstest.Start(t)
	node := tlstest.NewCA(t, o.Dir, "cluster").Issue(t, "hv1")
	br := ovstest.Name("br")
	logPath := filepath.Join(o.Dir, "wyvernd.log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("wyvernd log:\n%s", b)
		}
	})
	start := time.Now()
	startDaemon(t, o.NS, logPath, "--node-id", "hv1", "--data-dir", filepath.Join(o.Dir, "data"),
		"--openflow-addr", "ssl:127.0.0.1:6653", "--ovsdb", o.DB(), "--encap-ip", "172.31.0.1",
		"--bridge", br, "--datapath-type", "netdev",
		"--tls-cert", node.Cert, "--tls-key", node.Key, "--tls-ca", node.CA)
	want := fmt.Sprintf("Private key: %s\nCertificate: %s\nCA Certificate: %s\nBootstrap: false", node.Key, node.Cert, node.CA)
	ovstest.Eventually(t, 20*time.Second, "get-ssl naming the node's files", func() bool {
		out, err := o.VsctlErr("get-ssl")
		return err == nil && strings.TrimSpace(out) == want
	})
	if got := o.Vsctl("get-controller", br); got != "ssl:127.0.0.1:6653" {
		t.Fatalf("controller %q, want ssl:127.0.0.1:6653", got)
	}
	ovstest.Eventually(t, 20*time.Second, "the base pipeline over TLS", func() bool {
		lines, err := o.DumpFlowsErr(br)
		return err == nil && len(lines) >= len(pipeline.MissFlows(pipeline.Reactive, 0))
	})
	t.Logf("wyvernd start to base pipeline over TLS: %s", time.Since(start).Round(time.Millisecond))
	ovstest.Eventually(t, 15*time.Second, "is_connected=true", func() bool { return o.Connected(br) })
}
