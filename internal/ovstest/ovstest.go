// Package ovstest runs real Open vSwitch for tests: an ovsdb-server and an
// ovs-vswitchd (userspace datapath) per instance, each in its own directory
// and optionally its own network namespace, plus VM namespaces joined to a
// bridge by veth pairs. Everything it starts is stopped by pid, and every
// namespace and link it makes is deleted by name, even when a test fails.
package ovstest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

// InstallHint is the command that provides what these tests need.
const InstallHint = "apt-get update && apt-get install -y openvswitch-switch iproute2 iputils-ping tcpdump ethtool arping"

var tools = []string{"ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ovs-appctl", "ip"}

// Require fails the test, with the install command, when OVS or iproute2
// is missing or the test is not root. It never skips silently.
func Require(t testing.TB) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: these tests run real Open vSwitch; install it with:\n  %s", tool, InstallHint)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatalf("real-OVS tests need root (network namespaces, veth pairs)")
	}
}

var seq atomic.Uint32

// Name returns a name unique to this process and call, at most 15
// characters (the kernel's limit for links), starting with prefix.
func Name(prefix string) string {
	s := fmt.Sprintf("%s%x%x", prefix, os.Getpid()%0xfff, seq.Add(1))
	if len(s) > 15 {
		s = s[len(s)-15:]
	}
	return s
}

