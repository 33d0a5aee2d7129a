package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wyvern-sdn/wyvern/bench/emulator"
	"github.com/wyvern-sdn/wyvern/internal/daemontest"
	"github.com/wyvern-sdn/wyvern/internal/ovstest"
)

// What the emulator benchmarks share: processes started by pid and
// stopped by pid, an ovsdb-server without ovs-vswitchd (the emulator
// plays ovs-vswitchd for the bridge the chassis agent creates), and the
// results directory the plots go to.

// resultsDir is where the benchmarks write their plots and profiles
// (WYVERN_BENCH_OUT, default bench/results).
func resultsDir(t testing.TB) string {
	dir := os.Getenv("WYVERN_BENCH_OUT")
	if dir == "" {
		dir = "results"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// process is a child started for a benchmark, stopped by pid at cleanup.
type process struct {
	cmd *exec.Cmd
	log string
}

// startProcess runs args, pinned to cpus (taskset syntax; empty: any),
// with env added, its output in a log file shown when the test fails
// (kept in the directory WYVERN_BENCH_LOGS names, if set).
func startProcess(t testing.TB, name, cpus string, env []string, args ...string) *process {
	t.Helper()
	if cpus != "" {
		args = append([]string{"taskset", "-c", cpus}, args...)
	}
	logDir := os.Getenv("WYVERN_BENCH_LOGS")
	if logDir == "" {
		logDir = t.TempDir()
	} else if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, log: logPath}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		f.Close()
		if t.Failed() || os.Getenv("WYVERN_BENCH_LOG") != "" {
			b, _ := os.ReadFile(logPath)
			if len(b) > 3000 && os.Getenv("WYVERN_BENCH_LOG") == "" {
				b = b[len(b)-3000:]
			}
			t.Logf("--- %s (tail):\n%s", name, b)
		}
	})
	return p
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// cpuTime is the user+system CPU the process has used, from /proc.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseUint(fields[11], 10, 64)
	st, _ := strconv.ParseUint(fields[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// startTime is when a process started, from /proc (to 10 ms): GODEBUG
// gctrace lines are timed from it.
func startTime(pid int) time.Time {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return time.Time{}
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	stat, err := os.ReadFile("/proc/stat")
	if err != nil || len(fields) < 20 {
		return time.Time{}
	}
	ticks, _ := strconv.ParseInt(fields[19], 10, 64)
	for _, line := range strings.Split(string(stat), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			boot, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return time.Unix(boot, 0).Add(time.Duration(ticks) * time.Second / 100)
		}
	}
	return time.Time{}
}

// rss is the process' resident set in bytes, from /proc.
func rss(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// ovsdb is an ovsdb-server with the Open vSwitch schema and no
// ovs-vswitchd: the chassis agent creates its bridge there, and the
// benchmark fills in what ovs-vswitchd would (the datapath id, the
// ofports), for an emulated switch to be that bridge.
type ovsdb struct {
	t   testing.TB
	dir string
}

func startOVSDB(t testing.TB) *ovsdb {
	t.Helper()
	ovstest.Require(t)
	dir, err := os.MkdirTemp("/tmp", "wyemudb")
	if err != nil {
		t.Fatal(err)
	}
	o := &ovsdb{t: t, dir: dir}
	if out, err := exec.Command("ovsdb-tool", "create", filepath.Join(dir, "conf.db"), "/usr/share/openvswitch/vswitch.ovsschema").CombinedOutput(); err != nil {
		t.Fatalf("ovsdb-tool: %v %s", err, out)
	}
	if out, err := exec.Command("ovsdb-server", filepath.Join(dir, "conf.db"), "--remote=punix:"+filepath.Join(dir, "db.sock"),
		"--pidfile="+filepath.Join(dir, "db.pid"), "--detach", "--log-file="+filepath.Join(dir, "db.log"),
		"--unixctl="+filepath.Join(dir, "db.ctl")).CombinedOutput(); err != nil {
		t.Fatalf("ovsdb-server: %v %s", err, out)
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(dir, "db.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGTERM)
				for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}
		_ = os.RemoveAll(dir)
	})
	o.vsctl("--no-wait", "init")
	return o
}

func (o *ovsdb) endpoint() string { return "unix:" + filepath.Join(o.dir, "db.sock") }

func (o *ovsdb) vsctl(args ...string) string {
	o.t.Helper()
	out, err := exec.Command("ovs-vsctl", append([]string{"--db=" + o.endpoint(), "--no-wait"}, args...)...).CombinedOutput()
	if err != nil {
		o.t.Fatalf("ovs-vsctl %v: %v %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// plug adds the ports to the bridge as ovs-vswitchd would report them:
// each interface with its iface-id and ofport.
func (o *ovsdb) plug(bridge string, ports []emulator.Port, ids []string) {
	o.t.Helper()
	args := []string{}
	for i, p := range ports {
		args = append(args, "--", "add-port", bridge, p.Name, "--", "set", "interface", p.Name,
			"external_ids:iface-id="+ids[i], fmt.Sprintf("ofport=%d", p.OFPort))
	}
	o.vsctl(args...)
}

// daemon is one wyvernd process of a benchmark.
type daemon struct {
	*process
	api, raft, openflow, debug string
}

type wyverndOptions struct {
	name, dataDir, ovsdb, cpus, join string
	encapIP                          string // default 127.0.0.1
	gomaxprocs                       int
	extra                            []string
	env                              []string // more of wyvernd's environment
}

func startWyvernd(t testing.TB, o wyverndOptions) *daemon {
	t.Helper()
	d := &daemon{api: ovstest.FreeAddr(t), raft: ovstest.FreeAddr(t), openflow: "tcp:" + ovstest.FreeAddr(t), debug: ovstest.FreeAddr(t)}
	args := []string{wyvernd, "--node-id", o.name, "--data-dir", o.dataDir, "--raft-addr", d.raft, "--api-addr", d.api,
		"--openflow-addr", d.openflow, "--debug-addr", d.debug, "--log-level", benchLogLevel()}
	if o.ovsdb != "" {
		if o.encapIP == "" {
			o.encapIP = "127.0.0.1"
		}
		args = append(args, "--ovsdb", o.ovsdb, "--encap-ip", o.encapIP)
	}
	if o.join != "" {
		args = append(args, "--join", o.join)
	}
	args = append(args, o.extra...)
	env := slices.Clone(o.env)
	if o.gomaxprocs > 0 {
		env = append(env, fmt.Sprintf("GOMAXPROCS=%d", o.gomaxprocs))
	}
	d.process = startProcess(t, o.name, o.cpus, env, args...)
	client := &http.Client{Timeout: 5 * time.Second}
	// /readyz waits for the local bridge too, which connects later:
	// the API answering a read is enough here.
	ovstest.Eventually(t, 60*time.Second, o.name+" serving", func() bool {
		code, _ := daemontest.Call(client, "GET", d.api, "/v2.0/networks", nil, nil)
		return code == http.StatusOK
	})
	return d
}

// apiClient is a JSON client of one wyvernd's API.
type apiClient struct {
	t      testing.TB
	addr   string
	client *http.Client
}

func newAPIClient(t testing.TB, addr string) *apiClient {
	return &apiClient{t: t, addr: addr, client: &http.Client{Timeout: 60 * time.Second}}
}

// post creates; a 503 (no leader for a moment: an election on a busy
// machine) is retried, which is safe for the requests here: they name
// what they create (ids, names), and one that committed after all
// answers 409, which is taken as done when out is nil.
func (a *apiClient) post(path string, body, out any) {
	a.t.Helper()
	if a.postRetry(path, body, out) {
		a.t.Fatalf("POST %s: 409 on a retry: the first attempt committed", path)
	}
}

// postRetry is post; it reports true, instead of failing, when a retry
// found the objects created (409) and out is not nil.
func (a *apiClient) postRetry(path string, body, out any) (committed bool) {
	a.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for retried := false; ; retried = true {
		var raw json.RawMessage
		code, err := daemontest.Call(a.client, "POST", a.addr, path, body, &raw)
		switch {
		case err == nil && code == http.StatusCreated:
			if out != nil {
				if err := json.Unmarshal(raw, out); err != nil {
					a.t.Fatalf("POST %s: %v", path, err)
				}
			}
			return false
		case retried && code == http.StatusConflict:
			return out != nil
		case code == http.StatusServiceUnavailable && time.Now().Before(deadline):
			a.t.Logf("POST %s: 503 %s; retrying", path, raw)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		a.t.Fatalf("POST %s: %d %v %s", path, code, err, raw)
	}
}

type apiPort struct {
	ID       string `json:"id"`
	MAC      string `json:"mac_address"`
	FixedIPs []struct {
		IP string `json:"ip_address"`
	} `json:"fixed_ips"`
}

// network creates a network and a subnet of cidr; it returns the id.
func (a *apiClient) network(name, cidr string) string {
	a.t.Helper()
	var n struct {
		Network struct {
			ID string `json:"id"`
		} `json:"network"`
	}
	a.post("/v2.0/networks", map[string]any{"network": map[string]any{"name": name}}, &n)
	a.post("/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": n.Network.ID, "cidr": cidr, "ip_version": 4}}, nil)
	return n.Network.ID
}

// ports bulk-creates n ports on a network.
func (a *apiClient) ports(network string, n int) []apiPort {
	a.t.Helper()
	var out struct {
		Ports []apiPort `json:"ports"`
	}
	var all []apiPort
	for len(all) < n {
		k := min(n-len(all), 1000)
		reqs := make([]map[string]any, k)
		for i := range reqs {
			reqs[i] = map[string]any{"network_id": network}
		}
		a.post("/v2.0/ports", map[string]any{"ports": reqs}, &out)
		all = append(all, out.Ports...)
	}
	return all
}

// emulatedPorts are the emulator's ports for API ports, ofports from first.
func emulatedPorts(t testing.TB, ps []apiPort, first uint32) []emulator.Port {
	t.Helper()
	out := make([]emulator.Port, len(ps))
	for i, p := range ps {
		mac, err := net.ParseMAC(p.MAC)
		if err != nil || len(p.FixedIPs) == 0 {
			t.Fatalf("port %s: mac %q ips %v", p.ID, p.MAC, p.FixedIPs)
		}
		ip := netip.MustParseAddr(p.FixedIPs[0].IP)
		out[i] = emulator.Port{OFPort: first + uint32(i), Name: fmt.Sprintf("tap%d", first+uint32(i)), MAC: mac, IP: ip}
	}
	return out
}

// pinSelf pins every thread of the test process (and so the threads it
// starts later) to cpus; the returned func undoes it.
func pinSelf(t testing.TB, cpus ...int) func() {
	var set, all unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Logf("no affinity: %v", err)
		return func() {}
	}
	apply := func(s *unix.CPUSet) {
		tasks, _ := os.ReadDir("/proc/self/task")
		for _, task := range tasks {
			if tid, err := strconv.Atoi(task.Name()); err == nil {
				_ = unix.SchedSetaffinity(tid, s)
			}
		}
	}
	apply(&set)
	return func() { apply(&all) }
}

// dialSwitch connects an emulated switch and serves it until the test ends.
func dialSwitch(t testing.TB, ctx context.Context, target string, cfg emulator.Config) *emulator.Switch {
	t.Helper()
	sw, err := emulator.Dial(ctx, target, cfg)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = sw.Run(ctx) }()
	t.Cleanup(sw.Close)
	select {
	case <-sw.Ready():
	case <-time.After(30 * time.Second):
		t.Fatalf("switch %016x: no handshake", cfg.DPID)
	}
	return sw
}
