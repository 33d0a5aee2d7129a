package ofctl

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
	"github.com/wyvern-sdn/wyvern/internal/tlsconfig"
	"github.com/wyvern-sdn/wyvern/internal/tlsconfig/tlstest"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// sslServer serves ssl:127.0.0.1:0 inside the OVS namespace with the
// controller's files, handing each session to connected; logs go to the
// test and to the returned observer.
func sslServer(t *testing.T, o *ovstest.OVS, files tlsconfig.Files, connected chan<- *Switch) (*Server, *observer.ObservedLogs) {
	t.Helper()
	tc, err := files.Mutual()
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.WarnLevel)
	log := zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), core))
	h := handlerFunc{connected: func(ctx context.Context, sw *Switch) { connected <- sw; <-ctx.Done() }}
	var srv *Server
	if err := o.NS.Do(func() (err error) {
		srv, err = Listen(Config{Addr: "ssl:127.0.0.1:0", TLS: tc, TableNames: pipeline.TableNames()}, h, log)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv, logs
}

// TestSwitchConnectsOverSSL: a bridge given the switch's files with
// `ovs-vsctl set-ssl` connects to an ssl: target, and the session works:
// features, a flow installed in a bundle, seen by ovs-ofctl.
func TestSwitchConnectsOverSSL(t *testing.T) {
	o := ovstest.Start(t)
	ca := tlstest.NewCA(t, o.Dir, "cluster")
	ctl, sw := ca.Issue(t, "controller"), ca.Issue(t, "hv1")
	o.Vsctl("set-ssl", sw.Key, sw.Cert, sw.CA)
	connected := make(chan *Switch, 4)
	srv, _ := sslServer(t, o, ctl, connected)
	target := srv.Target()
	if !strings.HasPrefix(target, "ssl:127.0.0.1:") || strings.HasSuffix(target, ":0") {
		t.Fatalf("target %q, want ssl:127.0.0.1:PORT", target)
	}
	br := ovstest.Name("br")
	start := time.Now()
	o.AddBridge(br, ovstest.BridgeOptions{Controller: target})
	var s *Switch
	select {
	case s = <-connected:
		t.Logf("bridge connected over TLS %s after add-br", time.Since(start).Round(time.Millisecond))
	case <-time.After(15 * time.Second):
		t.Fatal("bridge did not connect over ssl")
	}
	if want := strings.Trim(o.Vsctl("get", "bridge", br, "datapath_id"), `"`); s.String() != want {
		t.Fatalf("session dpid %s, bridge datapath_id %s", s, want)
	}
	flow := of.Flow{Table: 0, Priority: 4242, Cookie: 0x5e1}
	if err := s.Bundle(context.Background(), []of.FlowMod{{Command: of.FlowAdd, Flow: flow}}); err != nil {
		t.Fatal(err)
	}
	dump := strings.Join(o.DumpFlows(br), "\n")
	if !strings.Contains(dump, "cookie=0x5e1") || !strings.Contains(dump, "priority=4242") {
		t.Fatalf("flow not on the bridge:\n%s", dump)
	}
	start = time.Now()
	ovstest.Eventually(t, 10*time.Second, "is_connected=true", func() bool { return o.Connected(br) })
	t.Logf("ovs-vsctl shows is_connected=true %s after the flow was seen", time.Since(start).Round(time.Millisecond))
	if n := srv.Refused(); n != 0 {
		t.Fatalf("%d connections refused", n)
	}
}

// TestForeignSwitchIsRefused: a switch whose certificate another CA signed
// (though it trusts ours) never gets a session; the server counts and logs
// the refusal.
func TestForeignSwitchIsRefused(t *testing.T) {
	o := ovstest.Start(t)
	ours, theirs := tlstest.NewCA(t, o.Dir, "cluster"), tlstest.NewCA(t, o.Dir, "foreign")
	ctl, evil := ours.Issue(t, "controller"), theirs.Issue(t, "evil")
	o.Vsctl("set-ssl", evil.Key, evil.Cert, ours.File)
	connected := make(chan *Switch, 4)
	srv, logs := sslServer(t, o, ctl, connected)
	br := ovstest.Name("br")
	o.AddBridge(br, ovstest.BridgeOptions{Controller: srv.Target()})
	ovstest.Eventually(t, 10*time.Second, "the server to refuse the switch", func() bool { return srv.Refused() > 0 })
	select {
	case s := <-connected:
		t.Fatalf("switch %s with a foreign certificate got a session", s)
	case <-time.After(3 * time.Second):
	}
	if len(srv.Switches()) != 0 || o.Connected(br) {
		t.Fatal("the foreign switch is connected")
	}
	refusals := logs.FilterMessage("switch refused: TLS handshake failed").All()
	if len(refusals) == 0 {
		t.Fatal("no refusal logged")
	}
	if err := refusals[0].ContextMap()["error"]; !strings.Contains(err.(string), "certificate") {
		t.Fatalf("refusal logged with %v, want a certificate error", err)
	}
	t.Logf("refused %d connections; first: %v", srv.Refused(), refusals[0].ContextMap()["error"])
}

// TestSSLNeedsMutualTLS: an ssl: listener without a TLS configuration, or
// with one that does not require a switch certificate, is refused.
func TestSSLNeedsMutualTLS(t *testing.T) {
	log := zaptest.NewLogger(t)
	if _, err := Listen(Config{Addr: "ssl:127.0.0.1:0"}, handlerFunc{}, log); err == nil || !strings.Contains(err.Error(), "--tls-cert") {
		t.Fatalf("ssl without TLS: %v", err)
	}
	files := tlstest.NewCA(t, t.TempDir(), "cluster").Issue(t, "n1")
	server, err := files.Server() // client certificates optional: not enough
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(Config{Addr: "ssl:127.0.0.1:0", TLS: server}, handlerFunc{}, log); err == nil {
		t.Fatal("ssl listener accepted a TLS configuration that does not require a switch certificate")
	}
	mutual, _ := files.Mutual()
	srv, err := Listen(Config{Addr: "ssl:127.0.0.1:0", TLS: mutual}, handlerFunc{}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if got := srv.Target(); !strings.HasPrefix(got, "ssl:127.0.0.1:") || strings.HasSuffix(got, ":0") {
		t.Fatalf("target %q, want ssl:127.0.0.1:PORT", got)
	}
}
