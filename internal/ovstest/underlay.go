package ovstest

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Underlay is one L2 segment joining hypervisors: a Linux bridge in a
// namespace of its own, with a veth to each hypervisor's br-phy. Hypervisor
// n gets 172.31.0.n/24 on its br-phy, as Open vSwitch's userspace
// tunnelling wants the endpoint address on an OVS bridge.
type Underlay struct {
	t  testing.TB
	NS *NetNS
}

// NewUnderlay makes the segment.
func NewUnderlay(t testing.TB) *Underlay {
	t.Helper()
	u := &Underlay{t: t, NS: NewNetNS(t, "ul")}
	for _, cmd := range [][]string{{"ip", "link", "add", "br0", "type", "bridge"}, {"ip", "link", "set", "br0", "up"}} {
		if _, err := u.NS.Exec(cmd...); err != nil {
			t.Fatal(err)
		}
	}
	return u
}

// Port is the underlay's side of hypervisor n's link, for captures.
func (u *Underlay) Port(n int) string { return fmt.Sprintf("p%d", n) }

// IP is hypervisor n's underlay address.
func (u *Underlay) IP(n int) string { return fmt.Sprintf("172.31.0.%d", n) }

// AddHypervisor starts OVS in a new namespace and plugs it into the
// underlay through br-phy, which carries the hypervisor's address.
func (u *Underlay) AddHypervisor(n int) *OVS {
	u.t.Helper()
	o := Start(u.t)
	up := fmt.Sprintf("u%d", n)
	if _, err := run("ip", "link", "add", up, "netns", o.NS.Name, "type", "veth", "peer", "name", u.Port(n), "netns", u.NS.Name); err != nil {
		u.t.Fatal(err)
	}
	for _, cmd := range [][]string{{"ip", "link", "set", u.Port(n), "master", "br0"}, {"ip", "link", "set", u.Port(n), "up"}} {
		if _, err := u.NS.Exec(cmd...); err != nil {
			u.t.Fatal(err)
		}
	}
	// The uplink belongs to br-phy; the kernel must not answer ARP on it
	// too, or a remote may learn the uplink's MAC for this hypervisor's
	// address and tunnel to a MAC that br-phy does not terminate.
	if _, err := o.NS.Exec("ip", "link", "set", up, "arp", "off", "up"); err != nil {
		u.t.Fatal(err)
	}
	o.Vsctl("add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev")
	o.Vsctl("add-port", "br-phy", up)
	for _, cmd := range [][]string{{"ip", "addr", "add", u.IP(n) + "/24", "dev", "br-phy"}, {"ip", "link", "set", "br-phy", "up"}} {
		if _, err := o.NS.Exec(cmd...); err != nil {
			u.t.Fatal(err)
		}
	}
	return o
}

// ManagementIP is hypervisor n's address on the management network (see
// AddManagement).
func (u *Underlay) ManagementIP(n int) string { return fmt.Sprintf("172.30.0.%d", n) }

// AddManagement gives hypervisor n, whose OVS is o, a management link: a
// veth straight into the underlay's Linux bridge with ManagementIP(n) on
// it, beside the tunnel uplink but not through br-phy — as a cloud keeps
// its control plane on a management network of its own. Control traffic
// on it (raft, an OVN southbound connection) never waits for the
// hypervisor's userspace ovs-vswitchd, which stops forwarding br-phy
// while it reconfigures (an add-port takes it ~5–10 ms).
func (u *Underlay) AddManagement(o *OVS, n int) string {
	u.t.Helper()
	in, out := fmt.Sprintf("m%d", n), fmt.Sprintf("mp%d", n)
	if _, err := run("ip", "link", "add", in, "netns", o.NS.Name, "type", "veth", "peer", "name", out, "netns", u.NS.Name); err != nil {
		u.t.Fatal(err)
	}
	for _, cmd := range [][]string{{"ip", "link", "set", out, "master", "br0"}, {"ip", "link", "set", out, "up"}} {
		if _, err := u.NS.Exec(cmd...); err != nil {
			u.t.Fatal(err)
		}
	}
	for _, cmd := range [][]string{{"ip", "addr", "add", u.ManagementIP(n) + "/24", "dev", in}, {"ip", "link", "set", in, "up"}} {
		if _, err := o.NS.Exec(cmd...); err != nil {
			u.t.Fatal(err)
		}
	}
	return u.ManagementIP(n)
}

