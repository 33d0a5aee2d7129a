package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// exampleConfig is the example --config file shipped for installs.
const exampleConfig = "../../deploy/wyvern.yaml"

// clearWyvernEnv keeps the caller's WYVERN_* variables out of loadConfig
// (viper takes an empty variable as unset).
func clearWyvernEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "WYVERN_") {
			t.Setenv(k, "")
		}
	}
}

// TestConfigExampleParsesToTheDefaults loads deploy/wyvern.yaml as wyvernd
// does: it parses strictly, validates (no --ovsdb, auth none), and, since
// each key it sets holds its default, gives the configuration no file gives.
func TestConfigExampleParsesToTheDefaults(t *testing.T) {
	clearWyvernEnv(t)
	got, err := loadConfig([]string{"--config", exampleConfig})
	if err != nil {
		t.Fatalf("%s: %v", exampleConfig, err)
	}
	if got.OVSDB != "" || got.Auth != "none" {
		t.Fatalf("%s: ovsdb %q, auth %q; want no local OVS and auth none", exampleConfig, got.OVSDB, got.Auth)
	}
	want, err := loadConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	want.Config = exampleConfig
	// An empty list in the file and an absent flag both mean none.
	for _, c := range []*Config{&got, &want} {
		if len(c.Join) == 0 {
			c.Join = nil
		}
		if len(c.BridgeMaps) == 0 {
			c.BridgeMaps = nil
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s differs from the defaults:\n got %+v\nwant %+v", exampleConfig, got, want)
	}
}

// TestConfigExampleWithKeystone: the file's keystone: section serves as is
// once the service user is given.
func TestConfigExampleWithKeystone(t *testing.T) {
	clearWyvernEnv(t)
	t.Setenv("WYVERN_KEYSTONE_USERNAME", "wyvern")
	t.Setenv("WYVERN_KEYSTONE_PASSWORD", "secret")
	c, err := loadConfig([]string{"--config", exampleConfig, "--auth", "keystone", "--keystone-url", "http://keystone:5000/v3"})
	if err != nil {
		t.Fatal(err)
	}
	want := KeystoneConfig{Username: "wyvern", Password: "secret", ProjectName: "service",
		UserDomainName: "Default", ProjectDomainName: "Default", CacheSeconds: 30}
	if c.Keystone != want {
		t.Fatalf("keystone: got %+v, want %+v", c.Keystone, want)
	}
}

// TestConfigExampleHasEveryKey keeps deploy/wyvern.yaml in step with
// Config: every mapstructure key appears as a key, set or commented out.
func TestConfigExampleHasEveryKey(t *testing.T) {
	b, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	check := func(typ reflect.Type, indent string) {
		for i := range typ.NumField() {
			key := typ.Field(i).Tag.Get("mapstructure")
			if key == "" {
				t.Errorf("Config field %s has no mapstructure key", typ.Field(i).Name)
				continue
			}
			re := regexp.MustCompile(`(?m)^` + indent + `(# ?)?` + regexp.QuoteMeta(key) + `:`)
			if !re.Match(b) {
				t.Errorf("%s: no key %q (indent %q), set or commented out", exampleConfig, key, indent)
			}
		}
	}
	check(reflect.TypeFor[Config](), "")
	check(reflect.TypeFor[KeystoneConfig](), "  ")
}

// TestVersionExitsZero: --version prints one line naming the binary.
func TestVersionExitsZero(t *testing.T) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(wyvernd, "--version")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("wyvernd --version: %v\n%s", err, stderr.String())
	}
	if out := stdout.String(); !strings.HasPrefix(out, "wyvernd ") || strings.Count(out, "\n") != 1 || stderr.Len() != 0 {
		t.Fatalf("wyvernd --version: stdout %q, stderr %q; want one line", out, stderr.String())
	}
}

// TestVersionFromVCS builds wyvernd with VCS stamping (this environment's
// GOFLAGS may turn it off) and checks --version names the checked-out
// commit, and "+dirty" exactly when the tree has changes.
func TestVersionFromVCS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wyvernd")
	}
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Env = append(os.Environ(), "GIT_OPTIONAL_LOCKS=0")
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	head, err := git("rev-parse", "HEAD")
	if err != nil {
		t.Skipf("no git checkout: %v", err)
	}
	status, err := git("status", "--porcelain")
	if err != nil {
		t.Skipf("git status: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "wyvernd")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOFLAGS=", "GIT_OPTIONAL_LOCKS=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -buildvcs=true: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("wyvernd --version: %v", err)
	}
	v := string(out)
	if !strings.Contains(v, head[:12]) {
		t.Errorf("wyvernd --version %q does not name commit %s", v, head[:12])
	}
	// Another hand may change the tree during the build: judge "+dirty"
	// only when the tree was the same kind of dirty before and after.
	after, _ := git("status", "--porcelain")
	if dirty := status != ""; dirty == (after != "") && strings.Contains(v, "+dirty") != dirty {
		t.Errorf("wyvernd --version %q: tree modified %v", v, dirty)
	}
	t.Logf("%s", v)
}

// TestHelpExitsZero: --help and -h print every flag to stdout and exit 0.
func TestHelpExitsZero(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(wyvernd, arg)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("wyvernd %s: %v\n%s", arg, err, stderr.String())
		}
		if stderr.Len() != 0 {
			t.Errorf("wyvernd %s: stderr %q", arg, stderr.String())
		}
		for _, f := range []string{"--config", "--ovsdb", "--keystone-url", "--version"} {
			if !strings.Contains(stdout.String(), f+" ") {
				t.Errorf("wyvernd %s: no %s in\n%s", arg, f, stdout.String())
			}
		}
	}
}

// TestUnknownFlagIsOneLine: a bad flag exits 1 with one line, no usage.
func TestUnknownFlagIsOneLine(t *testing.T) {
	for _, args := range [][]string{{"--no-such-flag"}, {"--punt-rate", "many"}, {"--version=maybe"}, {"stray"}} {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(wyvernd, args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Errorf("wyvernd %v: %v, want exit 1", args, err)
		}
		if e := stderr.String(); !strings.HasPrefix(e, "wyvernd: ") || strings.Count(e, "\n") != 1 || stdout.Len() != 0 {
			t.Errorf("wyvernd %v: stdout %q, stderr %q; want one line on stderr", args, stdout.String(), e)
		}
	}
}

// TestInstallUnitVerifies runs systemd-analyze verify over the unit, its
// ExecStart pointed at the test's binary (/usr/bin/wyvernd is not
// installed here).
func TestInstallUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("no systemd-analyze")
	}
	b, err := os.ReadFile("../../deploy/systemd/wyvernd.service")
	if err != nil {
		t.Fatal(err)
	}
	const exec0 = "ExecStart=/usr/bin/wyvernd --config /etc/wyvern/wyvernd.yaml\n"
	if !bytes.Contains(b, []byte(exec0)) {
		t.Fatalf("unit has no %q", exec0)
	}
	for _, want := range []string{"Restart=on-failure", "StateDirectory=wyvern", "LimitNOFILE=", "Wants=network-online.target",
		"After=network-online.target ovsdb-server.service ovs-vswitchd.service openvswitch-switch.service", "ReadWritePaths=-/run/openvswitch"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("unit has no %q", want)
		}
	}
	unit := filepath.Join(t.TempDir(), "wyvernd.service")
	b = bytes.Replace(b, []byte("/usr/bin/wyvernd"), []byte(wyvernd), 1)
	if err := os.WriteFile(unit, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sa, "verify", unit).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
