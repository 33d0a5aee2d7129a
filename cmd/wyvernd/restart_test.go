package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/daemontest"
	"github.com/wyvern-sdn/wyvern/internal/ovstest"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

var wyvernd string // the binary under test, built once

func TestMain(m *testing.M) { daemontest.Main(m, ".", &wyvernd) }

// daemon is a wyvernd process run inside a namespace.
type daemon struct {
	cmd *exec.Cmd
	log *os.File
}

func startDaemon(t *testing.T, ns *ovstest.NetNS, logPath string, args ...string) *daemon {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := ns.Command(append([]string{wyvernd}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, log: f}
	t.Cleanup(func() { d.stop(t) })
	return d
}

// stop sends SIGTERM to the daemon's pid and waits for it to exit.
func (d *daemon) stop(t *testing.T) {
	if d.cmd.ProcessState != nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("wyvernd exited: %v", err)
		}
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-done
		t.Errorf("wyvernd ignored SIGTERM for 10 s")
	}
	_ = d.log.Close()
}

// rounds returns the cookie round of every flow line.
func rounds(lines []string) []uint16 {
	var out []uint16
	for _, l := range lines {
		c := uint64(0)
		if strings.HasPrefix(l, "cookie=") {
			v := strings.TrimPrefix(strings.SplitN(l, ",", 2)[0], "cookie=")
			c, _ = strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 64)
		}
		out = append(out, pipeline.Cookie(c).Round())
	}
	return out
}

func allInRound(lines []string, round uint16) bool {
	for _, r := range rounds(lines) {
		if r != round {
			return false
		}
	}
	return len(lines) > 0
}

// TestRestartNeverEmptiesBridge restarts wyvernd three times while a poller
// dumps the bridge as fast as ovs-ofctl allows. The bridge never shows
// fewer than the base pipeline's flows, each restart's new round replaces
// the old one, and no flow of an old round survives — including a flow
// the previous instance had and the new one does not want.
func TestRestartNeverEmptiesBridge(t *testing.T) {
	o := ovstest.Start(t)
	br := ovstest.Name("br")
	logPath := filepath.Join(o.Dir, "wyvernd.log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("wyvernd log:\n%s", b)
		}
	})
	args := []string{"--node-id", "hv1", "--openflow-addr", "tcp:127.0.0.1:6653", "--data-dir", filepath.Join(o.Dir, "data")}
	d := startDaemon(t, o.NS, logPath, args...)
	o.AddBridge(br, ovstest.BridgeOptions{Controller: "tcp:127.0.0.1:6653"})
	base := len(pipeline.MissFlows(pipeline.Reactive, 0))
	ovstest.Eventually(t, 15*time.Second, "round 1 installed", func() bool {
		lines, err := o.DumpFlowsErr(br)
		return err == nil && len(lines) == base && allInRound(lines, 1)
	})

	var mu sync.Mutex
	minFlows, polls := 1<<30, 0
	var pollErr error
	stopPoll := make(chan struct{})
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		for {
			select {
			case <-stopPoll:
				return
			default:
			}
			lines, err := o.DumpFlowsErr(br)
			mu.Lock()
			if err != nil && pollErr == nil {
				pollErr = err
			}
			if err == nil {
				polls++
				minFlows = min(minFlows, len(lines))
			}
			mu.Unlock()
		}
	}()

	for round := uint16(2); round <= 4; round++ {
		// A flow the running instance owns (its round) but will not
		// want after the restart, like a reactive flow that expired
		// from the topology.
		leftover := fmt.Sprintf("cookie=%#x,table=%d,priority=7,dl_dst=fa:16:3e:00:00:07,actions=drop",
			uint64(pipeline.NewCookie(round-1, pipeline.AppL2Pop, 7)), pipeline.Table(pipeline.L2Lookup))
		o.Ofctl("add-flow", br, leftover)
		d.stop(t)
		// The controller is gone: fail_mode=secure keeps every flow.
		if lines := o.DumpFlows(br); len(lines) != base+1 {
			t.Fatalf("with wyvernd stopped the bridge holds %d flows, want %d", len(lines), base+1)
		}
		d = startDaemon(t, o.NS, logPath, args...)
		ovstest.Eventually(t, 15*time.Second, fmt.Sprintf("round %d replaces round %d", round, round-1), func() bool {
			lines, err := o.DumpFlowsErr(br)
			return err == nil && len(lines) == base && allInRound(lines, round)
		})
	}
	close(stopPoll)
	<-pollDone

	mu.Lock()
	defer mu.Unlock()
	if pollErr != nil {
		t.Fatalf("dump failed while polling: %v", pollErr)
	}
	if polls < 20 {
		t.Fatalf("only %d dumps during three restarts: the poller saw too little to prove anything", polls)
	}
	if minFlows < base {
		t.Fatalf("the bridge showed %d flows at some point, fewer than the %d of the base pipeline", minFlows, base)
	}
	lines := o.DumpFlows(br)
	for i, r := range rounds(lines) {
		if r != 4 {
			t.Fatalf("flow of old round %d remains: %s", r, lines[i])
		}
	}
	t.Logf("%d dumps during 3 restarts; fewest flows seen %d (base pipeline %d)", polls, minFlows, base)
}

// TestBadFlagsExitNonZero checks the one-line reason on bad configuration.
func TestBadFlagsExitNonZero(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfgFile, []byte("node-id: a\nno-such-key: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--forwarding=sideways"}, "", "--forwarding"},
		{[]string{"--openflow-addr=udp:1"}, "", "--openflow-addr"},
		{[]string{"--openflow-addr=ssl:127.0.0.1:6653"}, "", "--openflow-addr ssl:127.0.0.1:6653: needs --tls-cert"},
		{[]string{"--ovsdb=ssl:127.0.0.1:6640", "--encap-ip=172.31.0.1"}, "", "--ovsdb ssl:127.0.0.1:6640: needs --tls-cert"},
		{[]string{"--tls-cert=/tmp/c.pem"}, "", "--tls-cert, --tls-key and --tls-ca go together"},
		{nil, "WYVERN_TLS_CA=/nonexistent/ca.pem", "--tls-cert, --tls-key and --tls-ca go together"},
		{[]string{"--log-level=loud"}, "", "--log-level"},
		{[]string{"--no-such-flag"}, "", "unknown flag"},
		{nil, "WYVERN_FORWARDING=sideways", "--forwarding"},
		{[]string{"--config", cfgFile}, "", "no-such-key"},
		{[]string{"--voter=maybe"}, "", "--voter"},
		{[]string{"--join=10.0.0.1:9696"}, "", "--join"},
		{[]string{"--api-addr=localhost"}, "", "--api-addr"},
		{[]string{"--ovsdb=unix:/tmp/x.sock"}, "", "--encap-ip"},
		{[]string{"--ovsdb=unix:/tmp/x.sock", "--encap-ip=172.31.0.1", "--datapath-type=dpdk"}, "", "--datapath-type"},
	} {
		cmd := exec.Command(wyvernd, tc.args...)
		cmd.Env = append(os.Environ(), tc.env)
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() == 0 {
			t.Errorf("%v %s: exit %v, want non-zero", tc.args, tc.env, err)
			continue
		}
		text := strings.TrimSpace(string(out))
		if strings.Count(text, "\n") != 0 || !strings.Contains(text, tc.want) {
			t.Errorf("%v %s: got %q, want one line naming %q", tc.args, tc.env, text, tc.want)
		}
	}
}
