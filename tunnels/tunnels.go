// Package tunnels is the app that classifies traffic entering an
// integration bridge and steers traffic for remote ports into GRE and
// VXLAN tunnels. It is pure: a topology view and the facts of one bridge
// in, flows out.
//
// Tables it owns: Classifier and Egress.
//
//	Classifier  in_port=<VM>                  → reg6=port key, metadata=network key, PortSecurity
//	            in_port=<tunnel>,tun_id=<seg> → FromTunnel=1, metadata=network key, L2Lookup
//	Egress      reg7=<local port>             → Delivery
//	            reg7=<remote port>,FromTunnel=0 → tun_dst=<chassis encap_ip>, tun_id=<seg>, out <tunnel>
//
// One flow-based tunnel port per encapsulation serves every remote
// chassis: the flow sets tun_dst, so adding a chassis adds flows, not ports.
package tunnels

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Priorities of the app's flows.
const (
	PriorityPort   = 100
	PriorityTunnel = 100
)

// Flows returns the app's flows for one bridge.
func Flows(v *topology.View, br topology.Bridge) []of.Flow {
	var out []of.Flow
	classifier := pipeline.Table(pipeline.Classifier)
	for _, p := range v.LocalPorts(br.Chassis) {
		n, _ := v.Network(p.NetworkID)
		out = append(out, of.Flow{
			Table: classifier, Priority: PriorityPort,
			Cookie: pipeline.NewCookie(0, pipeline.AppTunnels, pipeline.PortObject(p.Key)),
			Match:  of.Match{}.InPort(p.OFPort),
			Actions: []of.Action{
				of.SetReg(pipeline.SrcPortKey, uint64(p.Key)),
				of.WriteMetadata{Value: uint64(n.Key)},
				of.GotoTable{Table: pipeline.Table(pipeline.PortSecurity)},
			},
		})
	}
	for _, n := range v.HostedNetworks(br.Chassis) {
		// Without a tunnel port of the network's type the bridge still
		// switches locally; it just carries the network to nobody.
		if tun, ok := br.TunnelPorts[n.NetworkType]; ok {
			out = append(out, of.Flow{
				Table: classifier, Priority: PriorityTunnel,
				Cookie: pipeline.NewCookie(0, pipeline.AppTunnels, pipeline.NetworkObject(n.Key)),
				Match:  of.Match{}.InPort(tun).TunID(uint64(n.SegmentationID)),
				Actions: []of.Action{
					of.SetReg(pipeline.FromTunnel, 1),
					of.WriteMetadata{Value: uint64(n.Key)},
					of.GotoTable{Table: pipeline.Table(pipeline.L2Lookup)},
				},
			})
		}
		for _, p := range v.NetworkPorts(n.ID) {
			if f, ok := Egress(v, br, n, p); ok {
				out = append(out, f)
			}
		}
	}
	return out
}

// Egress is the flow that sends a packet for port p of network n on its
// way: to Delivery when p is local, into the tunnel to p's chassis when
// not. ok is false when no tunnel reaches p's chassis.
func Egress(v *topology.View, br topology.Bridge, n topology.Network, p topology.Port) (of.Flow, bool) {
	egress := pipeline.Table(pipeline.Egress)
	ck := pipeline.NewCookie(0, pipeline.AppTunnels, pipeline.PortObject(p.Key))
	if p.HostID == br.Chassis {
		return of.Flow{Table: egress, Priority: PriorityPort, Cookie: ck,
			Match:   of.Match{}.Reg(pipeline.DstPortKey, uint64(p.Key)),
			Actions: []of.Action{of.GotoTable{Table: pipeline.Table(pipeline.Delivery)}}}, true
	}
	steer, ok := Steer(v, br, n, p.HostID)
	if !ok {
		return of.Flow{}, false
	}
	// Never send what came from a tunnel back into one.
	return of.Flow{Table: egress, Priority: PriorityPort, Cookie: ck,
		Match:   of.Match{}.Reg(pipeline.DstPortKey, uint64(p.Key)).Reg(pipeline.FromTunnel, 0),
		Actions: steer}, true
}

// Steer returns the actions that send a packet of network n to a remote
// chassis: tunnel destination, key, and the tunnel port of the network's
// encapsulation. ok is false when either end lacks the encapsulation.
func Steer(v *topology.View, br topology.Bridge, n topology.Network, chassis string) ([]of.Action, bool) {
	tun, ok := br.TunnelPorts[n.NetworkType]
	if !ok {
		return nil, false
	}
	c, ok := v.Chassis(chassis)
	if !ok || !c.HasEncap(n.NetworkType) {
		return nil, false
	}
	ip, err := netip.ParseAddr(c.EncapIP)
	if err != nil || !ip.Is4() {
		return nil, false
	}
	return []of.Action{
		of.SetField{Field: of.FieldTunDst, Value: of.IPv4Value(ip)},
		of.SetField{Field: of.FieldTunID, Value: uint64(n.SegmentationID)},
		of.Output{Port: tun},
	}, true
}

// Probe is a packet-out that makes the bridge resolve the underlay next
// hop of one remote chassis before the first real packet needs it.
type Probe struct {
	Remote  netip.Addr
	Actions []of.Action
}

// Probes returns one probe per remote chassis the bridge tunnels to (it
// shares a network with it, or routes to one of its networks), sorted by
// address. A userspace datapath
// tunnels natively: with no neighbour entry for the remote it sends an ARP
// and drops the packet that needed it, so without probes the first packet
// to a chassis just seen would be lost. The probe carries tunnel key 0,
// which no network uses (segmentation ids start at 1): the remote's
// Classifier drops it.
func Probes(v *topology.View, br topology.Bridge) []Probe {
	seen := map[netip.Addr]bool{}
	var out []Probe
	for _, n := range reachable(v, br.Chassis) {
		for _, host := range v.NetworkHosts(n.ID) {
			if host == br.Chassis {
				continue
			}
			steer, ok := Steer(v, br, n, host)
			if !ok {
				continue
			}
			c, _ := v.Chassis(host)
			ip, _ := netip.ParseAddr(c.EncapIP) // Steer checked it
			if seen[ip] {
				continue
			}
			seen[ip] = true
			steer[1] = of.SetField{Field: of.FieldTunID, Value: 0}
			out = append(out, Probe{Remote: ip, Actions: steer})
		}
	}
	slices.SortFunc(out, func(a, b Probe) int { return a.Remote.Compare(b.Remote) })
	return out
}

// reachable are the networks a chassis sends into: those it hosts, and
// those its routers route to (a router with an interface on a hosted
// network reaches all of its networks). In network key order, each once.
func reachable(v *topology.View, chassis string) []topology.Network {
	out := append([]topology.Network{}, v.HostedNetworks(chassis)...)
	seen := map[string]bool{}
	for _, n := range out {
		seen[n.ID] = true
	}
	for _, r := range v.ChassisRouters(chassis) {
		for _, ri := range v.RouterInterfaces(r.ID) {
			if !seen[ri.Network.ID] {
				seen[ri.Network.ID] = true
				out = append(out, ri.Network)
			}
		}
	}
	slices.SortFunc(out, func(a, b topology.Network) int { return cmp.Compare(a.Key, b.Key) })
	return out
}
