package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
)

// ovnInstallHint is the command that provides what the OVN lab needs.
const ovnInstallHint = "apt-get update && apt-get install -y ovn-central ovn-host"

// ovnTools are the OVN programs the lab runs.
var ovnTools = []string{"ovn-northd", "ovn-controller", "ovn-nbctl", "ovn-sbctl", "ovsdb-tool", "ovsdb-server", "ovs-vsctl", "ovs-ofctl"}

// ovnSchemaDir holds the NB and SB schemas of Debian's ovn-common.
const ovnSchemaDir = "/usr/share/ovn"

// ovnDirPrefix starts the name of every lab directory; ovnSweepStale only
// ever looks at directories named so.
const ovnDirPrefix = "/tmp/wyovn"

// ovnReadyTimeout bounds every wait of the lab (chassis, br-int, tunnels,
// NB writes).
const ovnReadyTimeout = 30 * time.Second

// ovnLab is OVN 23.03 (Debian ovn-central/ovn-host) running on a lab's
// hypervisors: NB and SB ovsdb-servers and ovn-northd in a directory of
// their own, one ovn-controller per hypervisor (geneve, netdev br-int).
//
// Every file of the lab lives in Dir: the databases and their sockets,
// and every daemon's pidfile and log, ovn-controllers'
// included (hvN-controller.pid, .log). An ovn-controller's OVS_RUNDIR and
// OVN_RUNDIR are its hypervisor's own directory: it finds br-int.mgmt
// there, and puts its unixctl socket there (ovn-controller.PID.ctl; 23.03
// has no --unixctl option).
type ovnLab struct {
	t   testing.TB
	u   *ovstest.Underlay
	hvs []*ovstest.OVS
	Dir string
	// clustered: the southbound is a raft cluster with a member on each
	// hypervisor (durable and replicated, as Wyvern's topology is), not
	// one standalone server on hypervisor 1.
	clustered bool

	logged bool // fatalf has shown the logs already
}

// newOVNLab starts OVN's databases and northd, then one ovn-controller per
// hypervisor o (hypervisor i+1 of the underlay u has underlay address u.IP(i+1)),
// and returns once every chassis is registered in the SB and br-int exists on every hypervisor.
// Everything it started is stopped (by pid) in t.Cleanup.
//
// It also waits for every hypervisor's br-int to hold a geneve tunnel to
// each other hypervisor, so that the first port bound finds the overlay
// in place.
func newOVNLab(t testing.TB, u *ovstest.Underlay, hvs []*ovstest.OVS) *ovnLab {
	t.Helper()
	return startOVNLab(t, u, hvs, false)
}

// newClusteredOVNLab is newOVNLab with the southbound a raft cluster of
// one member per hypervisor, each served on its management address.
func newClusteredOVNLab(t testing.TB, u *ovstest.Underlay, hvs []*ovstest.OVS) *ovnLab {
	t.Helper()
	return startOVNLab(t, u, hvs, true)
}

