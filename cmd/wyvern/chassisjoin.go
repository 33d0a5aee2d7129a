package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// chassisJoin is the thin agent of central mode: run once on a chassis no
// Wyvern node runs on, it sets up the local OVS as the members' programs
// expect it — the integration bridge (fail_mode=secure, OpenFlow 1.3 and
// 1.5, every member's OpenFlow address as a controller) and one flow-based
// tunnel port per encapsulation, named as the agent names them — and
// registers the chassis with its datapath id. It asks the cluster for the
// members' OpenFlow addresses (GET /v2.0/cluster), so the bridge lists each.
// Run again, it changes nothing that is right, and the registration is
// the same again.
// It writes nothing but the bridge, its tunnel ports and its controllers:
// the VMs are bound by their bridge's master, from the taps' names.
type chassisJoin struct {
	name, encapIP, bridge, datapathType, vsctl, db string
	encaps                                         []string
	mappings                                       []string
	gateway                                        bool
	wait                                           time.Duration
}

func chassisJoinCmd(c *client, p *printer) *cobra.Command {
	j := &chassisJoin{}
	cmd := &cobra.Command{Use: "join NAME --encap-ip IP", Short: "Set up this host's OVS for the cluster and register it as a chassis (central mode; admin)",
		Long: `Set up this host's OVS for the cluster and register it as chassis NAME: central
mode, a chassis no Wyvern node runs on (docs/operations.md, "Central mode").

It creates (or corrects) the integration bridge — fail_mode=secure, OpenFlow 1.3
and 1.5, every member's OpenFlow address (from GET /v2.0/cluster) as a
controller — and a flow-based tunnel port per encapsulation (wyv-vxlan,
wyv-gre), then registers the chassis with the bridge's datapath id. The
bridge's master then programs it and binds the VMs plugged there by the names
Nova gives their taps. Run it again at will: what is already right stays, and
the chassis keeps its key and DVR MAC. A datapath registered as another
chassis, or a chassis a member node runs, is refused (409).`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			j.name = args[0]
			return j.run(c, p)
		}}
	f := cmd.Flags()
	f.StringVar(&j.encapIP, "encap-ip", "", "this chassis' tunnel endpoint address (required)")
	f.StringVar(&j.bridge, "bridge", "br-int", "the integration bridge")
	f.StringVar(&j.datapathType, "datapath-type", "system", "the bridge's datapath: system or netdev")
	f.StringSliceVar(&j.encaps, "encap", []string{"vxlan", "gre"}, "encapsulations (vxlan, gre)")
	f.StringSliceVar(&j.mappings, "bridge-mapping", nil, "PHYSNET:BRIDGE, a physical network's bridge here, registered (repeatable; the patch ports to it are made by hand: docs/operations.md)")
	f.BoolVar(&j.gateway, "gateway", false, "this chassis may host routers' SNAT")
	f.StringVar(&j.vsctl, "ovs-vsctl", "ovs-vsctl", "the ovs-vsctl to run")
	f.StringVar(&j.db, "ovsdb", "", "ovsdb-server to talk to (ovs-vsctl's --db; default its own)")
	f.DurationVar(&j.wait, "wait", 30*time.Second, "how long to wait for the bridge's master to connect (0: do not wait)")
	_ = cmd.MarkFlagRequired("encap-ip")
	return cmd
}

// bridgeName is what ovs-vsctl takes as a bridge: no option, no
// separator, nothing a shell or OVSDB would read otherwise.
func bridgeName(s string) bool {
	if s == "" || len(s) > 15 || strings.HasPrefix(s, "-") {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) < 0
}

// check refuses what the bridge or the registration would refuse, before
// anything is changed.
func (j *chassisJoin) check() (map[string]string, error) {
	if _, err := netip.ParseAddr(j.encapIP); err != nil {
		return nil, fmt.Errorf("--encap-ip %q: not an IP address", j.encapIP)
	}
	if !bridgeName(j.bridge) {
		return nil, fmt.Errorf("--bridge %q: not a bridge name (up to 15 letters, digits, '-', '_', '.')", j.bridge)
	}
	if j.datapathType != "system" && j.datapathType != "netdev" {
		return nil, fmt.Errorf("--datapath-type %q: want system or netdev", j.datapathType)
	}
	if len(j.encaps) == 0 {
		return nil, errors.New("--encap: at least one of vxlan, gre")
	}
	for _, e := range j.encaps {
		if e != "vxlan" && e != "gre" {
			return nil, fmt.Errorf("--encap %q: want vxlan or gre", e)
		}
	}
	mappings := map[string]string{}
	for _, m := range j.mappings {
		phys, br, ok := strings.Cut(m, ":")
		if !ok || phys == "" || !bridgeName(br) {
			return nil, fmt.Errorf("--bridge-mapping %q: want PHYSNET:BRIDGE", m)
		}
		mappings[phys] = br
	}
	return mappings, nil
}

