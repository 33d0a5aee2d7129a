package trace

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/internal/apps"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Bridge is one bridge's desired flows and what a walk over them needs:
// the same flows the reconciler installs (the base pipeline's miss flows
// and every app's, in the bridge's cookie round), its ports' names, and
// the pipeline's answer to punts, all from one view.
type Bridge struct {
	Flows   []of.Flow
	Options Options
	view    *view.View
	br      view.Bridge
}

// ForBridge computes a bridge's desired flows from a view, as its loop
// does, in cookie round.
func ForBridge(p *apps.Pipeline, v *view.View, br view.Bridge, round uint16) Bridge {
	flows := pipeline.MissFlows(p.Mode(), round)
	for _, f := range p.Compute(v, br).Flows() {
		flows = append(flows, pipeline.WithRound(f, round))
	}
	ports := map[uint32]Port{}
	for _, lp := range v.LocalPorts(br.Chassis) {
		ports[lp.OFPort] = Port{Name: lp.ID, Kind: PortVM}
	}
	for typ, n := range br.TunnelPorts {
		ports[n] = Port{Name: typ, Kind: PortTunnel}
	}
	for physnet, n := range br.PhysicalPorts {
		ports[n] = Port{Name: physnet, Kind: PortPhysical}
	}
	b := Bridge{Flows: flows, view: v, br: br}
	b.Options = Options{Ports: ports, Object: ObjectNamer(v),
		OnPunt: func(pt app.Punt) app.Answer {
			ans := p.OnPunt(v, br, pt)
			ans.Flows = slices.Clone(ans.Flows) // an app's answer may be shared (app.Memo)
			for i := range ans.Flows {
				ans.Flows[i] = pipeline.WithRound(pipeline.OnDemand(ans.Flows[i]), round)
			}
			return ans
		}}
	return b
}

// ObjectNamer names cookie objects from a view: "port a1", "network A",
// "router R".
func ObjectNamer(v *view.View) func(kind uint64, key uint32) string {
	return func(kind uint64, key uint32) string {
		switch kind {
		case pipeline.KindPort:
			if p, ok := v.PortByKey(key); ok {
				return "port " + p.ID
			}
		case pipeline.KindNetwork:
			if n, ok := v.NetworkByKey(key); ok {
				return "network " + n.ID
			}
		case pipeline.KindRouter:
			if r, ok := v.RouterByKey(key); ok {
				return "router " + r.ID
			}
		}
		return ""
	}
}

// Errors of a trace request; the API maps them to statuses.
var (
	ErrNoSuchPort   = errors.New("trace: no such port")
	ErrNotHere      = errors.New("trace: the port is not plugged into this bridge")
	ErrNoSuchTarget = errors.New("trace: no destination")
	ErrBadRequest   = errors.New("trace: bad request")
	// ErrElsewhere: another node manages the chassis asked about.
	ErrElsewhere = errors.New("trace: another node manages the chassis")
	// ErrUnavailable: the node cannot answer now (no bridge connected,
	// no view yet, OVS unreachable).
	ErrUnavailable = errors.New("trace: unavailable")
)

// Request is a trace as an operator asks for it.
type Request struct {
	From string // the source port's id
	// To is the destination: an IPv4 address, or a MAC.
	To string
	// Proto: "icmp" (default), "tcp" or "udp", to DstPort.
	Proto   string
	DstPort uint16
	// SrcIP, when set, is the source address instead of the port's own
	// (a spoofed one).
	SrcIP string
}

// Packet builds the packet a request describes, leaving the source port
// on the bridge: from the port's MAC and first address to the
// destination's MAC — a port of the same network holding the address, or
// the router's MAC on the source's subnet for an address beyond it.
func (b Bridge) Packet(r Request) (Packet, error) {
	v := b.view
	src, ok := v.Port(r.From)
	if !ok {
		return Packet{}, fmt.Errorf("%w: %q", ErrNoSuchPort, r.From)
	}
	if !src.Located() || src.Chassis != b.br.Chassis {
		where := "nowhere"
		if src.Located() {
			where = "chassis " + src.Chassis
		}
		return Packet{}, fmt.Errorf("%w: port %s is plugged into %s, not %s", ErrNotHere, src.ID, where, b.br.Chassis)
	}
	p := Packet{InPort: src.OFPort, EthSrc: src.MAC, Proto: of.IPProtoICMP}
	if len(src.FixedIPs) > 0 {
		p.IPSrc = src.FixedIPs[0].Addr
	}
	if r.SrcIP != "" {
		a, err := netip.ParseAddr(r.SrcIP)
		if err != nil || !a.Is4() {
			return Packet{}, fmt.Errorf("%w: src_ip %q is not an IPv4 address", ErrBadRequest, r.SrcIP)
		}
		p.IPSrc = a
	}
	switch r.Proto {
	case "", "icmp":
		if r.DstPort != 0 {
			return Packet{}, fmt.Errorf("%w: a port needs tcp or udp", ErrBadRequest)
		}
	case "tcp", "udp":
		if r.DstPort == 0 {
			return Packet{}, fmt.Errorf("%w: %s needs a destination port", ErrBadRequest, r.Proto)
		}
		p.Proto, p.SrcPort, p.DstPort = of.IPProtoTCP, 40000, r.DstPort
		if r.Proto == "udp" {
			p.Proto = of.IPProtoUDP
		}
	default:
		return Packet{}, fmt.Errorf("%w: protocol %q: want icmp, tcp or udp", ErrBadRequest, r.Proto)
	}
	net_, _ := v.Network(src.NetworkID)
	if mac, err := net.ParseMAC(r.To); err == nil {
		p.EthDst = mac
		if q, ok := v.PortWithMAC(net_.ID, mac); ok && len(q.FixedIPs) > 0 {
			p.IPDst = q.FixedIPs[0].Addr
		} else {
			return Packet{}, fmt.Errorf("%w: no port of network %s has MAC %s (give its IP instead)", ErrNoSuchTarget, net_.ID, mac)
		}
		return p, nil
	}
	ip, err := netip.ParseAddr(r.To)
	if err != nil || !ip.Is4() {
		return Packet{}, fmt.Errorf("%w: destination %q is neither an IPv4 address nor a MAC", ErrBadRequest, r.To)
	}
	p.IPDst = ip
	for _, k := range v.AddressClaims(net_.ID, ip) {
		if q, ok := v.PortByKey(k); ok {
			p.EthDst = q.MAC
			return p, nil
		}
	}
	var onLink netip.Prefix
	if len(src.FixedIPs) > 0 {
		if sn, ok := v.Subnet(src.FixedIPs[0].SubnetID); ok {
			onLink = sn.Prefix
		}
	}
	for _, ri := range v.NetworkInterfaces(net_.ID) {
		if ri.IP == ip || !onLink.Contains(ip) && ri.Prefix == onLink {
			p.EthDst = ri.MAC // routed: to the router's MAC on the source's subnet
			return p, nil
		}
	}
	if onLink.Contains(ip) {
		return Packet{}, fmt.Errorf("%w: no port of network %s holds %s", ErrNoSuchTarget, net_.ID, ip)
	}
	return Packet{}, fmt.Errorf("%w: %s is beyond subnet %s of port %s, and no router serves it", ErrNoSuchTarget, ip, onLink, src.ID)
}

// Walk traces a packet through the bridge's flows.
func (b Bridge) Walk(p Packet) Result { return Walk(b.Flows, p, b.Options) }
