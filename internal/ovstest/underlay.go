package ovstest

import (
	"fmt"
	"testing"
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
	if _, err := o.NS.Exec("ip", "link", "set", up, "up"); err != nil {
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
