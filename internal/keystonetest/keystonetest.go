// Package keystonetest runs a real Keystone (Debian's python3-keystone) on
// loopback for tests, with no system service: its own keystone.conf,
// sqlite database, fernet keys and log in the test's temporary directory,
// served by serve.py (the standard library's wsgiref, one request at a
// time) and stopped by pid when the test ends.
//
// Everything after Start speaks Keystone's REST API v3 from Go. The domain
// is Default throughout; the region is RegionOne.
//
// Start takes 4.5–7 s on the project's 2-core machines (measured; 22–44 s
// while other jobs kept the load average at 8): db_sync, fernet_setup and credential_setup
// run together in ~2.5 s, then serve.py's import of Keystone and bootstrap
// together in ~2 s. Each keystone-manage run is a Python process importing
// Keystone, ~1.4 s of CPU. Start logs its own figure.
package keystonetest

import (
	"bufio"
	"context"
	"crypto/rand"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

//go:embed serve.py
var serveScript []byte

// Options shape a Keystone.
type Options struct {
	// TokenTTL is how long the tokens it issues live ([token] expiration,
	// whole seconds, rounded up). Zero means an hour, Keystone's default.
	TokenTTL time.Duration
}

// Keystone is one running Keystone.
type Keystone struct {
	dir           string
	base          string // http://127.0.0.1:PORT, no path
	adminPassword string
	client        *http.Client

	mu           sync.Mutex
	adminToken   string
	adminIssued  time.Time
	adminExpires time.Time
	roleIDs      map[string]string // role name → id

	serviceMu sync.Mutex // held while the service user is made
	service   *credentials
}

type credentials struct{ user, password, project string }

// The names bootstrap gives the administrator; the region of every
// endpoint and the domain of every project and user.
const (
	adminUser    = "admin"
	adminProject = "admin"
	region       = "RegionOne"
	domainName   = "Default"
	domainID     = "default"
)

// startTimeout bounds all of Start on a busy machine.
const startTimeout = 2 * time.Minute

// Start runs a Keystone for the test and stops it when the test ends. The
// test fails, rather than skips, when python3-keystone is not installed.
func Start(t testing.TB, opts Options) *Keystone {
	t.Helper()
	began := time.Now()
	manage, python := findKeystone(t)

	ttl := int64(3600)
	if opts.TokenTTL > 0 {
		ttl = int64((opts.TokenTTL + time.Second - 1) / time.Second)
	}
	dir := t.TempDir()
	k := &Keystone{
		dir:           dir,
		adminPassword: rand.Text(),
		client:        &http.Client{Timeout: 30 * time.Second},
		roleIDs:       map[string]string{},
	}
	conf := filepath.Join(dir, "keystone.conf")
	if err := os.WriteFile(conf, []byte(keystoneConf(dir, ttl)), 0o600); err != nil {
		t.Fatalf("keystonetest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	t.Cleanup(func() {
		if t.Failed() {
			k.logTails(t)
		}
	})

	// The key repositories do not touch the database: make them while
	// db_sync runs.
	user, group := owner(t)
	err := parallel(
		func() error { return k.manage(ctx, manage, conf, nil, "db_sync") },
		func() error {
			return k.manage(ctx, manage, conf, nil, "fernet_setup", "--keystone-user", user, "--keystone-group", group)
		},
		func() error {
			return k.manage(ctx, manage, conf, nil, "credential_setup", "--keystone-user", user, "--keystone-group", group)
		},
	)
	if err != nil {
		t.Fatalf("keystonetest: %v", err)
	}
	setup := time.Since(began)
	// WAL lets the server read while a writer (bootstrap, below) commits.
	if err := k.walMode(ctx, python); err != nil {
		t.Fatalf("keystonetest: %v", err)
	}

	port, err := k.serve(ctx, t, python, conf)
	if err != nil {
		t.Fatalf("keystonetest: %v", err)
	}
	k.base = "http://127.0.0.1:" + strconv.Itoa(port)

	// bootstrap needs the URL for the identity endpoints; serve.py has
	// bound its port and imports Keystone meanwhile.
	err = parallel(
		func() error {
			return k.manage(ctx, manage, conf, []string{"OS_BOOTSTRAP_PASSWORD=" + k.adminPassword}, "bootstrap",
				"--bootstrap-username", adminUser,
				"--bootstrap-project-name", adminProject,
				"--bootstrap-role-name", "admin",
				"--bootstrap-service-name", "keystone",
				"--bootstrap-region-id", region,
				"--bootstrap-public-url", k.URL(),
				"--bootstrap-internal-url", k.URL(),
				"--bootstrap-admin-url", k.URL())
		},
		func() error { return k.waitServing(ctx) },
	)
	if err != nil {
		t.Fatalf("keystonetest: %v", err)
	}
	if err := k.issueAdminToken(ctx); err != nil {
		t.Fatalf("keystonetest: %v", err)
	}
	t.Logf("keystonetest: Keystone at %s, started in %v (db_sync and key repositories %v)",
		k.URL(), time.Since(began).Round(10*time.Millisecond), setup.Round(10*time.Millisecond))
	return k
}

// findKeystone returns keystone-manage and the Python that runs it (its
// #! line: /usr/bin/python3 on Debian, whatever python3 comes first on
// PATH, e.g. pyenv's, need not have Keystone).
func findKeystone(t testing.TB) (manage, python string) {
	t.Helper()
	manage, err := exec.LookPath("keystone-manage")
	if err != nil {
		manage = "/usr/bin/keystone-manage"
		if _, err := os.Stat(manage); err != nil {
			t.Fatal("keystonetest: keystone-manage not found: Debian's python3-keystone (and python3-openstackclient) " +
				"are needed; run `make deps` (deploy/install-deps.sh) as root")
		}
	}
	f, err := os.Open(manage)
	if err != nil {
		t.Fatalf("keystonetest: %v", err)
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	python = strings.TrimSpace(strings.TrimPrefix(line, "#!"))
	if python == "" || strings.ContainsAny(python, " \t") {
		python = "/usr/bin/python3"
	}
	return manage, python
}

func keystoneConf(dir string, ttl int64) string {
	return fmt.Sprintf(`# Written by keystonetest.
[DEFAULT]
log_file = %[1]s/keystone.log
use_stderr = false

[database]
connection = sqlite:///%[1]s/keystone.db

[token]
provider = fernet
expiration = %[2]d

[fernet_tokens]
key_repository = %[1]s/fernet-keys

[fernet_receipts]
key_repository = %[1]s/fernet-keys

[credential]
key_repository = %[1]s/credential-keys

[identity]
# bcrypt's least work factor: every password check (each token issued)
# costs ~0.25 s of CPU at the default 12.
password_hash_rounds = 4
`, dir, ttl)
}

// owner names the user and group running the test, whom keystone-manage
// makes owner of the key repositories.
func owner(t testing.TB) (user, group string) {
	t.Helper()
	u, errU := exec.Command("id", "-un").Output()
	g, errG := exec.Command("id", "-gn").Output()
	if err := errors.Join(errU, errG); err != nil {
		t.Fatalf("keystonetest: id: %v", err)
	}
	return strings.TrimSpace(string(u)), strings.TrimSpace(string(g))
}

// manage runs one keystone-manage command; its output is in the error
// when it fails. (On success it prints only eventlet's harmless
// "Exception ignored in: <function _removeHandlerRef ...>" at exit.)
func (k *Keystone) manage(ctx context.Context, manage, conf string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, manage, append([]string{"--config-file", conf}, args...)...)
	cmd.Dir = k.dir
	cmd.Env = append(os.Environ(), env...)
	began := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("keystone-manage %s: %w\n%s", args[0], err, out)
	}
	k.appendLog("manage.log", fmt.Sprintf("keystone-manage %s: %v\n", args[0], time.Since(began).Round(time.Millisecond)))
	return nil
}

