package ovstest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Physical is the physical network outside a cloud: one MAC-learning
// switch, br-phys, on an ovs-vswitchd and ovsdb-server of its own in a
// namespace of its own. Hypervisors reach it through uplinks (trunk ports,
// every VLAN); hosts and the outside router sit on it as access ports. It
// is OVS rather than a Linux bridge because VLANs need it: the kernels
// these tests run on have no 802.1Q module and no bridge VLAN filtering.
//
// Every interface the physical world makes has IPv6 off (no router
// solicitations, MLD or DAD on the wire, so that captures show what the
// test caused) and transmit checksum offload off (TCP through a userspace
// datapath needs it).
type Physical struct {
	t      testing.TB
	OVS    *OVS   // the switch's own Open vSwitch
	NS     *NetNS // the namespace its ovs-vswitchd runs in (OVS.NS)
	Bridge string // the switch, br-phys
}

// PhysicalBridge is the name of the physical network's switch.
const PhysicalBridge = "br-phys"

// NewPhysical starts the physical network's switch; t.Cleanup stops it.
func NewPhysical(t testing.TB) *Physical {
	t.Helper()
	o := Start(t)
	p := &Physical{t: t, OVS: o, NS: o.NS, Bridge: PhysicalBridge}
	// standalone with no controller: OVS installs priority=0,actions=NORMAL.
	o.Vsctl("add-br", p.Bridge, "--", "set", "bridge", p.Bridge, "datapath_type=netdev", "fail_mode=standalone")
	return p
}

// Uplink is a hypervisor's link to the physical network: a veth pair
// whose hypervisor end is a port of an operator's bridge (br-ex) in the
// hypervisor's ovs-vswitchd and whose other end is a trunk port of
// br-phys.
type Uplink struct {
	p      *Physical
	HV     *OVS   // the hypervisor
	Bridge string // the hypervisor's bridge holding the uplink (br-ex)
	HVPort string // the uplink's end in the hypervisor, a port of Bridge
	Port   string // its end in the physical namespace, a trunk port of br-phys
}

// Uplink joins a hypervisor to the physical network: it creates the
// hypervisor's bridge (netdev, fail_mode=standalone, forwarding NORMAL,
// as an operator's br-ex does) if it does not exist, and adds the
// hypervisor's end of a new veth to it; the other end becomes a trunk port
// of br-phys, carrying every VLAN tagged and VLAN 0 untagged.
func (p *Physical) Uplink(hv *OVS, bridge string) *Uplink {
	p.t.Helper()
	u := &Uplink{p: p, HV: hv, Bridge: bridge, HVPort: Name("ex"), Port: Name("up")}
	if _, err := run("ip", "link", "add", u.HVPort, "netns", hv.NS.Name, "type", "veth",
		"peer", "name", u.Port, "netns", p.NS.Name); err != nil {
		p.t.Fatal(err)
	}
	bringUp(p.t, hv.NS, u.HVPort)
	bringUp(p.t, p.NS, u.Port)
	hv.Vsctl("--may-exist", "add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev", "fail_mode=standalone")
	waitOFPort(p.t, hv, u.HVPort, "add-port", bridge, u.HVPort)
	waitOFPort(p.t, p.OVS, u.Port, "add-port", p.Bridge, u.Port)
	return u
}

// Capture captures, in both directions, what crosses the uplink, on its
// physical end; see (*NetNS).Sniff.
func (u *Uplink) Capture(filter string) *LiveCapture {
	u.p.t.Helper()
	return u.p.NS.Sniff(u.p.t, u.Port, filter)
}

// CaptureSent captures only the frames the hypervisor puts on the wire.
func (u *Uplink) CaptureSent(filter string) *LiveCapture {
	u.p.t.Helper()
	return u.p.NS.Sniff(u.p.t, u.Port, filter, "-Q", "in")
}

// CaptureReceived captures only the frames the wire delivers to the
// hypervisor.
func (u *Uplink) CaptureReceived(filter string) *LiveCapture {
	u.p.t.Helper()
	return u.p.NS.Sniff(u.p.t, u.Port, filter, "-Q", "out")
}

// Host puts a host on the physical network: a namespace whose eth0 is an
// access port of br-phys on a VLAN (0: untagged, the flat network), with
// an address (cidr, e.g. 203.0.113.50/24) and, if gw is not empty, a
// default route via gw. name begins the namespace's name. An access port
// on VLAN 0 (tag=0) takes and gives untagged frames only: it sees nothing
// of the tagged VLANs, as a host on a flat network must not.
func (p *Physical) Host(name string, vlan int, cidr, gw string) *VM {
	p.t.Helper()
	return p.OVS.addAccessHost(name, p.Bridge, vlan, cidr, gw)
}

