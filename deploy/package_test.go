// Package deploy holds what installs Wyvern: the example configuration,
// the systemd unit and the .deb (`make package`, deploy/nfpm.yaml). Its
// tests build the package and install it into a fresh root.
package deploy

import (
	"bytes"
	"debug/buildinfo"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	wybuild "github.com/wyvern-sdn/wyvern/internal/buildinfo"
	"github.com/wyvern-sdn/wyvern/internal/ovstest"
)

// debVersion is deploy/deb-version.sh's grammar: a release tag, a tag plus
// the commits after it, or no tag; "~dirty" for uncommitted changes.
var debVersion = regexp.MustCompile(`^(?:[0-9]+\.[0-9]+\.[0-9]+(?:~[0-9A-Za-z.]+)?(?:\+git[0-9]{14}\.[0-9a-f]{12})?|0\.0\.0~git[0-9]{14}\.[0-9a-f]{12})(?:~dirty)?$`)

// installed is what the package puts on a machine: path, mode (as
// dpkg-deb --contents prints it) and, for files, the source in the
// repository they are copies of ("" for the binaries).
var installed = []struct{ path, mode, src string }{
	{"/usr/bin/wyvernd", "-rwxr-xr-x", ""},
	{"/usr/bin/wyvern", "-rwxr-xr-x", ""},
	{"/lib/systemd/system/wyvernd.service", "-rw-r--r--", "systemd/wyvernd.service"},
	{"/etc/wyvern/wyvernd.yaml", "-rw-------", "wyvern.yaml"},
	{"/var/lib/wyvern/", "drwx------", ""},
	{"/usr/share/doc/wyvern/copyright", "-rw-r--r--", "deb/copyright"},
	{"/usr/share/doc/wyvern/LICENSE", "-rw-r--r--", "../LICENSE"},
	{"/usr/share/doc/wyvern/README.md", "-rw-r--r--", "../README.md"},
	{"/usr/share/doc/wyvern/operations.md", "-rw-r--r--", "../docs/operations.md"},
	{"/usr/share/doc/wyvern/api.md", "-rw-r--r--", "../docs/api.md"},
	{"/usr/share/doc/wyvern/examples/wyvernd.yaml", "-rw-r--r--", "wyvern.yaml"},
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func git(args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Env = append(os.Environ(), "GIT_OPTIONAL_LOCKS=0")
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

// buildPackage runs `make package` into a temporary DIST and returns the
// .deb's path.
func buildPackage(t *testing.T) string {
	t.Helper()
	dist := t.TempDir()
	cmd := exec.Command("make", "--no-print-directory", "-C", "..", "package", "DIST="+dist)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make package: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dist, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make package made %v, want one .deb", debs)
	}
	return debs[0]
}

// TestPackageInstallsInAFreshRoot builds the .deb, checks its control
// fields and contents, installs it with dpkg into an empty root (its own
// dpkg database; maintainer scripts run with DPKG_ROOT set, as for an
// image being built), runs the installed wyvernd, has systemd-analyze
// verify the installed unit against that root, then removes the package
// (an edited conffile and the raft data stay) and purges it (the data
// still stays).
func TestPackageInstallsInAFreshRoot(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package")
	}
	for _, tool := range []string{"dpkg", "dpkg-deb", "dpkg-query"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s: not a dpkg system", tool)
		}
	}
	head, err := git("rev-parse", "HEAD")
	if err != nil {
		t.Fatalf("make package builds from a git checkout: %v", err)
	}
	before, _ := git("status", "--porcelain")
	deb := buildPackage(t)
	after, _ := git("status", "--porcelain")

	// The control fields.
	field := func(name string) string { return strings.TrimSpace(run(t, "dpkg-deb", "--field", deb, name)) }
	version, arch := field("Version"), strings.TrimSpace(run(t, "dpkg", "--print-architecture"))
	if got := field("Package"); got != "wyvern" {
		t.Errorf("Package: %q, want wyvern", got)
	}
	if got := field("Architecture"); got != arch {
		t.Errorf("Architecture: %q, want %q", got, arch)
	}
	if got := field("Recommends"); got != "openvswitch-switch" {
		t.Errorf("Recommends: %q, want openvswitch-switch", got)
	}
	if got := field("Depends"); got != "" {
		t.Errorf("Depends: %q; the binaries are static and need nothing", got)
	}
	if filepath.Base(deb) != "wyvern_"+version+"_"+arch+".deb" {
		t.Errorf("package file %s, version %s", filepath.Base(deb), version)
	}
	if !debVersion.MatchString(version) {
		t.Errorf("Version %q is none of deploy/deb-version.sh's forms", version)
	}
	if _, err := git("describe", "--tags", "--exact-match", "--match", "v[0-9]*", "HEAD"); err != nil && !strings.Contains(version, "."+head[:12]) {
		t.Errorf("Version %q does not name commit %s", version, head[:12])
	}
	// Another hand may change the tree meanwhile: judge "~dirty" only when
	// the tree was the same kind of dirty before and after the build.
	if dirty := before != ""; dirty == (after != "") && strings.HasSuffix(version, "~dirty") != dirty {
		t.Errorf("Version %q: tree modified %v", version, dirty)
	}
	if got := run(t, "dpkg-deb", "--info", deb, "conffiles"); got != "/etc/wyvern/wyvernd.yaml\n" {
		t.Errorf("conffiles: %q, want only /etc/wyvern/wyvernd.yaml", got)
	}

	// The maintainer scripts are deploy/deb's (TestPackageScriptsDriveSystemd
	// runs those), executable.
	ctrl := filepath.Join(t.TempDir(), "DEBIAN")
	run(t, "dpkg-deb", "--control", deb, ctrl)
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		got, err := os.ReadFile(filepath.Join(ctrl, script))
		if err != nil {
			t.Errorf("package: %v", err)
			continue
		}
		if want, _ := os.ReadFile(filepath.Join("deb", script)); !bytes.Equal(got, want) {
			t.Errorf("package's %s differs from deploy/deb/%s", script, script)
		}
		if fi, _ := os.Stat(filepath.Join(ctrl, script)); fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("package's %s is not executable: %v", script, fi.Mode())
		}
	}

	// The contents: every expected path with its mode, all root's.
	contents := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(run(t, "dpkg-deb", "--contents", deb)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb --contents: %q", line)
		}
		if f[1] != "root/root" {
			t.Errorf("%s belongs to %s, want root/root", f[5], f[1])
		}
		contents[strings.TrimPrefix(f[5], ".")] = f[0]
	}
	for _, want := range installed {
		if got, ok := contents[want.path]; !ok {
			t.Errorf("package lacks %s", want.path)
		} else if got != want.mode {
			t.Errorf("%s: mode %s, want %s", want.path, got, want.mode)
		}
	}

	// A fresh root: an empty dpkg database, and the units systemd itself
	// ships (the fresh machine runs systemd) for systemd-analyze.
	root := t.TempDir()
	admin := filepath.Join(root, "var/lib/dpkg")
	for _, d := range []string{"info", "updates", "triggers"} {
		if err := os.MkdirAll(filepath.Join(admin, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(admin, "status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dpkg := func(args ...string) string {
		t.Helper()
		return run(t, "dpkg", append([]string{"--force-not-root", "--force-script-chrootless",
			"--instdir=" + root, "--admindir=" + admin, "--log=" + filepath.Join(root, "dpkg.log")}, args...)...)
	}
	status := func() string {
		out, _ := exec.Command("dpkg-query", "--admindir="+admin, "-W", "-f=${Status} ${Version}", "wyvern").Output()
		return string(out)
	}
	at := func(p string) string { return filepath.Join(root, p) }

	out := dpkg("-i", deb)
	t.Logf("dpkg -i:\n%s", out)
	for _, want := range []string{"neither enabled nor started", "/etc/wyvern/wyvernd.yaml", "systemctl enable --now wyvernd"} {
		if !strings.Contains(out, want) {
			t.Errorf("dpkg -i says no %q", want)
		}
	}
	if got := status(); got != "install ok installed "+version {
		t.Fatalf("dpkg-query: %q", got)
	}
	for _, want := range installed {
		fi, err := os.Stat(at(want.path))
		if err != nil {
			t.Errorf("installed: %v", err)
			continue
		}
		if got := fi.Mode().String(); got != want.mode {
			t.Errorf("installed %s: mode %s, want %s", want.path, got, want.mode)
		}
		if want.src != "" {
			shipped, err := os.ReadFile(want.src)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(at(want.path)); !bytes.Equal(got, shipped) {
				t.Errorf("installed %s differs from deploy/%s", want.path, want.src)
			}
		}
	}
	if wants, _ := filepath.Glob(at("etc/systemd/system/*.wants/wyvernd.service")); len(wants) != 0 {
		t.Errorf("the install enabled wyvernd: %v", wants)
	}

	// The installed binaries run and print their build's version.
	wyvernd := at("usr/bin/wyvernd")
	bi, err := buildinfo.ReadFile(wyvernd)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := run(t, wyvernd, "--version"), "wyvernd "+wybuild.FromBuildInfo(bi)+" "+bi.GoVersion+"\n"; got != want {
		t.Errorf("installed wyvernd --version: %q, want %q", got, want)
	} else {
		t.Logf("installed %s", strings.TrimSpace(got))
	}
	if got := run(t, at("usr/bin/wyvern"), "version"); !strings.HasPrefix(got, "wyvern "+wybuild.FromBuildInfo(bi)+" ") {
		t.Errorf("installed wyvern version: %q", got)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
		t.Errorf("wyvernd built with CGO_ENABLED=%q -trimpath=%q, want 0 and true", settings["CGO_ENABLED"], settings["-trimpath"])
	}
	// Go stamps the commit only where .git is a directory: a linked git
	// worktree (.git a file) builds "unknown"; the package's version names
	// the commit all the same.
	if fi, err := os.Stat("../.git"); err == nil && fi.IsDir() {
		if rev := settings["vcs.revision"]; rev != head {
			t.Errorf("wyvernd stamped with commit %q, want %s", rev, head)
		}
	} else {
		t.Logf("../.git is not a directory (a git worktree): Go stamps no commit into the binaries")
	}

	// systemd accepts the installed unit, its ExecStart the installed binary.
	if sa, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("no systemd-analyze: the installed unit is not verified")
	} else {
		units, _ := filepath.Glob("/usr/lib/systemd/system/*.target")
		if len(units) == 0 {
			t.Fatal("systemd-analyze but no /usr/lib/systemd/system/*.target")
		}
		for _, u := range units {
			dst := at(strings.TrimPrefix(u, "/"))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			// A copy: systemd-analyze resolves links inside --root.
			b, err := os.ReadFile(u)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if out, err := exec.Command(sa, "verify", "--root="+root, "/lib/systemd/system/wyvernd.service").CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) != 0 {
			t.Errorf("systemd-analyze verify --root: %v\n%s", err, out)
		}
	}

	// The service starts: the unit's command line, run as systemd would
	// (its working directory), in the fresh root and a network namespace
	// of its own, with nothing but what the package installed.
	data := startAsTheUnit(t, root)

	// dpkg -r: the program goes, the operator's settings and the node's
	// raft data stay.
	conf := at("etc/wyvern/wyvernd.yaml")
	edited, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	edited = append(edited, "node-id: hv1\n"...)
	if err := os.WriteFile(conf, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	dpkg("-r", "wyvern")
	if got := status(); got != "deinstall ok config-files "+version {
		t.Errorf("after dpkg -r: %q", got)
	}
	for _, p := range []string{"usr/bin/wyvernd", "usr/bin/wyvern", "lib/systemd/system/wyvernd.service", "usr/share/doc/wyvern/copyright"} {
		if _, err := os.Stat(at(p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after dpkg -r, /%s: %v; want it gone", p, err)
		}
	}
	if got, err := os.ReadFile(conf); err != nil || !bytes.Equal(got, edited) {
		t.Errorf("after dpkg -r the edited conffile is %v (%d bytes, want %d)", err, len(got), len(edited))
	}
	if _, err := os.Stat(data); err != nil {
		t.Errorf("after dpkg -r the raft data: %v", err)
	}

	// dpkg -P: the settings go too; the raft data stays, and it says so.
	if out := dpkg("-P", "wyvern"); !strings.Contains(out, "/var/lib/wyvern (the node's raft data) is kept") {
		t.Errorf("dpkg -P says nothing of the kept data:\n%s", out)
	}
	if got := status(); got != "" {
		t.Errorf("after dpkg -P: %q", got)
	}
	if _, err := os.Stat(conf); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after dpkg -P, the conffile: %v; want it gone", err)
	}
	if _, err := os.Stat(data); err != nil {
		t.Errorf("after dpkg -P the raft data: %v", err)
	}
}

// startAsTheUnit runs the installed unit's ExecStart in its
// WorkingDirectory, chrooted into root (the binaries are static), inside
// a fresh network namespace; waits for GET /readyz to answer 200 on the
// shipped configuration's api-addr, stops it with SIGTERM (the unit's
// KillSignal) and returns the raft log it wrote.
func startAsTheUnit(t *testing.T, root string) string {
	t.Helper()
	unit, err := os.ReadFile(filepath.Join(root, "lib/systemd/system/wyvernd.service"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, line := range strings.Split(string(unit), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			keys[k] = v
		}
	}
	execStart, wd := strings.Fields(keys["ExecStart"]), keys["WorkingDirectory"]
	if len(execStart) == 0 || wd == "" {
		t.Fatalf("unit: ExecStart %q, WorkingDirectory %q", keys["ExecStart"], wd)
	}
	ns := ovstest.NewNetNS(t, "pkg")
	// A file, not a buffer: read while the process still writes.
	logFile, err := os.Create(filepath.Join(t.TempDir(), "wyvernd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	log := func() string { b, _ := os.ReadFile(logFile.Name()); return string(b) }
	cmd := ns.Command(append([]string{"unshare", "--root=" + root, "--wd=" + wd}, execStart...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited, waited := make(chan error, 1), false
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if !waited {
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: ns.DialContext}}
	ready := false
	for deadline := time.Now().Add(30 * time.Second); !ready && time.Now().Before(deadline); {
		select {
		case err := <-exited:
			waited = true
			t.Fatalf("%v exited: %v\n%s", execStart, err, log())
		case <-time.After(100 * time.Millisecond):
		}
		if resp, err := client.Get("http://127.0.0.1:9696/readyz"); err == nil {
			ready = resp.StatusCode == http.StatusOK
			resp.Body.Close()
		}
	}
	if !ready {
		t.Fatalf("%v: /readyz not 200 within 30s\n%s", execStart, log())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		waited = true
		if err != nil {
			t.Fatalf("%v after SIGTERM: %v\n%s", execStart, err, log())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%v: still running 30s after SIGTERM", execStart)
	}
	wal, _ := filepath.Glob(filepath.Join(root, wd, "wyvern-data/*/raft-wal/*.wal"))
	if len(wal) == 0 {
		t.Fatalf("no raft log under %s/wyvern-data\n%s", wd, log())
	}
	t.Logf("%v served /readyz 200, stopped on SIGTERM, wrote %s", execStart, strings.TrimPrefix(wal[0], root))
	return wal[0]
}

// TestPackageScriptsDriveSystemd runs the maintainer scripts as dpkg would
// on a machine booted with systemd: each in a mount namespace of its own
// whose /run holds systemd/system (systemd's "I am running" mark) and
// whose /etc/systemd/system is a scratch copy, with a systemctl first on
// PATH that records what it is asked. A first install only reloads; it
// never enables or starts the node. An upgrade restarts a running one;
// removal stops it; purge forgets its enablement. In a chroot or an
// image (DPKG_ROOT) or without systemd, they ask systemd nothing.
func TestPackageScriptsDriveSystemd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a mount namespace")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare")
	}
	bin := t.TempDir()
	shim := "#!/bin/sh\necho \"$*\" >>\"$SYSTEMCTL_LOG\"\n"
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	const wants = "/etc/systemd/system/multi-user.target.wants/wyvernd.service"
	for _, tc := range []struct {
		script  string
		args    []string
		systemd bool   // /run/systemd/system exists
		root    string // DPKG_ROOT
		calls   []string
		says    string // in the script's output
		unwants bool   // the enablement link is gone afterwards
	}{
		{script: "postinst", args: []string{"configure", ""}, systemd: true,
			calls: []string{"--system daemon-reload"}, says: "neither enabled nor started"},
		{script: "postinst", args: []string{"configure"}, systemd: true,
			calls: []string{"--system daemon-reload"}, says: "systemctl enable --now wyvernd"},
		{script: "postinst", args: []string{"configure", "0.0.0~git20261130000000.0123456789ab"}, systemd: true,
			calls: []string{"--system daemon-reload", "try-restart wyvernd.service"}},
		{script: "prerm", args: []string{"remove"}, systemd: true, calls: []string{"stop wyvernd.service"}},
		{script: "prerm", args: []string{"upgrade", "1.0.0"}, systemd: true},
		{script: "postrm", args: []string{"remove"}, systemd: true, calls: []string{"--system daemon-reload"}},
		{script: "postrm", args: []string{"purge"}, systemd: true, calls: []string{"--system daemon-reload"}, unwants: true},
		{script: "postinst", args: []string{"configure", ""}, says: "neither enabled nor started"},
		{script: "prerm", args: []string{"remove"}},
		{script: "postinst", args: []string{"configure", ""}, systemd: true, root: "/nonexistent", says: "neither enabled nor started"},
		{script: "prerm", args: []string{"remove"}, systemd: true, root: "/nonexistent"},
	} {
		name := tc.script + " " + strings.Join(tc.args, " ")
		if tc.root != "" {
			name += " DPKG_ROOT=" + tc.root
		}
		if !tc.systemd {
			name += " without systemd"
		}
		log := filepath.Join(t.TempDir(), "systemctl.log")
		setup := "set -e; mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /etc/systemd/system; mkdir -p $(dirname " + wants + "); ln -s /lib/systemd/system/wyvernd.service " + wants + "; "
		if tc.systemd {
			setup += "mkdir -p /run/systemd/system; "
		}
		check := `; rc=$?; test -L ` + wants + ` && echo LINKED; exit $rc`
		args := append([]string{"--mount", "--propagation", "private", "sh", "-c", setup + `"$0" "$@"` + check, "./" + tc.script}, tc.args...)
		cmd := exec.Command(unshare, args...)
		cmd.Dir = "deb"
		cmd.Env = []string{"PATH=" + bin + ":/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMCTL_LOG=" + log}
		if tc.root != "" {
			cmd.Env = append(cmd.Env, "DPKG_ROOT="+tc.root)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", name, err, out)
			continue
		}
		b, _ := os.ReadFile(log)
		var calls []string
		if s := strings.TrimSpace(string(b)); s != "" {
			calls = strings.Split(s, "\n")
		}
		if !slices.Equal(calls, tc.calls) {
			t.Errorf("%s: systemctl %q, want %q", name, calls, tc.calls)
		}
		if !strings.Contains(string(out), tc.says) {
			t.Errorf("%s: output %q, want %q", name, out, tc.says)
		}
		if linked := strings.Contains(string(out), "LINKED"); linked == tc.unwants {
			t.Errorf("%s: enablement link kept %v, want %v", name, linked, !tc.unwants)
		}
	}
}
