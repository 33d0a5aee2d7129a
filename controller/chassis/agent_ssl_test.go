package chassis

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
	"github.com/wyvern-sdn/wyvern/internal/tlsconfig"
	"github.com/wyvern-sdn/wyvern/internal/tlsconfig/tlstest"
	"github.com/wyvern-sdn/wyvern/ofctl"
)

// sessions records the switches connected to an OpenFlow server.
type sessions struct {
	mu    sync.Mutex
	dpids []uint64
}

func (s *sessions) Connected(ctx context.Context, sw *ofctl.Switch) {
	s.mu.Lock()
	s.dpids = append(s.dpids, sw.DPID())
	s.mu.Unlock()
	<-ctx.Done()
}

func (s *sessions) PacketIn(context.Context, *ofctl.Switch, ofctl.PacketIn) {}

func (s *sessions) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.dpids)
}

// sslController serves OpenFlow on ssl:127.0.0.1:0 inside the OVS
// namespace with the node's files until the test ends.
func sslController(t *testing.T, o *ovstest.OVS, files tlsconfig.Files) (*ofctl.Server, *sessions) {
	t.Helper()
	tc, err := files.Mutual()
	if err != nil {
		t.Fatal(err)
	}
	h := &sessions{}
	var srv *ofctl.Server
	if err := o.NS.Do(func() (err error) {
		srv, err = ofctl.Listen(ofctl.Config{Addr: "ssl:127.0.0.1:0", TLS: tc}, h, zaptest.NewLogger(t))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv, h
}

// runAgent runs an agent until the test ends.
func runAgent(t *testing.T, cfg AgentConfig) {
	t.Helper()
	a := NewAgent(cfg, zaptest.NewLogger(t), func(BridgeFacts) {})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// getSSL is `ovs-vsctl get-ssl` in the form set-ssl takes it.
func getSSL(o *ovstest.OVS) string {
	out, _ := o.VsctlErr("get-ssl")
	return strings.TrimSpace(out)
}

func wantSSL(f tlsconfig.Files) string {
	return fmt.Sprintf("Private key: %s\nCertificate: %s\nCA Certificate: %s\nBootstrap: false", f.Key, f.Cert, f.CA)
}

// TestAgentGivesOVSTheNodeCertificate: an agent with the node's TLS files
// leaves OVS configured as `set-ssl KEY CERT CA` would, keeps it so when
// someone changes it, points the bridge at the ssl: target, and the
// bridge connects over TLS.
func TestAgentGivesOVSTheNodeCertificate(t *testing.T) {
	o := ovstest.Start(t)
	ca := tlstest.NewCA(t, o.Dir, "cluster")
	node := ca.Issue(t, "hv1")
	srv, h := sslController(t, o, node)
	br := ovstest.Name("br")
	start := time.Now()
	runAgent(t, AgentConfig{Endpoint: o.DB(), Bridge: br, DatapathType: "netdev", Controller: srv.Target(), TLS: node})
	ovstest.Eventually(t, 10*time.Second, "get-ssl naming the node's files", func() bool { return getSSL(o) == wantSSL(node) })
	if got := o.Vsctl("get-controller", br); got != srv.Target() {
		t.Fatalf("controller %q, want %q", got, srv.Target())
	}
	ovstest.Eventually(t, 15*time.Second, "an OpenFlow session over TLS", func() bool { return h.count() > 0 })
	t.Logf("agent start to OpenFlow session over TLS: %s", time.Since(start).Round(time.Millisecond))
	ovstest.Eventually(t, 15*time.Second, "is_connected=true", func() bool {
		out, _ := o.VsctlErr("--columns=target,is_connected", "list", "controller")
		return strings.Contains(out, srv.Target()) && strings.Contains(out, "is_connected        : true")
	})
	t.Logf("agent start to is_connected=true: %s", time.Since(start).Round(time.Millisecond))

	// Someone points OVS at other files; the agent puts the node's back,
	// in the same SSL row.
	other := ca.Issue(t, "other")
	row := o.Vsctl("get", "open_vswitch", ".", "ssl")
	o.Vsctl("set", "ssl", row, "private_key="+other.Key, "certificate="+other.Cert)
	ovstest.Eventually(t, 10*time.Second, "get-ssl restored", func() bool { return getSSL(o) == wantSSL(node) })
	// And if the SSL configuration is deleted, it comes back.
	o.Vsctl("del-ssl")
	ovstest.Eventually(t, 10*time.Second, "get-ssl after del-ssl", func() bool { return getSSL(o) == wantSSL(node) })
	if n := srv.Refused(); n != 0 {
		t.Fatalf("the controller refused %d connections of the node's own OVS", n)
	}
}

// TestAgentReachesOVSDBOverSSL: with --ovsdb ssl:HOST:PORT the agent
// dials ovsdb-server over TLS with the node's certificate (ovsdb-server
// serving pssl: with the same files, as ovs-ctl sets it up from the SSL
// row) and sets up the bridge through it; an agent whose CA did not sign
// the server's certificate refuses to talk to it.
func TestAgentReachesOVSDBOverSSL(t *testing.T) {
	o := ovstest.Start(t)
	ca := tlstest.NewCA(t, o.Dir, "cluster")
	node := ca.Issue(t, "hv1")
	o.Vsctl("set-ssl", node.Key, node.Cert, node.CA)
	endpoint := o.ServeOVSDBOverSSL()

	foreign := tlstest.NewCA(t, o.Dir, "foreign").Issue(t, "evil")
	a := NewAgent(AgentConfig{Endpoint: endpoint, Bridge: "unused", DatapathType: "netdev", Controller: "tcp:127.0.0.1:1", TLS: foreign},
		zaptest.NewLogger(t), func(BridgeFacts) {})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := a.session(ctx)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "cluster CA") {
		t.Fatalf("an agent of a foreign CA talked to ovsdb-server: %v", err)
	}
	t.Logf("foreign agent: %v", err)
	if _, err := (&Agent{cfg: AgentConfig{Endpoint: endpoint}}).dialOptions(); err == nil {
		t.Fatal("an ssl: endpoint without TLS files was dialed")
	}

	srv, h := sslController(t, o, node)
	br := ovstest.Name("br")
	start := time.Now()
	runAgent(t, AgentConfig{Endpoint: endpoint, Bridge: br, DatapathType: "netdev", Controller: srv.Target(), TLS: node})
	ovstest.Eventually(t, 15*time.Second, "the bridge made through ssl: OVSDB", func() bool {
		_, err := o.VsctlErr("br-exists", br)
		return err == nil
	})
	t.Logf("agent start to bridge created over ssl: OVSDB: %s", time.Since(start).Round(time.Millisecond))
	ovstest.Eventually(t, 15*time.Second, "an OpenFlow session over TLS", func() bool { return h.count() > 0 })
	if got := getSSL(o); got != wantSSL(node) {
		t.Fatalf("get-ssl:\n%s\nwant\n%s", got, wantSSL(node))
	}
}