// AddAccessHost is Host on any bridge of this OVS (a hypervisor's br-ex,
// say): a namespace whose eth0 is an access port on a VLAN (0: untagged).
func (o *OVS) AddAccessHost(bridge string, vlan int, cidr, gw string) *VM {
	o.t.Helper()
	return o.addAccessHost("ah", bridge, vlan, cidr, gw)
}

func (o *OVS) addAccessHost(prefix, bridge string, vlan int, cidr, gw string) *VM {
	o.t.Helper()
	if len(prefix) > 6 {
		prefix = prefix[:6]
	}
	vm := &VM{NetNS: NewNetNS(o.t, prefix), t: o.t, o: o, Tap: Name("h"), IP: cidr}
	if _, err := run("ip", "link", "add", vm.Tap, "netns", o.NS.Name, "type", "veth",
		"peer", "name", "eth0", "netns", vm.Name); err != nil {
		o.t.Fatal(err)
	}
	bringUp(o.t, o.NS, vm.Tap)
	vm.MAC = configureHost(o.t, vm.NetNS, "eth0", cidr, gw)
	vm.OFPort = waitOFPort(o.t, o, vm.Tap, "add-port", bridge, vm.Tap, "--", "set", "port", vm.Tap, "tag="+strconv.Itoa(vlan))
	return vm
}

// RouterOptions place the outside router.
type RouterOptions struct {
	Name     string // begins the router's namespace name; "rtr" if empty
	VLAN     int    // the external network's VLAN on br-phys; 0: untagged
	Address  string // the router's address on the external network, e.g. 203.0.113.1/24
	Upstream string // its address towards the internet, e.g. 198.51.100.1/24
	Internet string // the internet host's address, e.g. 198.51.100.10/24
}

// Router is the outside router: a namespace forwarding between its leg
// on the physical network (eth0, an access port of br-phys) and its leg
// towards "the internet" (up0), a veth to a namespace of its own holding
// one host whose default route is the router.
type Router struct {
	*VM          // the router; its VM.IP is its address on the external network
	Internet *VM // the internet host; its Tap is the router's up0, not a bridge port
}

// RouterUpstream is the name of the router's leg towards the internet.
const RouterUpstream = "up0"

// Router puts the outside router and the internet host behind it on the
// physical network.
func (p *Physical) Router(opts RouterOptions) *Router {
	p.t.Helper()
	if opts.Name == "" {
		opts.Name = "rtr"
	}
	r := &Router{VM: p.OVS.addAccessHost(opts.Name, p.Bridge, opts.VLAN, opts.Address, "")}
	if _, err := r.Exec("sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
		p.t.Fatal(err)
	}
	inet := &VM{NetNS: NewNetNS(p.t, "inet"), t: p.t, Tap: RouterUpstream, IP: opts.Internet}
	if _, err := run("ip", "link", "add", RouterUpstream, "netns", r.Name, "type", "veth",
		"peer", "name", "eth0", "netns", inet.Name); err != nil {
		p.t.Fatal(err)
	}
	configureHost(p.t, r.NetNS, RouterUpstream, opts.Upstream, "")
	inet.MAC = configureHost(p.t, inet.NetNS, "eth0", opts.Internet, addrOf(opts.Upstream))
	r.Internet = inet
	return r
}

// addrOf is the address of an address with a prefix length.
func addrOf(cidr string) string { a, _, _ := strings.Cut(cidr, "/"); return a }

// quiet turns off IPv6 and transmit checksum offload on an interface.
func quiet(t testing.TB, ns *NetNS, dev string) {
	t.Helper()
	if _, err := ns.Exec("sysctl", "-qw", "net.ipv6.conf."+dev+".disable_ipv6=1"); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.Exec("ethtool", "-K", dev, "tx", "off"); err != nil {
		t.Fatal(err)
	}
}

// bringUp readies the bridge end of a veth: quiet and up.
func bringUp(t testing.TB, ns *NetNS, dev string) {
	t.Helper()
	quiet(t, ns, dev)
	if _, err := ns.Exec("ip", "link", "set", dev, "up"); err != nil {
		t.Fatal(err)
	}
}

