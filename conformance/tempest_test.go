package conformance

// TestTempestNetworkAPI is `make conformance`: tempest's network API tests
// against a one-node wyvernd with --auth keystone and a real Keystone.
//
// It runs only with WYVERN_CONFORMANCE=1 (a run takes 8–11 minutes;
// make test has a time budget). The wyvernd it runs is $WYVERND (an
// absolute path), else bin/wyvernd (make build). Everything it leaves is in
// $WYVERN_CONFORMANCE_OUT, else bin/conformance: summary.txt (the counts,
// every failure with its reason, the skips grouped by reason),
// results.json (every test: status, reason, tempest's request log),
// tempest.conf, tempest.log (requests and answers, bodies included),
// tempest-run.log and wyvernd.log. WYVERN_CONFORMANCE_REGEX narrows the
// run (default ^tempest\.api\.network).
//
// The whole run fails below the bar: fewer than minPassed tests
// passed, or fewer than minPassRatio of the tests that ran. A narrowed
// run fails when any of its tests fails.

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/keystonetest"
	"github.com/wyvern-sdn/wyvern/internal/ovstest"
)

//go:embed results.py
var resultsScript []byte

const (
	// The bar (#16, "Done when").
	minPassed    = 120
	minPassRatio = 0.9

	// runTimeout bounds tempest's run; a full run takes 8–11 minutes on
	// the project's 2-core machines.
	runTimeout = 80 * time.Minute
	// concurrency is tempest's worker count: the machine's 2 cores.
	concurrency = 2

	// The external network the harness makes, as an operator would
	// (docs/operations.md, "A way out"): tempest's public_network_id.
	// 203.0.113.0/24 is TEST-NET-3: API data only, no packet is sent.
	publicCIDR    = "203.0.113.0/24"
	publicGateway = "203.0.113.1"
	// Tempest's project subnets are cut from this.
	projectCIDR = "10.100.0.0/16"
)

// python is Debian's: tempest, stestr and subunit are its packages (a
// python3 earlier on PATH, e.g. pyenv's, has none of them).
const python = "/usr/bin/python3"

