// Package deploy holds what installs Wyvern: the example configuration,
// the systemd unit and the .deb (`make package`, deploy/nfpm.yaml). Its
// tests build the package and install it into a fresh root.
package deploy

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

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
	{"/lib/systemd/system/wyvernd@.service", "-rw-r--r--", "systemd/wyvernd@.service"},
	{"/etc/wyvern/wyvernd.yaml", "-rw-------", "wyvern.yaml"},
	{"/var/lib/wyvern/", "drwx------", ""},
	{"/usr/share/doc/wyvern/copyright", "-rw-r--r--", "deb/copyright"},
	{"/usr/share/doc/wyvern/LICENSE", "-rw-r--r--", "../LICENSE"},
	{"/usr/share/doc/wyvern/README.md", "-rw-r--r--", "../README.md"},
	{"/usr/share/doc/wyvern/operations.md", "-rw-r--r--", "../docs/operations.md"},
	{"/usr/share/doc/wyvern/api.md", "-rw-r--r--", "../docs/api.md"},
	{"/usr/share/doc/wyvern/examples/wyvernd.yaml", "-rw-r--r--", "wyvern.yaml"},
	{"/usr/share/doc/wyvern/examples/grafana/wyvern-dashboard.json", "-rw-r--r--", "grafana/wyvern-dashboard.json"},
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

// TestPackageInstallsInAFreshRoot builds the .deb (twice: one tree, one
// package), checks its version against git, its control fields and
// contents, installs it with dpkg into an empty root (its own dpkg
// database; maintainer scripts run with DPKG_ROOT set, as for an image
// being built), runs the installed binaries, has systemd-analyze verify
// the installed units against that root, starts the service as its unit
// would (and a two-node cluster from the template unit), then removes the
// package (an edited conffile and the raft data stay) and purges it (the
// data still stays).
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
	again := buildPackage(t)
	after, _ := git("status", "--porcelain")
	// One commit, one package: every file dated at the commit, the
	// binaries built -trimpath. (Unless the tree changed meanwhile.)
	if before == after {
		a, _ := os.ReadFile(deb)
		b, _ := os.ReadFile(again)
		if !bytes.Equal(a, b) {
			t.Errorf("two builds of one tree differ: %s and %s", deb, again)
		}
	}
	if mtime := strings.Fields(strings.Split(run(t, "dpkg-deb", "--contents", deb), "\n")[0]); len(mtime) < 5 {
		t.Errorf("dpkg-deb --contents: %q", mtime)
	} else if at, _ := git("show", "-s", "--date=format-local:%Y-%m-%d %H:%M", "--format=%cd", "HEAD"); mtime[3]+" "+mtime[4] != at {
		t.Errorf("package files dated %s %s, want the commit's %s", mtime[3], mtime[4], at)
	}

	version := inspectPackage(t, deb)
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
	// Stripped (-ldflags '-s -w', which -trimpath keeps out of the build
	// settings): no symbol table, no DWARF.
	if f, err := elf.Open(wyvernd); err != nil {
		t.Error(err)
	} else {
		for _, sec := range []string{".symtab", ".debug_info"} {
			if f.Section(sec) != nil {
				t.Errorf("installed wyvernd has %s: not stripped", sec)
			}
		}
		f.Close()
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
		for _, unit := range []string{"/lib/systemd/system/wyvernd.service", "wyvernd@c1.service"} {
			if out, err := exec.Command(sa, "verify", "--root="+root, unit).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) != 0 {
				t.Errorf("systemd-analyze verify --root %s: %v\n%s", unit, err, out)
			}
		}
	}

	// The service starts: the unit's command line, run as systemd would
	// (its working directory), in the fresh root and a network namespace
	// of its own, with nothing but what the package installed.
	ns := ovstest.NewNetNS(t, "pkg")
	svc := startUnit(t, root, ns, "lib/systemd/system/wyvernd.service", "")
	svc.ready(ns, "127.0.0.1:9696")
	data := svc.stop()
	t.Logf("%v served /readyz 200 and stopped on SIGTERM; raft log %s", svc.execStart, strings.TrimPrefix(data, root))

	// Two nodes of one cluster on this machine from the template unit,
	// each with its own file, addresses and state directory.
	raft1, api1 := instanceConfig(t, root, "c1", 1, "[]")
	raft2, api2 := instanceConfig(t, root, "c2", 2, "[http://"+api1+"]")
	c1 := startUnit(t, root, ns, "lib/systemd/system/wyvernd@.service", "c1")
	c1.ready(ns, api1)
	c2 := startUnit(t, root, ns, "lib/systemd/system/wyvernd@.service", "c2")
	c2.ready(ns, api2)
	if got, want := clusterMembers(t, ns, api1), []string{"c1 " + raft1, "c2 " + raft2}; !slices.Equal(got, want) {
		t.Errorf("wyvernd@c1 sees members %q, want %q", got, want)
	}
	for _, c := range []*service{c2, c1} {
		if wal := c.stop(); !strings.HasPrefix(wal, filepath.Join(root, "var/lib/wyvern", strings.TrimSuffix(strings.TrimPrefix(c.name, "wyvernd@"), ".service"))+"/") {
			t.Errorf("%s wrote its raft log at %s", c.name, wal)
		}
	}

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

// inspectPackage checks the .deb's control fields, conffiles, maintainer
// scripts and contents (every expected path with its mode, all root's),
// and returns its version.
func inspectPackage(t *testing.T, deb string) string {
	t.Helper()
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
	return version
}