// configureHost readies a host's interface: quiet, its address, up, a
// default route via gw (if any). It returns the interface's MAC.
func configureHost(t testing.TB, ns *NetNS, dev, cidr, gw string) string {
	t.Helper()
	quiet(t, ns, dev)
	cmds := [][]string{{"ip", "link", "set", dev, "up"}}
	if cidr != "" {
		cmds = append(cmds, []string{"ip", "addr", "add", cidr, "dev", dev})
	}
	if gw != "" {
		cmds = append(cmds, []string{"ip", "route", "add", "default", "via", gw})
	}
	for _, cmd := range cmds {
		if _, err := ns.Exec(cmd...); err != nil {
			t.Fatal(err)
		}
	}
	mac, err := ns.Exec("cat", "/sys/class/net/"+dev+"/address")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(mac)
}

// waitOFPort runs ovs-vsctl (an add-port of port) and waits until
// ovs-vswitchd gave the port an OpenFlow port number.
func waitOFPort(t testing.TB, o *OVS, port string, vsctl ...string) int {
	t.Helper()
	o.Vsctl(vsctl...)
	n := 0
	Eventually(t, 10*time.Second, "ofport of "+port, func() bool {
		out, err := o.VsctlErr("get", "interface", port, "ofport")
		n, _ = strconv.Atoi(strings.TrimSpace(out))
		return err == nil && n > 0
	})
	return n
}

// Ping sends three echo requests, 0.2 s apart, waiting up to 2 s for each
// answer; it fails when none is answered.
func (n *NetNS) Ping(ip string) error {
	_, err := n.Exec("ping", "-c", "3", "-i", "0.2", "-W", "2", ip)
	return err
}

// Neighbour is the MAC the namespace's neighbour table holds for ip,
// empty if none (or the entry is FAILED/INCOMPLETE).
func (n *NetNS) Neighbour(ip string) string {
	out, err := n.Exec("ip", "neigh", "show", "to", ip)
	if err != nil {
		return ""
	}
	f := strings.Fields(out)
	for i, w := range f {
		if w == "lladdr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// TCPServer is a TCP listener inside a namespace that answers every
// connection with one line, the address the connection came from (so a
// client learns what source address NAT gave it), and closes it.
type TCPServer struct {
	Addr string // the address it listens on
	mu   sync.Mutex
	from []string
}

// ServeTCP listens on addr (e.g. 198.51.100.10:8080, or :8080) inside the
// namespace until the test ends.
func (n *NetNS) ServeTCP(t testing.TB, addr string) *TCPServer {
	t.Helper()
	s := &TCPServer{}
	s.Addr = n.Serve(t, addr, func(c net.Conn) {
		from := c.RemoteAddr().(*net.TCPAddr).IP.String()
		s.mu.Lock()
		s.from = append(s.from, from)
		s.mu.Unlock()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(c, from+"\n")
	})
	return s
}

// Peers are the source addresses of the connections accepted so far.
func (s *TCPServer) Peers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.from...)
}

// TCPOutcome is how a connection attempt ended.
type TCPOutcome int

// The outcomes of ConnectTCP.
const (
	TCPConnected   TCPOutcome = iota + 1 // handshake done and the server's answer read
	TCPRefused                           // a RST answered the SYN
	TCPUnreachable                       // an ICMP unreachable (or no route) answered
	TCPTimedOut                          // no answer within the timeout, at handshake or after
	TCPFailed                            // anything else (see Err)
)

func (o TCPOutcome) String() string {
	switch o {
	case TCPConnected:
		return "connected"
	case TCPRefused:
		return "refused"
	case TCPUnreachable:
		return "unreachable"
	case TCPTimedOut:
		return "timed out"
	case TCPFailed:
		return "failed"
	}
	return "TCPOutcome(" + strconv.Itoa(int(o)) + ")"
}

// TCPResult is what ConnectTCP saw.
type TCPResult struct {
	Outcome TCPOutcome
	// Answer is the server's first line (from a TCPServer: the address
	// it saw the connection come from), without the newline.
	Answer string
	Err    error
}

func (r TCPResult) String() string {
	if r.Err != nil {
		return fmt.Sprintf("%s (%v)", r.Outcome, r.Err)
	}
	return fmt.Sprintf("%s (answer %q)", r.Outcome, r.Answer)
}