func TestTempestNetworkAPI(t *testing.T) {
	if os.Getenv("WYVERN_CONFORMANCE") != "1" {
		t.Skip("the tempest conformance run: WYVERN_CONFORMANCE=1 (make conformance)")
	}
	began := time.Now()
	wyvernd := envOr("WYVERND", filepath.Join("..", "bin", "wyvernd"))
	if _, err := os.Stat(wyvernd); err != nil {
		t.Fatalf("wyvernd: %v (run make build, or set WYVERND)", err)
	}
	for _, bin := range []string{"/usr/bin/tempest", "/usr/bin/stestr"} {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%s: %v: Debian's python3-tempest is needed; run `make deps` as root", bin, err)
		}
	}
	out, err := filepath.Abs(envOr("WYVERN_CONFORMANCE_OUT", filepath.Join("..", "bin", "conformance")))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}

	// Registered first, run last: the counts close the output, after
	// whatever the other cleanups log.
	var closing string
	t.Cleanup(func() {
		if closing != "" {
			t.Log(closing)
		}
	})

	ks := keystonetest.Start(t, keystonetest.Options{})
	api := startWyvernd(t, wyvernd, ks, out)
	ks.RegisterService(t, "network", "neutron", "http://"+api+"/")
	adminUser, adminPassword, adminProject := ks.Admin()
	n := &neutron{t: t, api: api, token: ks.AdminToken}

	aliases := n.extensions()
	t.Logf("wyvernd advertises %d extensions: %s", len(aliases), strings.Join(aliases, ","))
	publicID := n.publicNetwork()

	// tempest keeps its workspaces' names in $HOME/.tempest: a HOME of
	// the run's own, so runs neither collide nor leave anything behind.
	home := t.TempDir()
	ws := filepath.Join(home, "workspace")
	conf := tempestConf(tempestSettings{
		identityURI: ks.URL(), adminUser: adminUser, adminPassword: adminPassword, adminProject: adminProject,
		extensions: aliases, publicNetworkID: publicID, logDir: out,
	})
	if err := os.WriteFile(filepath.Join(out, "tempest.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := tempestCmd(t.Context(), home, home, "/usr/bin/tempest", "init", ws).CombinedOutput(); err != nil {
		t.Fatalf("tempest init: %v\n%s", err, b)
	}
	if err := os.WriteFile(filepath.Join(ws, "etc", "tempest.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}

	const allTests = `^tempest\.api\.network`
	regex := envOr("WYVERN_CONFORMANCE_REGEX", allTests)
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()
	runLog, err := os.Create(filepath.Join(out, "tempest-run.log"))
	if err != nil {
		t.Fatal(err)
	}
	run := tempestCmd(ctx, home, ws, "/usr/bin/tempest", "run", "--regex", regex, "--concurrency", strconv.Itoa(concurrency))
	// The workspace's etc/tempest.conf, not a global /etc/tempest.
	run.Env = append(run.Env, "TEMPEST_CONFIG_DIR="+filepath.Join(ws, "etc"), "TEMPEST_CONFIG=tempest.conf")
	run.Stdout, run.Stderr = runLog, runLog
	runBegan := time.Now()
	runErr := run.Run() // non-zero when a test failed: the results say
	runLog.Close()
	runTook := time.Since(runBegan)
	if ctx.Err() != nil {
		t.Fatalf("tempest run: still running after %v (see %s)", runTimeout, runLog.Name())
	}

	results, err := readResults(t.Context(), home, ws)
	if err != nil {
		t.Fatalf("tempest run (%v): %v; see %s", runErr, err, runLog.Name())
	}
	if b, err := json.MarshalIndent(results, "", " "); err == nil {
		_ = os.WriteFile(filepath.Join(out, "results.json"), b, 0o644)
	}
	listed, err := listTests(t.Context(), home, ws, regex)
	if err != nil {
		t.Fatal(err)
	}
	s := summarize(results, listed)
	summary := s.report(runTook, time.Since(began))
	if err := os.WriteFile(filepath.Join(out, "summary.txt"), []byte(summary), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("tempest.api.network against wyvernd (results in %s):\n%s", out, summary)
	closing = fmt.Sprintf("%s (details: %s)", strings.SplitN(summary, "\n", 2)[0], filepath.Join(out, "summary.txt"))

	ran := s.passed + len(s.failed)
	switch {
	case ran == 0:
		t.Fatalf("tempest ran no test (%v); see %s", runErr, runLog.Name())
	case regex != allTests:
		if len(s.failed) > 0 {
			t.Errorf("%d of %d tests that ran failed", len(s.failed), ran)
		}
	case s.passed < minPassed:
		t.Errorf("%d tests passed, fewer than %d", s.passed, minPassed)
	case float64(s.passed) < minPassRatio*float64(ran):
		t.Errorf("%d of %d tests that ran passed, fewer than %.0f%%", s.passed, ran, 100*minPassRatio)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// startWyvernd starts a one-node cluster with --auth keystone on
// loopback, stopped by pid when the test ends, and returns its API
// address once /healthz answers 200.
func startWyvernd(t *testing.T, bin string, ks *keystonetest.Keystone, out string) string {
	user, password, project := ks.ServiceUser(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "wyvernd.yaml")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "keystone:\n  username: %s\n  password: %s\n  project_name: %s\n",
		user, password, project), 0o600); err != nil {
		t.Fatal(err)
	}
	api := ovstest.FreeAddr(t)
	logf, err := os.Create(filepath.Join(out, "wyvernd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--node-id", "c1", "--data-dir", filepath.Join(dir, "data"),
		"--raft-addr", ovstest.FreeAddr(t), "--api-addr", api, "--openflow-addr", "tcp:"+ovstest.FreeAddr(t),
		"--auth", "keystone", "--keystone-url", ks.URL(), "--config", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := client.Get("http://" + api + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return api
			}
		}
		select {
		case <-exited:
			t.Fatalf("wyvernd exited: %v; see %s", cmd.ProcessState, logf.Name())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("wyvernd not healthy after a minute (%v); see %s", err, logf.Name())
		}
	}
}

// neutron calls wyvernd's API as Keystone's admin.
type neutron struct {
	t     *testing.T
	api   string
	token func() string
}

func (n *neutron) call(method, path string, in, out any) (int, []byte) {
	n.t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(n.t.Context(), method, "http://"+n.api+path, body)
	if err != nil {
		n.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Auth-Token", n.token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			n.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode, b
}

// extensions reads what wyvernd advertises: tempest is told exactly that.
func (n *neutron) extensions() []string {
	var doc struct {
		Extensions []struct {
			Alias string `json:"alias"`
		} `json:"extensions"`
	}
	if code, b := n.call("GET", "/v2.0/extensions", nil, &doc); code != http.StatusOK {
		n.t.Fatalf("GET /v2.0/extensions: %d %s", code, b)
	}
	var aliases []string
	for _, e := range doc.Extensions {
		aliases = append(aliases, e.Alias)
	}
	sort.Strings(aliases)
	if len(aliases) == 0 {
		n.t.Fatal("GET /v2.0/extensions: none advertised")
	}
	return aliases
}

// publicNetwork makes the external network tempest's router-gateway and
// floating-IP tests use, as docs/operations.md tells an operator to,
// and returns its id.
func (n *neutron) publicNetwork() string {
	var net struct {
		Network struct {
			ID string `json:"id"`
		} `json:"network"`
	}
	code, b := n.call("POST", "/v2.0/networks", map[string]any{"network": map[string]any{
		"name": "public", "router:external": true,
		"provider:network_type": "flat", "provider:physical_network": "physnet1",
	}}, &net)
	if code != http.StatusCreated {
		n.t.Fatalf("creating the external network: %d %s", code, b)
	}
	code, b = n.call("POST", "/v2.0/subnets", map[string]any{"subnet": map[string]any{
		"name": "public-v4", "network_id": net.Network.ID, "ip_version": 4,
		"cidr": publicCIDR, "gateway_ip": publicGateway, "enable_dhcp": false,
	}}, nil)
	if code != http.StatusCreated {
		n.t.Fatalf("creating the external subnet: %d %s", code, b)
	}
	return net.Network.ID
}

type tempestSettings struct {
	identityURI                            string
	adminUser, adminPassword, adminProject string
	extensions                             []string
	publicNetworkID                        string
	logDir                                 string
}

// tempestConf is the tempest.conf of the run. Only the network service
// is available; tempest makes a project and users per test class
// (dynamic credentials) with the admin's. Features are what wyvernd
// does: the extensions it advertises, port security only when it
// advertises port-security, no IPv6 (Wyvern's subnets are IPv4).
func tempestConf(s tempestSettings) string {
	portSecurity := false
	for _, a := range s.extensions {
		portSecurity = portSecurity || a == "port-security"
	}
	return fmt.Sprintf(`# Written by wyvern's conformance test (conformance/tempest_test.go).
[DEFAULT]
debug = true
log_dir = %[1]s
log_file = tempest.log

[auth]
use_dynamic_credentials = true
admin_username = %[2]s
admin_password = %[3]s
admin_project_name = %[4]s
admin_domain_name = Default
default_credentials_domain_name = Default
create_isolated_networks = false

[identity]
uri_v3 = %[5]s
auth_version = v3
region = RegionOne
v3_endpoint_type = public

[identity-feature-enabled]
api_v2 = false

[service_available]
neutron = true
nova = false
cinder = false
glance = false
swift = false
horizon = false

[network]
region = RegionOne
endpoint_type = public
project_network_cidr = %[6]s
project_network_mask_bits = 28
public_network_id = %[7]s
floating_network_name = public
project_networks_reachable = false
shared_physical_network = false

[network-feature-enabled]
api_extensions = %[8]s
ipv6 = false
ipv6_subnet_attributes = false
port_security = %[9]t
floating_ips = true

[validation]
run_validation = false
`, s.logDir, s.adminUser, s.adminPassword, s.adminProject, s.identityURI,
		projectCIDR, s.publicNetworkID, strings.Join(s.extensions, ","), portSecurity)
}

// tempestCmd runs a tempest or stestr command in dir with Debian's
// Python first on PATH and home as HOME.
func tempestCmd(ctx context.Context, home, dir, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH=/usr/bin:/bin:/usr/sbin:/sbin", "PYTHON="+python, "HOME="+home)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Cancelled: the whole group (stestr's workers too).
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// result is one test as results.py reads it from tempest's subunit stream.
type result struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Reason string `json:"reason"`
	Log    string `json:"log"`
}

func readResults(ctx context.Context, home, ws string) ([]result, error) {
	script := filepath.Join(ws, "results.py")
	if err := os.WriteFile(script, resultsScript, 0o644); err != nil {
		return nil, err
	}
	last := tempestCmd(ctx, home, ws, "/usr/bin/stestr", "last", "--subunit")
	stream, err := last.Output()
	if err != nil {
		return nil, fmt.Errorf("stestr last --subunit: %w", err)
	}
	conv := tempestCmd(ctx, home, ws, python, script)
	conv.Stdin = bytes.NewReader(stream)
	var stderr bytes.Buffer
	conv.Stderr = &stderr
	b, err := conv.Output()
	if err != nil {
		return nil, fmt.Errorf("results.py: %w\n%s", err, stderr.Bytes())
	}
	var rs []result
	if err := json.Unmarshal(b, &rs); err != nil {
		return nil, fmt.Errorf("results.py: %w", err)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].ID < rs[j].ID })
	return rs, nil
}

// listTests returns the ids of the tests regex selects, as tempest run
// would run them (stestr list), without their [id-…] tags.
func listTests(ctx context.Context, home, ws, regex string) ([]string, error) {
	b, err := tempestCmd(ctx, home, ws, "/usr/bin/stestr", "list", regex).Output()
	if err != nil {
		return nil, fmt.Errorf("stestr list: %w", err)
	}
	var ids []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "tempest.") {
			ids = append(ids, strings.SplitN(l, "[", 2)[0])
		}
	}
	return ids, nil
}