// run executes a command and returns its combined output.
func run(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// NetNS is a network namespace made by a test.
type NetNS struct {
	Name string
}

// NewNetNS makes a namespace with loopback up; t.Cleanup deletes it.
func NewNetNS(t testing.TB, prefix string) *NetNS {
	t.Helper()
	sweepOnce.Do(sweepStale)
	ns := &NetNS{Name: Name(prefix)}
	if _, err := run("ip", "netns", "add", ns.Name); err != nil {
		t.Fatal(err)
	}
	record("netns", ns.Name)
	t.Cleanup(func() { _, _ = run("ip", "netns", "del", ns.Name) })
	if _, err := ns.Exec("ip", "link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}
	return ns
}

// Exec runs a command inside the namespace.
func (n *NetNS) Exec(args ...string) (string, error) {
	return run("ip", append([]string{"netns", "exec", n.Name}, args...)...)
}

// Command builds a command that runs inside the namespace.
func (n *NetNS) Command(args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...)
}

// OVS is one Open vSwitch instance. Its ovs-vswitchd always runs in a
// namespace of its own: two userspace datapaths in one namespace fight over
// the ovs-netdev tap device.
type OVS struct {
	t   testing.TB
	Dir string
	NS  *NetNS // the hypervisor namespace ovs-vswitchd runs in

	dbRemotes []string // remotes ovsdb-server serves besides its unix socket
}

// Start runs ovsdb-server and ovs-vswitchd in a fresh directory and a new
// network namespace; t.Cleanup stops both by pid and deletes the namespace.
func Start(t testing.TB) *OVS {
	t.Helper()
	Require(t)
	dir, err := os.MkdirTemp("/tmp", "wyovs")
	if err != nil {
		t.Fatal(err)
	}
	record("dir", dir)
	o := &OVS{t: t, Dir: dir}
	o.NS = NewNetNS(t, "hv")
	t.Cleanup(func() {
		o.stop()
		if t.Failed() {
			for _, f := range []string{"vs.log", "db.log"} {
				if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
					t.Logf("%s (last 3000 bytes):\n%s", f, tail(b, 3000))
				}
			}
		}
		_ = os.RemoveAll(dir)
	})
	if _, err := run("ovsdb-tool", "create", o.path("conf.db"), "/usr/share/openvswitch/vswitch.ovsschema"); err != nil {
		t.Fatal(err)
	}
	o.startOVSDB()
	if _, err := o.VsctlErr("--no-wait", "init"); err != nil {
		t.Fatal(err)
	}
	o.startVswitchd()
	return o
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func (o *OVS) path(name string) string { return filepath.Join(o.Dir, name) }

// DB is the ovsdb-server endpoint.
func (o *OVS) DB() string { return "unix:" + o.path("db.sock") }

func (o *OVS) startVswitchd() {
	o.t.Helper()
	args := []string{"env", "OVS_RUNDIR=" + o.Dir, "ovs-vswitchd", o.DB(), "--pidfile=" + o.path("vs.pid"),
		"--detach", "--log-file=" + o.path("vs.log"), "--unixctl=" + o.path("vs.ctl")}
	if _, err := o.NS.Exec(args...); err != nil {
		o.t.Fatal(err)
	}
}

// VswitchdPID is the running ovs-vswitchd's pid.
func (o *OVS) VswitchdPID() int { return readPID(o.path("vs.pid")) }

// RestartVswitchd stops ovs-vswitchd by pid and starts it again; bridges
// come back from the database, flows do not.
func (o *OVS) RestartVswitchd() {
	o.t.Helper()
	stopPID(readPID(o.path("vs.pid")))
	o.startVswitchd()
}

// RestartOVSDB stops ovsdb-server by pid and starts it again on the same
// database; clients must reconnect.
func (o *OVS) RestartOVSDB() {
	o.t.Helper()
	stopPID(readPID(o.path("db.pid")))
	o.startOVSDB()
}

// StopOVSDB stops ovsdb-server by pid and leaves ovs-vswitchd running
// (its bridges keep forwarding); RestartOVSDB starts it again.
func (o *OVS) StopOVSDB() { stopPID(readPID(o.path("db.pid"))) }

// startOVSDB runs ovsdb-server on the unix socket and any other remotes,
// its SSL key, certificate and CA taken from the database's SSL row (as
// ovs-ctl starts it), so that `ovs-vsctl set-ssl` configures a pssl:
// remote too.
func (o *OVS) startOVSDB() {
	o.t.Helper()
	args := []string{o.path("conf.db"), "--remote=punix:" + o.path("db.sock"),
		"--private-key=db:Open_vSwitch,SSL,private_key", "--certificate=db:Open_vSwitch,SSL,certificate",
		"--ca-cert=db:Open_vSwitch,SSL,ca_cert",
		"--pidfile=" + o.path("db.pid"), "--detach", "--log-file=" + o.path("db.log"), "--unixctl=" + o.path("db.ctl")}
	for _, r := range o.dbRemotes {
		args = append(args, "--remote="+r)
	}
	if _, err := run("ovsdb-server", args...); err != nil {
		o.t.Fatal(err)
	}
}

// ServeOVSDBOverSSL restarts ovsdb-server listening also on
// pssl:PORT:127.0.0.1 (in the test's namespace) and returns the client
// endpoint, ssl:127.0.0.1:PORT. ovsdb-server takes its key, certificate
// and CA from the SSL row: run `set-ssl` first. A restart keeps the
// remote.
func (o *OVS) ServeOVSDBOverSSL() string {
	o.t.Helper()
	host, port, _ := net.SplitHostPort(FreeAddr(o.t))
	o.dbRemotes = append(o.dbRemotes, "pssl:"+port+":"+host)
	o.RestartOVSDB()
	return "ssl:" + net.JoinHostPort(host, port)
}

// Stop stops the instance's ovs-vswitchd and ovsdb-server (a hypervisor
// whose OVS went away); cleanup does it again harmlessly.
func (o *OVS) Stop() { o.stop() }

func (o *OVS) stop() {
	stopPID(readPID(o.path("vs.pid")))
	stopPID(readPID(o.path("db.pid")))
}

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// stopPID sends SIGTERM, waits up to 5 s, then SIGKILLs.
func stopPID(pid int) {
	if pid <= 1 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 500; i++ {
		if syscall.Kill(pid, 0) != nil || zombie(pid) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// zombie reports whether a process has exited but is not reaped yet: a
// daemon that detached is reaped by init, which on some machines takes
// seconds; it is stopped all the same.
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...: the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}

// VsctlErr runs ovs-vsctl against this instance.
func (o *OVS) VsctlErr(args ...string) (string, error) {
	return run("ovs-vsctl", append([]string{"--db=" + o.DB(), "--timeout=10"}, args...)...)
}

// Vsctl runs ovs-vsctl and fails the test on error.
func (o *OVS) Vsctl(args ...string) string {
	o.t.Helper()
	out, err := o.VsctlErr(args...)
	if err != nil {
		o.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// Mgmt is the bridge's OpenFlow management socket, for ovs-ofctl.
func (o *OVS) Mgmt(bridge string) string { return o.path(bridge + ".mgmt") }

// OfctlErr runs `ovs-ofctl -O OpenFlow15 CMD MGMT ARGS...` on a bridge.
func (o *OVS) OfctlErr(cmd, bridge string, args ...string) (string, error) {
	return run("ovs-ofctl", append([]string{"-O", "OpenFlow15", cmd, o.Mgmt(bridge)}, args...)...)
}

// Ofctl runs ovs-ofctl and fails the test on error.
func (o *OVS) Ofctl(cmd, bridge string, args ...string) string {
	o.t.Helper()
	out, err := o.OfctlErr(cmd, bridge, args...)
	if err != nil {
		o.t.Fatal(err)
	}
	return out
}

// DumpFlowsErr returns the bridge's flows as golden lines:
// `ovs-ofctl -O OpenFlow15 dump-flows --no-stats --names`, trimmed and sorted.
func (o *OVS) DumpFlowsErr(bridge string) ([]string, error) {
	out, err := run("ovs-ofctl", "-O", "OpenFlow15", "dump-flows", "--no-stats", "--names", o.Mgmt(bridge))
	if err != nil {
		return nil, err
	}
	return of.NormalizeDump(out), nil
}

// DumpFlows is DumpFlowsErr failing the test on error.
func (o *OVS) DumpFlows(bridge string) []string {
	o.t.Helper()
	lines, err := o.DumpFlowsErr(bridge)
	if err != nil {
		o.t.Fatal(err)
	}
	return lines
}

// Appctl runs ovs-appctl against ovs-vswitchd.
func (o *OVS) Appctl(args ...string) (string, error) {
	return run("ovs-appctl", append([]string{"-t", o.path("vs.ctl")}, args...)...)
}

// Trace runs ofproto/trace and returns its output.
func (o *OVS) Trace(bridge, flow string) (string, error) {
	return o.Appctl("ofproto/trace", bridge, flow)
}

// BridgeOptions shape a bridge made by AddBridge.
type BridgeOptions struct {
	// Controller is the bridge's controller target (tcp:IP:PORT or
	// unix:PATH); empty for none.
	Controller string
}

// AddBridge creates a netdev bridge the way wyvernd wants it:
// fail_mode=secure, OpenFlow 1.3 and 1.5, an out-of-band controller that
// reconnects within a second.
func (o *OVS) AddBridge(name string, opts BridgeOptions) {
	o.t.Helper()
	args := []string{"add-br", name, "--", "set", "bridge", name, "datapath_type=netdev",
		"fail_mode=secure", "protocols=OpenFlow13,OpenFlow15"}
	o.Vsctl(args...)
	if opts.Controller != "" {
		o.SetController(name, opts.Controller)
	}
}

// SetController points a bridge at a controller.
func (o *OVS) SetController(bridge, target string) {
	o.t.Helper()
	o.Vsctl("set-controller", bridge, target)
	o.Vsctl("--", "set", "controller", bridge, "max_backoff=1000", "connection_mode=out-of-band")
}

// Connected reports whether the bridge's controller connection is up.
func (o *OVS) Connected(bridge string) bool {
	out, err := o.VsctlErr("--columns=is_connected", "list", "controller")
	return err == nil && strings.Contains(out, "true")
}

// VM is a namespace with one interface, eth0, plugged into a bridge.
type VM struct {
	*NetNS
	t      testing.TB
	o      *OVS
	Tap    string // the bridge side of the veth pair
	MAC    string
	IP     string // with prefix, e.g. 10.0.0.1/24
	OFPort int
}

// AddVM makes a VM namespace and plugs its eth0 into the bridge with
// external_ids:iface-id=ifaceID. Checksum offload is turned off, as TCP over
// the userspace datapath needs.
func (o *OVS) AddVM(bridge, ifaceID, mac, ipCIDR string) *VM {
	o.t.Helper()
	vm := o.NewVM(mac, ipCIDR)
	vm.Plug(bridge, ifaceID)
	return vm
}

// NewVM makes a VM namespace with eth0 configured and up, its peer (Tap)
// in the hypervisor's namespace, plugged into no bridge yet. With ipCIDR
// empty, eth0 has no address (a VM that will ask DHCP).
func (o *OVS) NewVM(mac, ipCIDR string) *VM {
	o.t.Helper()
	vm := &VM{NetNS: NewNetNS(o.t, "vm"), t: o.t, o: o, Tap: Name("tap"), MAC: mac, IP: ipCIDR}
	if _, err := run("ip", "link", "add", vm.Tap, "netns", o.NS.Name, "type", "veth",
		"peer", "name", "eth0", "netns", vm.Name); err != nil {
		o.t.Fatal(err)
	}
	o.t.Cleanup(func() { _, _ = o.NS.Exec("ip", "link", "del", vm.Tap) })
	if _, err := o.NS.Exec("ip", "link", "set", vm.Tap, "up"); err != nil {
		o.t.Fatal(err)
	}
	cmds := [][]string{{"ip", "link", "set", "eth0", "address", mac}, {"ip", "addr", "add", ipCIDR, "dev", "eth0"},
		{"ip", "link", "set", "eth0", "up"}}
	if ipCIDR == "" { // an address to come from DHCP
		cmds = append(cmds[:1], cmds[2])
	}
	for _, cmd := range cmds {
		if _, err := vm.Exec(cmd...); err != nil {
			o.t.Fatal(err)
		}
	}
	_, _ = vm.Exec("ethtool", "-K", "eth0", "tx", "off")
	return vm
}

// Plug adds the VM's tap to a bridge with external_ids:iface-id=ifaceID,
// the way Nova's os-vif does, and waits for its ofport.
func (vm *VM) Plug(bridge, ifaceID string) {
	vm.t.Helper()
	vm.o.Vsctl("add-port", bridge, vm.Tap, "--", "set", "interface", vm.Tap, "external_ids:iface-id="+ifaceID)
	ofport := ""
	if n, err := strconv.Atoi(vm.o.Vsctl("get", "interface", vm.Tap, "ofport")); err == nil && n > 0 {
		vm.OFPort = n // vswitchd assigned it before add-port returned
		return
	}
	Eventually(vm.t, 10*time.Second, "ofport of "+vm.Tap, func() bool {
		ofport = vm.o.Vsctl("get", "interface", vm.Tap, "ofport")
		n, err := strconv.Atoi(ofport)
		return err == nil && n > 0
	})
	vm.OFPort, _ = strconv.Atoi(ofport)
}

// Eventually polls cond every 50 ms until it holds or the deadline passes,
// then fails the test naming what it waited for.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FreeAddr asks the kernel for a free loopback TCP address.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
