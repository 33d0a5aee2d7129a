package l2pop

import (
	"net"
	"net/netip"

	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Port security priorities in the PortSecurity table.
const (
	PriorityAllowed  = 100
	PriorityOpenPort = 10 // port_security_enabled=false
	PrioritySpoofed  = 1  // everything else a secured port sends: dropped and counted
)

// source is an address a port may send from, with the MAC it must use.
type source struct {
	mac    net.HardwareAddr
	prefix netip.Prefix
}

// sources are the fixed IPs (with the port's MAC) and allowed address
// pairs (with theirs) of a port.
func sources(p view.Port) []source {
	out := make([]source, 0, len(p.FixedIPs)+len(p.Pairs))
	for _, f := range p.FixedIPs {
		out = append(out, source{p.MAC, netip.PrefixFrom(f.Addr, 32)})
	}
	for _, ap := range p.Pairs {
		out = append(out, source{ap.MAC, ap.Prefix})
	}
	return out
}

// portSecurity admits what a local port may send: with port security,
// IPv4 and ARP from its own MAC and addresses only; without, everything.
func portSecurity(p view.Port) []of.Flow {
	ck := pipeline.NewCookie(0, pipeline.AppL2Pop, pipeline.PortObject(p.Key))
	admit := []of.Action{of.GotoTable{Table: pipeline.Table(pipeline.ServiceClassifier)}}
	table := pipeline.Table(pipeline.PortSecurity)
	port := of.Match{}.Reg(pipeline.SrcPortKey, uint64(p.Key))
	if !p.PortSecurity {
		return []of.Flow{{Table: table, Priority: PriorityOpenPort, Cookie: ck, Match: port, Actions: admit}}
	}
	out := []of.Flow{{Table: table, Priority: PrioritySpoofed, Cookie: ck, Match: port}}
	// A filtered port's IPv4 goes through its security groups first.
	admitIP := admit
	if p.Filtered() {
		admitIP = []of.Action{of.CT{Zone: pipeline.PortZone(p.Key), Table: pipeline.Table(pipeline.SGEgress)}}
	}
	for _, s := range sources(p) {
		mask := uint64(0xffffffff) << (32 - s.prefix.Bits()) & 0xffffffff
		out = append(out,
			of.Flow{Table: table, Priority: PriorityAllowed, Cookie: ck, Actions: admitIP,
				Match: port.EthSrc(s.mac).EthType(of.EthTypeIPv4).IPv4Src(s.prefix)},
			of.Flow{Table: table, Priority: PriorityAllowed, Cookie: ck, Actions: admit,
				Match: port.EthSrc(s.mac).EthType(of.EthTypeARP).
					WithMasked(of.FieldARPSPA, of.IPv4Value(s.prefix.Addr()), mask).
					With(of.FieldARPSHA, of.MACValue(s.mac))})
	}
	return out
}