func (j *chassisJoin) run(c *client, p *printer) error {
	mappings, err := j.check()
	if err != nil {
		return err
	}
	targets, err := openFlowTargets(c)
	if err != nil {
		return err
	}
	// The bridge and its settings, the controllers and the tunnel ports,
	// in one transaction: --may-exist keeps what is there, set corrects it.
	args := []string{"--may-exist", "add-br", j.bridge, "--", "set", "bridge", j.bridge,
		"datapath_type=" + j.datapathType, "fail_mode=secure", "protocols=OpenFlow13,OpenFlow15",
		"--", "set-controller", j.bridge}
	args = append(args, targets...)
	for _, e := range j.encaps {
		port := "wyv-" + e
		args = append(args, "--", "--may-exist", "add-port", j.bridge, port,
			"--", "set", "interface", port, "type="+e, "options:remote_ip=flow", "options:key=flow")
	}
	if _, err := j.ovs(args...); err != nil {
		return err
	}
	out, err := j.ovs("get", "bridge", j.bridge, "datapath_id")
	if err != nil {
		return err
	}
	dpid := strings.Trim(strings.TrimSpace(out), `"`)
	p.say("bridge %s (datapath %s): fail_mode=secure, controllers %s, tunnels %s\n", j.bridge, dpid,
		strings.Join(targets, " "), strings.Join(j.encaps, ","))

	reg := map[string]any{"name": j.name, "encap_ip": j.encapIP, "encaps": j.encaps, "datapath_id": dpid,
		"bridge": j.bridge, "datapath_type": j.datapathType, "gateway": j.gateway}
	if len(mappings) > 0 {
		reg["bridge_mappings"] = mappings
	}
	// A registration is an update when the chassis is there already (its
	// key and DVR MAC kept): a second run registers the same again.
	if _, err := c.do("POST", "/v2.0/chassis", map[string]any{"chassis": reg}); err != nil {
		return fmt.Errorf("registering chassis %s: %w", j.name, err)
	}
	p.say("registered chassis %s\n", j.name)
	if j.wait <= 0 {
		return nil
	}
	// The bridge's master has it when OVS says one controller is master.
	deadline := time.Now().Add(j.wait)
	for {
		out, err := j.ovs("--format=csv", "--no-headings", "--columns=target,role,is_connected", "list", "controller")
		if err == nil {
			if master := masterOf(out, targets); master != "" {
				p.say("its master: %s\n", master)
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chassis %s registered, but no member became its bridge's master within %s (ovs-vsctl list controller)", j.name, j.wait)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// masterOf is the target ovs-vsctl's controller listing (csv: target,
// role, is_connected) shows connected as master, among targets.
func masterOf(csv string, targets []string) string {
	for _, line := range strings.Split(strings.TrimSpace(csv), "\n") {
		f := strings.Split(line, ",")
		if len(f) == 3 && f[1] == "master" && f[2] == "true" && slices.Contains(targets, strings.Trim(f[0], `"`)) {
			return strings.Trim(f[0], `"`)
		}
	}
	return ""
}

// openFlowTargets are the members' OpenFlow addresses, as GET
// /v2.0/cluster lists them, sorted: every member's, for any may become the
// bridge's master. A member whose address another host cannot reach (none,
// a unix socket, loopback: --openflow-addr's default) is an error.
func openFlowTargets(c *client) ([]string, error) {
	cl, err := c.cluster()
	if err != nil {
		return nil, err
	}
	members, _ := cl["members"].([]any)
	var targets, unreachable []string
	for _, m := range members {
		mm, _ := m.(map[string]any)
		id, _ := mm["id"].(string)
		addr, _ := mm["openflow_address"].(string)
		if routable(addr) {
			targets = append(targets, addr)
		} else {
			unreachable = append(unreachable, fmt.Sprintf("%s (%q)", id, addr))
		}
	}
	if len(members) == 0 {
		return nil, errors.New("GET /v2.0/cluster lists no member")
	}
	if len(unreachable) > 0 {
		return nil, fmt.Errorf("members %s have no OpenFlow address another host can reach: start each with --openflow-addr tcp:IP:6653 (or ssl:) on an address this host reaches",
			strings.Join(unreachable, ", "))
	}
	slices.Sort(targets)
	return targets, nil
}

// routable says whether an OpenFlow target is one another host can
// connect to: tcp: or ssl: on an address that is not loopback.
func routable(target string) bool {
	network, hostport, ok := strings.Cut(target, ":")
	if !ok || network != "tcp" && network != "ssl" {
		return false
	}
	host := hostport
	if i := strings.LastIndex(hostport, ":"); i >= 0 {
		host = strings.Trim(hostport[:i], "[]")
	}
	if host == "localhost" {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err != nil || !a.IsLoopback() && !a.IsUnspecified() // a name: taken as given
}

// ovs runs ovs-vsctl.
func (j *chassisJoin) ovs(args ...string) (string, error) {
	if j.db != "" {
		args = append([]string{"--db=" + j.db}, args...)
	}
	out, err := exec.Command(j.vsctl, append([]string{"--timeout=10"}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ovs-vsctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