// RestoreAddress puts hypervisor n's address back on br-phy: a restarted
// userspace ovs-vswitchd recreates its internal ports' tap devices bare.
func (u *Underlay) RestoreAddress(o *OVS, n int) {
	u.t.Helper()
	Eventually(u.t, 10*time.Second, "br-phy back", func() bool {
		_, err := o.NS.Exec("ip", "link", "show", "br-phy")
		return err == nil
	})
	_, _ = o.NS.Exec("ip", "addr", "add", u.IP(n)+"/24", "dev", "br-phy")
	if _, err := o.NS.Exec("ip", "link", "set", "br-phy", "up"); err != nil {
		u.t.Fatal(err)
	}
}

// Capture runs tcpdump on the underlay side of hypervisor n's link for
// the given time and returns its lines, link-level headers included (the
// inner Ethernet addresses of tunnelled frames too).
func (u *Underlay) Capture(n int, filter string, d time.Duration) *Capture {
	return capture(u.t, u.NS, u.Port(n), filter, d)
}

// Capture runs tcpdump on the VM's eth0, with link-level headers and IP
// header details (TTL), for the given time.
func (vm *VM) Capture(filter string, d time.Duration) *Capture {
	return capture(vm.t, vm.NetNS, "eth0", filter, d, "-v")
}

// timestamp starts each packet's first line in tcpdump's output.
var timestamp = regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d+ `)

func capture(t testing.TB, ns *NetNS, dev, filter string, d time.Duration, extra ...string) *Capture {
	c := &Capture{t: t, dev: dev, done: make(chan struct{}), started: make(chan struct{})}
	args := append([]string{"timeout", fmt.Sprintf("%.1f", d.Seconds()), "tcpdump", "-i", dev, "-e", "-nn", "-l"}, extra...)
	cmd := ns.Command(append(args, filter)...)
	stderr, err := cmd.StderrPipe()
	go func() {
		defer close(c.done)
		if err != nil {
			c.said = err.Error()
			close(c.started)
			return
		}
		var out strings.Builder
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			c.said = err.Error()
			close(c.started)
			return
		}
		// tcpdump says "listening on" once it captures.
		buf := make([]byte, 4096)
		var said strings.Builder
		for !strings.Contains(said.String(), "listening on") {
			k, err := stderr.Read(buf)
			said.Write(buf[:k])
			if err != nil {
				break
			}
		}
		c.listened, c.said = strings.Contains(said.String(), "listening on"), said.String()
		close(c.started)
		go func() { _, _ = io.Copy(io.Discard, stderr) }()
		_ = cmd.Wait()
		// tcpdump prints an encapsulated frame on a line of its own
		// after its outer header (and -v a packet's details on further
		// lines): fold them into one line per packet.
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if len(c.lines) > 0 && !timestamp.MatchString(l) {
				c.lines[len(c.lines)-1] += " | " + l
				continue
			}
			c.lines = append(c.lines, l)
		}
	}()
	return c
}

// Capture is a running tcpdump.
type Capture struct {
	t             testing.TB
	dev           string
	done, started chan struct{}
	listened      bool   // tcpdump said it was capturing
	said          string // what it said on stderr before that, or why it did not start
	lines         []string
}

// Started waits until tcpdump is capturing.
func (c *Capture) Started() *Capture {
	<-c.started
	return c
}

// Lines waits for the capture to end and returns the lines that contain
// every one of the given strings. A capture that never listened fails the
// test: "nothing was seen" would mean nothing.
func (c *Capture) Lines(contains ...string) []string {
	c.t.Helper()
	<-c.done
	if !c.listened {
		c.t.Errorf("tcpdump on %s never captured: %s", c.dev, strings.TrimSpace(c.said))
	}
	var out []string
next:
	for _, l := range c.lines {
		for _, s := range contains {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}