type summary struct {
	passed  int
	failed  []result
	skipped map[string][]string // reason → test ids
	nSkip   int
	// Tests inside the skipped entries: a class skipped in setUpClass is
	// one entry for all its tests.
	skippedTests map[string]int // reason → tests
	nSkipTests   int
}

func summarize(rs []result, listed []string) summary {
	s := summary{skipped: map[string][]string{}, skippedTests: map[string]int{}}
	for _, r := range rs {
		switch r.Status {
		case "success", "xfail":
			s.passed++
		case "skip":
			s.nSkip++
			reason := strings.TrimSpace(r.Reason)
			s.skipped[reason] = append(s.skipped[reason], shortID(r.ID))
			n := 1
			if class, ok := strings.CutPrefix(r.ID, "setUpClass ("); ok {
				class = strings.TrimSuffix(class, ")") + "."
				n = 0
				for _, id := range listed {
					if strings.HasPrefix(id, class) {
						n++
					}
				}
			}
			s.skippedTests[reason] += n
			s.nSkipTests += n
		case "exists", "inprogress":
			// Listed, never finished: not a result.
		default: // fail, uxsuccess
			s.failed = append(s.failed, r)
		}
	}
	return s
}

func (s summary) report(run, all time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "tempest.api.network: %d passed, %d failed, %d skipped (%d tests in them); tempest run %v, all %v\n",
		s.passed, len(s.failed), s.nSkip, s.nSkipTests, run.Round(time.Second), all.Round(time.Second))
	fmt.Fprintf(&b, "\nFailures (%d):\n", len(s.failed))
	for _, r := range s.failed {
		fmt.Fprintf(&b, "- %s\n    %s\n", shortID(r.ID), failureLine(r.Reason))
	}
	reasons := make([]string, 0, len(s.skipped))
	for reason := range s.skipped {
		reasons = append(reasons, reason)
	}
	sort.Slice(reasons, func(i, j int) bool {
		if len(s.skipped[reasons[i]]) != len(s.skipped[reasons[j]]) {
			return len(s.skipped[reasons[i]]) > len(s.skipped[reasons[j]])
		}
		return reasons[i] < reasons[j]
	})
	fmt.Fprintf(&b, "\nSkips (%d, %d tests), by reason:\n", s.nSkip, s.nSkipTests)
	for _, reason := range reasons {
		ids := s.skipped[reason]
		fmt.Fprintf(&b, "- %d (%d tests): %s\n", len(ids), s.skippedTests[reason], oneLine(reason, 200))
		for _, id := range ids {
			fmt.Fprintf(&b, "    %s\n", id)
		}
	}
	return b.String()
}

// shortID drops tempest's prefix and the [id-…,smoke] tags.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "tempest.api.network.")
	if i := strings.Index(id, "["); i > 0 {
		id = id[:i]
	}
	return id
}

// failureLine is the exception a traceback ends with: the lines after
// its last frame (File line, source line, carets), joined, cut to 400
// bytes.
func failureLine(tb string) string {
	lines := strings.Split(strings.TrimRight(tb, "\n"), "\n")
	last := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "  File ") {
			last = i
		}
	}
	if last >= 0 && last+2 < len(lines) {
		lines = lines[last+2:]
	}
	// Python's carets under the failing expression.
	var msg []string
	for _, l := range lines {
		if strings.Trim(l, " ~^") != "" {
			msg = append(msg, l)
		}
	}
	return oneLine(strings.Join(msg, " "), 400)
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