func startOVNLab(t testing.TB, u *ovstest.Underlay, hvs []*ovstest.OVS, clustered bool) *ovnLab {
	t.Helper()
	ovstest.Require(t)
	for _, tool := range ovnTools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: the OVN lab runs Debian's OVN 23.03; install it with:\n  %s", tool, ovnInstallHint)
		}
	}
	for _, s := range []string{"ovn-nb.ovsschema", "ovn-sb.ovsschema"} {
		if _, err := os.Stat(filepath.Join(ovnSchemaDir, s)); err != nil {
			t.Fatalf("OVN schema missing (%v); install it with:\n  %s", err, ovnInstallHint)
		}
	}
	ovnSweepOnce.Do(ovnSweepStale)

	dir, err := os.MkdirTemp("/tmp", filepath.Base(ovnDirPrefix))
	if err != nil {
		t.Fatal(err)
	}
	l := &ovnLab{t: t, u: u, hvs: hvs, Dir: dir, clustered: clustered}
	// The owner file lets a later process sweep this lab if this one is
	// killed before its cleanups run.
	if err := os.WriteFile(l.path("owner"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	// Registered before anything starts, so that a failure half-way still
	// stops whatever did start. It runs before the hypervisors' own
	// cleanups (registered earlier): ovn-controllers stop before the
	// ovs-vswitchd and ovsdb-server they talk to.
	t.Cleanup(func() {
		if t.Failed() && !l.logged {
			t.Logf("OVN lab logs:\n%s", l.logTails(3000))
		}
		l.stop()
		_ = os.RemoveAll(dir)
	})

	l.startDB("nb")
	// The southbound, which the ovn-controllers talk to, is served on
	// hypervisor 1's management address as well: a central node that
	// is also hypervisor 1, reached over the management network — as
	// Wyvern's raft leader is (see BenchmarkPortUp).
	u.AddManagement(hvs[0], 1)
	for i := 1; i < len(hvs); i++ {
		u.AddManagement(hvs[i], i+1)
	}
	if clustered {
		l.startClusteredSB()
	} else {
		l.startDB("sb", "--remote=ptcp:6642:"+u.ManagementIP(1))
	}
	l.run("ovn-northd", "--ovnnb-db="+l.nbDB(), "--ovnsb-db="+l.sbDB(),
		"--pidfile="+l.path("northd.pid"), "--detach", "--log-file="+l.path("northd.log"),
		"--unixctl="+l.path("northd.ctl"))

	for i, o := range hvs {
		l.startController(i, o)
	}
	l.waitReady()
	return l
}

// path names a file in the lab's directory.
func (l *ovnLab) path(name string) string { return filepath.Join(l.Dir, name) }

func (l *ovnLab) nbDB() string { return "unix:" + l.path("nb.sock") }
func (l *ovnLab) sbDB() string { return "unix:" + l.path("sb.sock") }

// chassis is hypervisor i's system-id (and SB chassis name).
func (l *ovnLab) chassis(i int) string { return fmt.Sprintf("hv%d", i+1) }

// env is the environment every OVN program of the lab runs with: nothing
// it makes goes to /var/run.
func (l *ovnLab) env(rundir string) []string {
	return append(os.Environ(), "OVS_RUNDIR="+rundir, "OVN_RUNDIR="+rundir)
}

// exec runs a command with the lab's environment and returns its
// combined output.
func (l *ovnLab) exec(rundir string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = l.env(rundir)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// run is exec in the lab's directory, failing the test on error.
func (l *ovnLab) run(name string, args ...string) string {
	l.t.Helper()
	out, err := l.exec(l.Dir, name, args...)
	if err != nil {
		l.fatalf("%v", err)
	}
	return out
}

// fatalf fails the test with the tail of every daemon's log appended.
func (l *ovnLab) fatalf(format string, args ...any) {
	l.t.Helper()
	l.logged = true
	l.t.Fatalf("%s\n%s", fmt.Sprintf(format, args...), l.logTails(1500))
}

// logTails returns the last n bytes of each log of the lab.
func (l *ovnLab) logTails(n int) string {
	names := []string{"nb.log", "sb.log", "sb2.log", "northd.log"}
	for i := range l.hvs {
		names = append(names, l.chassis(i)+"-controller.log")
	}
	var b strings.Builder
	for _, name := range names {
		data, err := os.ReadFile(l.path(name))
		if err != nil {
			continue
		}
		if len(data) > n {
			data = data[len(data)-n:]
		}
		fmt.Fprintf(&b, "--- %s (last %d bytes):\n%s\n", name, n, data)
	}
	return b.String()
}

// startDB creates database db ("nb" or "sb") from OVN's schema and serves
// it on db.sock.
func (l *ovnLab) startDB(db string, remotes ...string) {
	l.t.Helper()
	l.run("ovsdb-tool", "create", l.path(db+".db"), filepath.Join(ovnSchemaDir, "ovn-"+db+".ovsschema"))
	args := []string{"ovsdb-server", l.path(db + ".db"), "--remote=punix:" + l.path(db+".sock"),
		"--pidfile=" + l.path(db+".pid"), "--detach", "--log-file=" + l.path(db+".log"),
		"--unixctl=" + l.path(db+".ctl")}
	if len(remotes) > 0 { // served in hypervisor 1's namespace, where the address is
		args = append(append([]string{"netns", "exec", l.hvs[0].NS.Name}, args...), remotes...)
		l.run("ip", args...)
		return
	}
	l.run(args[0], args[1:]...)
}

// sbRemote is where the ovn-controllers find the southbound: hypervisor
// 1's management address, or every member's when it is clustered.
func (l *ovnLab) sbRemote() string {
	if !l.clustered {
		return "tcp:" + l.u.ManagementIP(1) + ":6642"
	}
	var r []string
	for i := range l.hvs {
		r = append(r, "tcp:"+l.u.ManagementIP(i+1)+":6642")
	}
	return strings.Join(r, ",")
}

// sbMember names the files of southbound member i: sb.* for the first
// (which northd and ovn-sbctl use), sb2.*, sb3.* for the others.
func (l *ovnLab) sbMember(i int) string {
	if i == 0 {
		return "sb"
	}
	return fmt.Sprintf("sb%d", i+1)
}

// startClusteredSB creates the southbound as a raft cluster on hypervisor
// 1 and joins one member per other hypervisor, each served (and speaking
// raft) on its hypervisor's management address, in its namespace.
func (l *ovnLab) startClusteredSB() {
	l.t.Helper()
	schema := filepath.Join(ovnSchemaDir, "ovn-sb.ovsschema")
	for i, o := range l.hvs {
		name, ip := l.sbMember(i), l.u.ManagementIP(i+1)
		if i == 0 {
			l.run("ovsdb-tool", "create-cluster", l.path(name+".db"), schema, "tcp:"+ip+":6644")
		} else {
			l.run("ovsdb-tool", "join-cluster", l.path(name+".db"), "OVN_Southbound", "tcp:"+ip+":6644",
				"tcp:"+l.u.ManagementIP(1)+":6644")
		}
		l.run("ip", "netns", "exec", o.NS.Name, "ovsdb-server", l.path(name+".db"),
			"--remote=punix:"+l.path(name+".sock"), "--remote=ptcp:6642:"+ip,
			"--pidfile="+l.path(name+".pid"), "--detach", "--log-file="+l.path(name+".log"),
			"--unixctl="+l.path(name+".ctl"))
	}
	l.eventually("the southbound cluster has every member", func() bool {
		out, err := l.exec(l.Dir, "ovs-appctl", "-t", l.path("sb.ctl"), "cluster/status", "OVN_Southbound")
		return err == nil && strings.Contains(out, "Role: leader") && strings.Count(out, " at tcp:") >= len(l.hvs)
	})
}

// startController points hypervisor i's Open_vSwitch row at the SB and
// runs ovn-controller in the hypervisor's namespace, with the
// hypervisor's directory as OVS_RUNDIR (br-int.mgmt is found there).
func (l *ovnLab) startController(i int, o *ovstest.OVS) {
	l.t.Helper()
	if _, err := o.VsctlErr("set", "open", ".",
		"external_ids:system-id="+l.chassis(i),
		"external_ids:ovn-remote="+l.sbRemote(),
		"external_ids:ovn-encap-type=geneve",
		"external_ids:ovn-encap-ip="+l.u.IP(i+1),
		"external_ids:ovn-bridge-datapath-type=netdev"); err != nil {
		l.fatalf("configuring %s: %v", l.chassis(i), err)
	}
	name := l.chassis(i) + "-controller"
	l.run("ip", "netns", "exec", o.NS.Name,
		"env", "OVS_RUNDIR="+o.Dir, "OVN_RUNDIR="+o.Dir,
		"ovn-controller", o.DB(),
		"--pidfile="+l.path(name+".pid"), "--detach", "--log-file="+l.path(name+".log"))
}

// waitReady waits until every chassis is in the SB, and every hypervisor
// has br-int with a geneve tunnel to each other hypervisor.
func (l *ovnLab) waitReady() {
	l.t.Helper()
	want := make([]string, len(l.hvs))
	for i := range l.hvs {
		want[i] = l.chassis(i)
	}
	l.eventually("every chassis ("+strings.Join(want, " ")+") in the SB", func() bool {
		out, err := l.exec(l.Dir, "ovn-sbctl", "--db="+l.sbDB(), "--timeout=10", "--bare", "--columns=name", "list", "chassis")
		if err != nil {
			return false
		}
		have := map[string]bool{}
		for _, f := range strings.Fields(out) {
			have[f] = true
		}
		for _, c := range want {
			if !have[c] {
				return false
			}
		}
		return true
	})
	for i, o := range l.hvs {
		l.eventually("br-int on "+l.chassis(i), func() bool {
			_, err := o.VsctlErr("br-exists", "br-int")
			return err == nil
		})
	}
	for i, o := range l.hvs {
		l.eventually(fmt.Sprintf("%d geneve tunnels on %s's br-int", len(l.hvs)-1, l.chassis(i)), func() bool {
			out, err := o.VsctlErr("--bare", "--columns=name", "find", "interface", "type=geneve")
			return err == nil && len(strings.Fields(out)) == len(l.hvs)-1
		})
	}
}

// eventually polls cond every 50 ms until it holds, or fails the test
// with the daemons' logs once ovnReadyTimeout has passed.
func (l *ovnLab) eventually(what string, cond func() bool) {
	l.t.Helper()
	deadline := time.Now().Add(ovnReadyTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			l.fatalf("OVN lab: timed out after %s waiting for %s", ovnReadyTimeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// nbctl runs ovn-nbctl against the lab's NB, failing the test on error.
func (l *ovnLab) nbctl(args ...string) string {
	l.t.Helper()
	return strings.TrimSpace(l.run("ovn-nbctl", append([]string{"--db=" + l.nbDB(), fmt.Sprintf("--timeout=%d", int(ovnReadyTimeout.Seconds()))}, args...)...))
}

// switchPort creates (if needed) logical switch sw and adds logical switch port name
// with addresses "MAC IP" and the same port_security, as a CMS creating a Neutron port would.
// It returns once the NB write has been applied (ovn-nbctl --wait=sb or equivalent is acceptable;
// say which you used in a comment).
//
// It uses ovn-nbctl --wait=sb: it returns once ovn-northd has translated
// the write into the SB (the Port_Binding and logical flows exist), not
// once any ovn-controller has installed flows; use waitUp for that. ip may
// carry a prefix length ("10.9.0.1/24"); it is dropped, as Neutron puts
// bare addresses in addresses and port_security.
func (l *ovnLab) switchPort(sw, name, mac, ip string) {
	l.t.Helper()
	ip, _, _ = strings.Cut(ip, "/")
	addr := mac + " " + ip
	l.nbctl("--wait=sb",
		"--may-exist", "ls-add", sw,
		"--", "--may-exist", "lsp-add", sw, name,
		"--", "lsp-set-addresses", name, addr,
		"--", "lsp-set-port-security", name, addr)
}

// isUp reports whether logical switch port name is up in the NB: its
// ovn-controller has bound it and installed its flows, and northd has
// copied that up.
func (l *ovnLab) isUp(name string) bool {
	out, err := l.exec(l.Dir, "ovn-nbctl", "--db="+l.nbDB(), "--timeout=10", "--if-exists", "get", "logical_switch_port", name, "up")
	return err == nil && strings.TrimSpace(out) == "true"
}

// waitUp waits until every named logical switch port is up.
func (l *ovnLab) waitUp(names ...string) {
	l.t.Helper()
	l.eventually("ports "+strings.Join(names, ", ")+" up", func() bool {
		for _, n := range names {
			if !l.isUp(n) {
				return false
			}
		}
		return true
	})
}

// ovnFlowCountRE finds the flow count in a dump-aggregate reply.
var ovnFlowCountRE = regexp.MustCompile(`flow_count=(\d+)`)

// flowCount is the number of OpenFlow flows on br-int of hypervisor i (0-based index into hvs).
//
// It asks ovs-vswitchd with `ovs-ofctl dump-aggregate` (OpenFlow 1.5), so
// it counts every table and no hidden flows. It fails the test on error,
// so call it from the test's goroutine.
func (l *ovnLab) flowCount(i int) int {
	l.t.Helper()
	out, err := l.hvs[i].OfctlErr("dump-aggregate", "br-int")
	if err != nil {
		l.fatalf("flow count of %s: %v", l.chassis(i), err)
	}
	m := ovnFlowCountRE.FindStringSubmatch(out)
	if m == nil {
		l.fatalf("flow count of %s: no flow_count in %q", l.chassis(i), out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// pidfiles lists the lab's pidfiles, in the order to stop them:
// ovn-controllers, northd, then the databases.
func (l *ovnLab) pidfiles() []string {
	var files []string
	for i := range l.hvs {
		files = append(files, l.path(l.chassis(i)+"-controller.pid"))
	}
	for i := range l.hvs {
		if i > 0 {
			files = append(files, l.path(l.sbMember(i)+".pid"))
		}
	}
	return append(files, l.path("northd.pid"), l.path("sb.pid"), l.path("nb.pid"))
}

// stop stops every daemon of the lab by its pidfile.
func (l *ovnLab) stop() {
	for _, f := range l.pidfiles() {
		ovnStopPidfile(f, l.Dir)
	}
}

// ovnStopPidfile stops the process a pidfile names, if its command line
// mentions dir (every daemon of a lab is started with --pidfile=dir/...):
// a pid reused by an unrelated process is left alone. SIGTERM, up to 5 s,
// then SIGKILL.
func ovnStopPidfile(pidfile, dir string) {
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(dir+"/")) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for range 100 {
		if !ovnAlive(pid) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// ovnAlive reports whether pid runs. A daemon that has exited but is not
// yet reaped counts as stopped: a --detach daemon is a child of PID 1,
// which on these machines reaps only every couple of seconds.
func ovnAlive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z' && stat[i+2] != 'X'
	}
	return true
}

var ovnSweepOnce sync.Once

// ovnSweepStale stops the daemons of labs whose owning test process died
// without running its cleanups (killed on a timeout), and deletes their
// directories. Only directories named ovnDirPrefix* with an owner file
// are considered, and only processes whose command line names the
// directory are stopped.
func ovnSweepStale() {
	dirs, _ := filepath.Glob(ovnDirPrefix + "*")
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner"))
		if err != nil {
			continue
		}
		owner, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || owner == os.Getpid() || syscall.Kill(owner, 0) == nil {
			continue
		}
		pidfiles, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
		for _, f := range pidfiles {
			ovnStopPidfile(f, dir)
		}
		_ = os.RemoveAll(dir)
	}
}

// TestOVNLabSmoke builds a two-hypervisor OVN lab, puts a port of one
// logical switch on each, and pings across the geneve overlay.
func TestOVNLabSmoke(t *testing.T) {
	ovstest.Require(t)
	start := time.Now()
	u := ovstest.NewUnderlay(t)
	hvs := []*ovstest.OVS{u.AddHypervisor(1), u.AddHypervisor(2)}
	hvsUp := time.Now()
	l := newOVNLab(t, u, hvs)
	labUp := time.Now()
	t.Logf("hypervisors in %s, OVN lab ready in %s", hvsUp.Sub(start).Round(time.Millisecond), labUp.Sub(hvsUp).Round(time.Millisecond))

	type port struct{ name, mac, ip string }
	ports := []port{{"a", "02:00:0a:09:00:01", "10.9.0.1/24"}, {"b", "02:00:0a:09:00:02", "10.9.0.2/24"}}
	for _, p := range ports {
		l.switchPort("ls0", p.name, p.mac, p.ip)
	}
	for _, p := range ports {
		if l.isUp(p.name) {
			l.fatalf("port %s is up before any VM is plugged", p.name)
		}
	}
	vms := make([]*ovstest.VM, len(ports))
	for i, p := range ports {
		vms[i] = hvs[i].NewVM(p.mac, p.ip)
		vms[i].Plug("br-int", p.name)
	}
	plugged := time.Now()
	l.waitUp("a", "b")
	t.Logf("ports up %s after the last plug", time.Since(plugged).Round(time.Millisecond))

	if out, err := vms[0].Exec("ping", "-c", "3", "-i", "0.2", "-W", "2", "10.9.0.2"); err != nil {
		l.fatalf("ping from a (hv1) to b (hv2) across OVN: %v\n%s", err, out)
	}
	for i := range hvs {
		n := l.flowCount(i)
		t.Logf("%s: %d OpenFlow flows on br-int", l.chassis(i), n)
		if n <= 0 {
			l.fatalf("%s: no OpenFlow flows on br-int", l.chassis(i))
		}
	}
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}