// ConnectTCP connects from inside the namespace to addr and reads the
// server's first line (up to the newline or the server's close), all
// within timeout. Connected means data went both ways: the handshake
// alone can pass where data does not (a bad checksum, a NAT that
// forgot).
func (n *NetNS) ConnectTCP(addr string, timeout time.Duration) TCPResult {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := n.DialContext(ctx, "tcp4", addr)
	if err != nil {
		return TCPResult{Outcome: dialOutcome(err), Err: err}
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	_ = c.SetReadDeadline(deadline)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) { // EOF: the server closed, after its answer if any
		return TCPResult{Outcome: dialOutcome(err), Err: fmt.Errorf("connected, then no answer: %w", err)}
	}
	return TCPResult{Outcome: TCPConnected, Answer: strings.TrimSuffix(line, "\n")}
}

func dialOutcome(err error) TCPOutcome {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return TCPRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return TCPUnreachable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT),
		errors.As(err, &ne) && ne.Timeout():
		return TCPTimedOut
	}
	return TCPFailed
}

// LiveCapture is a running tcpdump whose packets can be read while it
// runs: one line per packet (`-e -nn`: link-level headers, a tag as
// "vlan 100", numeric addresses and ports), an encapsulated frame folded
// onto its packet's line after " | ".
type LiveCapture struct {
	t    testing.TB
	Dev  string // the interface captured
	NS   *NetNS // the namespace it is in
	cmd  *exec.Cmd
	mu   sync.Mutex
	buf  []string
	read chan struct{} // closed when stdout is drained
	once sync.Once
}

// Sniff starts tcpdump on dev inside the namespace with a filter (pcap
// syntax; "" for everything; mind that a filter such as "icmp" matches no
// VLAN-tagged frame: "icmp or (vlan and icmp)" matches both) and more
// tcpdump arguments (e.g. "-Q", "in"), and returns once tcpdump captures.
// t.Cleanup stops it.
func (n *NetNS) Sniff(t testing.TB, dev, filter string, args ...string) *LiveCapture {
	t.Helper()
	argv := append([]string{"tcpdump", "-i", dev, "-e", "-nn", "-l", "--immediate-mode"}, args...)
	if filter != "" {
		argv = append(argv, filter)
	}
	c := &LiveCapture{t: t, Dev: dev, NS: n, cmd: n.Command(argv...), read: make(chan struct{})}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("tcpdump on %s in %s: %v", dev, n.Name, err)
	}
	t.Cleanup(func() { c.Stop() })
	go func() {
		defer close(c.read)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			l := sc.Text()
			if strings.TrimSpace(l) == "" {
				continue
			}
			c.mu.Lock()
			if len(c.buf) > 0 && !timestamp.MatchString(l) {
				c.buf[len(c.buf)-1] += " | " + strings.TrimSpace(l)
			} else {
				c.buf = append(c.buf, l)
			}
			c.mu.Unlock()
		}
	}()
	// tcpdump says "listening on" once it captures.
	listening := make(chan string, 1)
	go func() {
		var said strings.Builder
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			said.WriteString(sc.Text() + "\n")
			if !sent && strings.Contains(sc.Text(), "listening on") {
				listening <- ""
				sent = true
			}
		}
		if !sent {
			listening <- said.String()
		}
	}()
	select {
	case said := <-listening:
		if said != "" {
			t.Fatalf("tcpdump on %s in %s never captured: %s", dev, n.Name, strings.TrimSpace(said))
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("tcpdump on %s in %s: not capturing after 10s", dev, n.Name)
	}
	return c
}

// Lines are the packets seen so far whose lines contain every one of the
// given strings.
func (c *LiveCapture) Lines(contains ...string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
next:
	for _, l := range c.buf {
		for _, s := range contains {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

// Match are the packets seen so far whose lines match the regular
// expression.
func (c *LiveCapture) Match(re string) []string {
	c.t.Helper()
	rx, err := regexp.Compile(re)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, l := range c.buf {
		if rx.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

// Wait waits up to timeout for a packet whose line matches the regular
// expression and returns the first such line; it fails the test, showing
// what was seen, if none comes.
func (c *LiveCapture) Wait(re string, timeout time.Duration) string {
	c.t.Helper()
	var got []string
	deadline := time.Now().Add(timeout)
	for {
		if got = c.Match(re); len(got) > 0 {
			return got[0]
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no packet matching %q on %s in %s within %s; seen:\n%s", re, c.Dev, c.NS.Name, timeout,
				strings.Join(c.Lines(), "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops tcpdump (by its pid), waits for the packets it had yet to
// print, and returns every line. Further calls return the same lines.
func (c *LiveCapture) Stop() []string {
	c.once.Do(func() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		exited := make(chan struct{})
		go func() { <-c.read; _ = c.cmd.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = c.cmd.Process.Kill()
			<-exited
		}
	})
	return c.Lines()
}
