package l2pop

import (
	"net"
	"net/netip"
	"strings"

	"github.com/wyvern-sdn/wyvern/internal/topology"
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
func sources(p topology.Port) []source {
	var out []source
	mac, err := net.ParseMAC(p.MACAddress)
	if err != nil {
		return nil
	}
	for _, f := range p.FixedIPs {
		if ip, err := netip.ParseAddr(f.IPAddress); err == nil && ip.Is4() {
			out = append(out, source{mac, netip.PrefixFrom(ip, 32)})
		}
	}
	for _, ap := range p.AllowedAddressPairs {
		m, err := net.ParseMAC(ap.MACAddress)
		if err != nil {
			m = mac
		}
		var pfx netip.Prefix
		if strings.Contains(ap.IPAddress, "/") {
			pfx, err = netip.ParsePrefix(ap.IPAddress)
		} else {
			var ip netip.Addr
			ip, err = netip.ParseAddr(ap.IPAddress)
			pfx = netip.PrefixFrom(ip, 32)
		}
		if err == nil && pfx.Addr().Is4() {
			out = append(out, source{m, pfx.Masked()})
		}
	}
	return out
}

// portSecurity admits what a local port may send: with port security,
// IPv4 and ARP from its own MAC and addresses only; without, everything.
func portSecurity(p topology.Port) []of.Flow {
	ck := pipeline.NewCookie(0, pipeline.AppL2Pop, pipeline.PortObject(p.Key))
	admit := []of.Action{of.GotoTable{Table: pipeline.Table(pipeline.ServiceClassifier)}}
	table := pipeline.Table(pipeline.PortSecurity)
	port := of.Match{}.Reg(pipeline.SrcPortKey, uint64(p.Key))
	if !p.PortSecurityEnabled {
		return []of.Flow{{Table: table, Priority: PriorityOpenPort, Cookie: ck, Match: port, Actions: admit}}
	}
	out := []of.Flow{{Table: table, Priority: PrioritySpoofed, Cookie: ck, Match: port}}
	for _, s := range sources(p) {
		mask := uint64(0xffffffff) << (32 - s.prefix.Bits()) & 0xffffffff
		out = append(out,
			of.Flow{Table: table, Priority: PriorityAllowed, Cookie: ck, Actions: admit,
				Match: port.EthSrc(s.mac).EthType(of.EthTypeIPv4).IPv4Src(s.prefix)},
			of.Flow{Table: table, Priority: PriorityAllowed, Cookie: ck, Actions: admit,
				Match: port.EthSrc(s.mac).EthType(of.EthTypeARP).
					WithMasked(of.FieldARPSPA, of.IPv4Value(s.prefix.Addr()), mask).
					With(of.FieldARPSHA, of.MACValue(s.mac))})
	}
	return out
}
