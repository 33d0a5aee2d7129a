package view

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// SecurityGroup is a group of filtered ports and its rules.
type SecurityGroup struct {
	ID    string
	Key   uint32
	Rules []SGRule
}

// SGRule is one rule, typed: a direction, a protocol and its ports (or
// ICMP type and code), and whom it admits — a prefix, a remote group's
// members, or anyone.
type SGRule struct {
	Key     uint32
	Group   string
	Ingress bool
	// Proto is the IP protocol; AnyProto when the rule names none.
	Proto int
	// PortMin..PortMax: TCP/UDP/SCTP destination ports (0, 0: any). For
	// ICMP, ICMPType and ICMPCode, -1 for any.
	PortMin, PortMax   int
	ICMPType, ICMPCode int
	// Remote: a prefix (invalid: anyone, or RemoteGroup's members).
	Remote      netip.Prefix
	RemoteGroup string
}

// AnyProto is SGRule.Proto of a rule for any protocol.
const AnyProto = -1

// buildSecurityGroups types the store's groups.
func (v *View) buildSecurityGroups(s *topology.Store) {
	v.sgs = map[string]SecurityGroup{}
	s.EachSecurityGroup(func(g topology.SecurityGroup) {
		tg := SecurityGroup{ID: g.ID, Key: g.Key}
		for _, r := range g.Rules {
			if r.Ethertype != "" && r.Ethertype != "IPv4" {
				continue
			}
			proto, ok := topology.ProtocolNumber(r.Protocol)
			if !ok {
				continue
			}
			if proto == 0 { // "ip", 0: any, as Neutron's firewall reads it
				proto = AnyProto
			}
			tr := SGRule{Key: r.Key, Group: g.ID, Ingress: r.Direction == topology.DirectionIngress, Proto: proto,
				ICMPType: -1, ICMPCode: -1, RemoteGroup: r.RemoteGroupID}
			switch proto {
			case 1: // icmp
				if r.PortRangeMin != nil {
					tr.ICMPType = *r.PortRangeMin
				}
				if r.PortRangeMax != nil {
					tr.ICMPCode = *r.PortRangeMax
				}
			case 6, 17, 33, 132, 136:
				if r.PortRangeMin != nil {
					tr.PortMin, tr.PortMax = *r.PortRangeMin, *r.PortRangeMin
					if r.PortRangeMax != nil {
						tr.PortMax = *r.PortRangeMax
					}
				}
			}
			if r.RemoteIPPrefix != "" {
				p, err := netip.ParsePrefix(r.RemoteIPPrefix)
				if err != nil || !p.Addr().Is4() {
					continue
				}
				tr.Remote = p.Masked()
			}
			tg.Rules = append(tg.Rules, tr)
		}
		slices.SortFunc(tg.Rules, func(a, b SGRule) int { return cmp.Compare(a.Key, b.Key) })
		v.sgs[g.ID] = tg
	})
}

// SecurityGroup returns a group by id.
func (v *View) SecurityGroup(id string) (SecurityGroup, bool) {
	g, ok := v.sgs[id]
	return g, ok
}

// Filtered reports whether a port's traffic goes through its security
// groups: port security on, at least one group, and not a port the
// topology made itself (a router's, a floating IP's).
func (p Port) Filtered() bool {
	return p.PortSecurity && len(p.SecurityGroups) > 0 && p.DeviceOwner != topology.OwnerRouterInterface &&
		p.DeviceOwner != topology.OwnerRouterGateway && p.DeviceOwner != topology.OwnerFloatingIP
}

// PortGroups are the security groups of a port that exist, in the order
// the port names them.
func (v *View) PortGroups(p Port) []SecurityGroup {
	out := make([]SecurityGroup, 0, len(p.SecurityGroups))
	for _, id := range p.SecurityGroups {
		if g, ok := v.sgs[id]; ok {
			out = append(out, g)
		}
	}
	return out
}

// GroupAddresses are the addresses of a group's members, sorted, each
// once: every port holding it, plugged or not — its fixed IPs (/32) and
// its allowed address pairs (a single address, or a CIDR as it is).
func (v *View) GroupAddresses(group string) []netip.Prefix {
	seen := map[netip.Prefix]bool{}
	var out []netip.Prefix
	add := func(p netip.Prefix) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	v.ports.each(func(p *Port) {
		if !slices.Contains(p.SecurityGroups, group) {
			return
		}
		for _, f := range p.FixedIPs {
			add(netip.PrefixFrom(f.Addr, 32))
		}
		for _, pr := range p.Pairs {
			add(pr.Prefix)
		}
	})
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out
}