func (k *Keystone) walMode(ctx context.Context, python string) error {
	db := filepath.Join(k.dir, "keystone.db")
	out, err := exec.CommandContext(ctx, python, "-c",
		"import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA journal_mode=WAL').fetchone()[0])",
		db).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "wal" {
		return fmt.Errorf("sqlite %s: journal_mode=WAL: %v %s", db, err, out)
	}
	return nil
}

// serve starts serve.py, stopped by pid when the test ends, and returns
// the port it bound.
func (k *Keystone) serve(ctx context.Context, t testing.TB, python, conf string) (int, error) {
	script := filepath.Join(k.dir, "serve.py")
	if err := os.WriteFile(script, serveScript, 0o600); err != nil {
		return 0, err
	}
	logf, err := os.Create(filepath.Join(k.dir, "serve.log"))
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	portFile := filepath.Join(k.dir, "port")
	cmd := exec.Command(python, script, portFile)
	cmd.Dir = k.dir
	cmd.Env = append(os.Environ(), "OS_KEYSTONE_CONFIG_FILES="+conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Killed with the test binary too, should it die without cleanups
	// (a -timeout panic).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("%s: %w", script, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	for {
		b, err := os.ReadFile(portFile)
		if err == nil {
			return strconv.Atoi(string(b))
		}
		select {
		case <-exited:
			return 0, fmt.Errorf("serve.py (pid %d) exited: %v", cmd.Process.Pid, cmd.ProcessState)
		case <-ctx.Done():
			return 0, fmt.Errorf("serve.py (pid %d) wrote no port: %w", cmd.Process.Pid, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitServing waits until GET /v3 answers 200.
func (k *Keystone) waitServing(ctx context.Context) error {
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, k.URL(), nil)
		resp, err := k.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("GET %s: not answering: %v (last: %v)", k.URL(), ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (k *Keystone) appendLog(name, line string) {
	f, err := os.OpenFile(filepath.Join(k.dir, name), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.WriteString(line)
}

// logTails puts the end of each log into the test's output.
func (k *Keystone) logTails(t testing.TB) {
	for _, name := range []string{"manage.log", "keystone.log", "serve.log"} {
		b, err := os.ReadFile(filepath.Join(k.dir, name))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		t.Logf("keystonetest: tail of %s:\n%s", name, strings.Join(lines, "\n"))
	}
}

func parallel(fs ...func() error) error {
	errs := make([]error, len(fs))
	var wg sync.WaitGroup
	for i, f := range fs {
		wg.Go(func() { errs[i] = f() })
	}
	wg.Wait()
	return errors.Join(errs...)
}
