package topology

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// --- rules ------------------------------------------------------------------

// sgProtocols are the protocol names Neutron's rules take, and their
// numbers.
var sgProtocols = map[string]int{"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1, "igmp": 2,
	"ip": 0, "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59,
	"ipv6-opts": 60, "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17,
	"udplite": 136, "vrrp": 112}

// ipv6Protocols are the protocols that exist only over IPv6.
var ipv6Protocols = map[int]bool{41: true, 43: true, 44: true, 58: true, 59: true, 60: true}

// portProtocols are the protocols whose rules take a destination port
// range (Neutron's SG_PORT_PROTO_NUMS).
var portProtocols = map[int]bool{6: true, 17: true, 33: true, 132: true, 136: true}

// ProtocolNumber reads a rule's protocol: a name Neutron knows or a
// number 0..255; -1 for any ("" or "any"). ok is false for anything else.
func ProtocolNumber(p string) (int, bool) {
	p = strings.ToLower(p)
	if p == "" || p == "any" {
		return -1, true
	}
	if n, ok := sgProtocols[p]; ok {
		return n, true
	}
	n, err := strconv.Atoi(p)
	return n, err == nil && n >= 0 && n <= 255
}

// supportedProtocols is Neutron's list, for its error message.
func supportedProtocols() string {
	names := make([]string, 0, len(sgProtocols))
	for n := range sgProtocols {
		names = append(names, "'"+n+"'")
	}
	slices.Sort(names)
	return "[None, 'any', " + strings.Join(names, ", ") + "]"
}

// CreateSecurityGroupRules adds rules to one group, all or none, as
// Neutron's bulk create: every rule of one group and one project.
func (s *Store) CreateSecurityGroupRules(index uint64, specs []SecurityGroupRuleSpec) ([]SecurityGroupRule, error) {
	if len(specs) == 0 {
		return nil, invalid("no security group rules")
	}
	for _, sp := range specs[1:] {
		if sp.SecurityGroupID != specs[0].SecurityGroupID {
			return nil, &Error{Kind: KindInvalid, Type: "SecurityGroupNotSingleGroupRules", Message: "Only allowed to update rules for one security profile at a time"}
		}
		if ruleProject(sp) != ruleProject(specs[0]) {
			return nil, &Error{Kind: KindInvalid, Type: "SecurityGroupRulesNotSingleProject", Message: "Multiple project_ids in bulk security group rule create not allowed"}
		}
	}
	g, ok := s.sgs[specs[0].SecurityGroupID]
	if !ok {
		return nil, sgNotFound(specs[0].SecurityGroupID)
	}
	out := make([]SecurityGroupRule, 0, len(specs))
	keys := map[string]bool{}
	ids := map[string]bool{}
	for i, sp := range specs {
		r, err := s.checkRule(g, sp)
		if err != nil {
			return nil, withItem(err, i, len(specs))
		}
		if _, used := s.sgRules[r.ID]; used || ids[r.ID] {
			return nil, withItem(conflict("SecurityGroupRuleExists", "Security group rule already exists. Rule id is %s.", r.ID), i, len(specs))
		}
		ids[r.ID] = true
		k := ruleKey(r)
		if keys[k] {
			return nil, conflict("DuplicateSecurityGroupRuleInPost", "Duplicate Security Group Rule in POST.")
		}
		keys[k] = true
		for _, o := range g.Rules {
			if ruleKey(o) == k {
				return nil, withItem(conflict("SecurityGroupRuleExists", "Security group rule already exists. Rule id is %s.", o.ID), i, len(specs))
			}
		}
		out = append(out, r)
	}
	if len(out) > 0 {
		if err := s.withinQuotaBy(QuotaSecurityGroupRule, out[0].ProjectID, len(out)); err != nil {
			return nil, err
		}
	}
	rules := slices.Clone(g.Rules)
	for i := range out {
		s.seq.RuleKey++
		out[i].Key = s.seq.RuleKey
		out[i].RevisionNumber = index
		out[i].stamp(s.now)
		rules = append(rules, out[i])
		s.sgRules[out[i].ID] = g.ID
	}
	g.Rules, g.RevisionNumber = rules, index
	g.stamp(s.now)
	for i := range out {
		out[i] = cloneRule(out[i])
	}
	return out, nil
}

// CreateSecurityGroupRule adds one rule to a group.
func (s *Store) CreateSecurityGroupRule(index uint64, sp SecurityGroupRuleSpec) (SecurityGroupRule, error) {
	out, err := s.CreateSecurityGroupRules(index, []SecurityGroupRuleSpec{sp})
	if err != nil {
		return SecurityGroupRule{}, err
	}
	return out[0], nil
}

func ruleProject(sp SecurityGroupRuleSpec) string {
	if sp.ProjectID != "" {
		return sp.ProjectID
	}
	return sp.TenantID
}

// checkRule validates a rule as Neutron does and returns it normalized:
// the ethertype and protocol name spelled as Neutron spells them, a
// protocol number in decimal, a port range covering every port dropped,
// the remote prefix masked to its network.
func (s *Store) checkRule(g *SecurityGroup, sp SecurityGroupRuleSpec) (SecurityGroupRule, error) {
	if sp.ID == "" {
		return SecurityGroupRule{}, invalid("security group rule id is required")
	}
	r := SecurityGroupRule{ID: sp.ID, SecurityGroupID: g.ID, Direction: sp.Direction, Description: sp.Description,
		ProjectID: ruleProject(sp), RemoteGroupID: sp.RemoteGroupID}
	if r.ProjectID == "" {
		r.ProjectID = g.ProjectID
	}
	r.TenantID = r.ProjectID
	switch sp.Direction {
	case DirectionIngress, DirectionEgress:
	case "":
		return r, invalid("Failed to parse request. Required attribute 'direction' not specified")
	default:
		return r, invalid("Invalid input for direction. Reason: '%s' is not in ['ingress', 'egress'].", sp.Direction)
	}
	switch {
	case sp.Ethertype == "" || strings.EqualFold(sp.Ethertype, EthertypeIPv4):
		r.Ethertype = EthertypeIPv4
	default:
		return r, &Error{Kind: KindInvalid, Type: "SecurityGroupRuleInvalidEtherType",
			Message: fmt.Sprintf("Security group rule for ethertype '%s' not supported. Allowed values are ['IPv4'] (Wyvern is IPv4 only).", sp.Ethertype)}
	}
	proto, ok := ProtocolNumber(sp.Protocol)
	if !ok {
		return r, &Error{Kind: KindInvalid, Type: "SecurityGroupRuleInvalidProtocol", Message: fmt.Sprintf(
			"Security group rule protocol %s not supported. Only protocol values %s and integer representations [0 to 255] are supported.",
			sp.Protocol, supportedProtocols())}
	}
	if _, named := sgProtocols[strings.ToLower(sp.Protocol)]; named {
		r.Protocol = strings.ToLower(sp.Protocol)
	} else if proto >= 0 {
		r.Protocol = strconv.Itoa(proto)
	}
	if proto >= 0 && ipv6Protocols[proto] {
		return r, &Error{Kind: KindInvalid, Type: "SecurityGroupEthertypeConflictWithProtocol",
			Message: fmt.Sprintf("Invalid ethertype %s for protocol %s.", r.Ethertype, r.Protocol)}
	}
	min, max, err := checkPortRange(proto, sp.PortRangeMin, sp.PortRangeMax)
	if err != nil {
		return r, err
	}
	r.PortRangeMin, r.PortRangeMax = min, max
	if sp.RemoteIPPrefix != "" {
		pfx, err := parseRemotePrefix(sp.RemoteIPPrefix)
		if err != nil {
			return r, err
		}
		r.RemoteIPPrefix = pfx
	}
	if sp.RemoteIPPrefix != "" && sp.RemoteGroupID != "" {
		return r, &Error{Kind: KindInvalid, Type: "SecurityGroupMultipleRemoteEntites",
			Message: "Only one of remote_ip_prefix or remote_group_id or remote_address_group_id may be provided."}
	}
	if sp.RemoteGroupID != "" {
		rg, ok := s.sgs[sp.RemoteGroupID]
		if !ok || g.ProjectID != "" && rg.ProjectID != g.ProjectID {
			return r, sgNotFound(sp.RemoteGroupID)
		}
	}
	return r, nil
}

// parseRemotePrefix reads a remote_ip_prefix, a CIDR or an address
// (/32), masked to its network as Neutron's normalized_cidr.
func parseRemotePrefix(v string) (string, error) {
	pfx, err := netip.ParsePrefix(v)
	if err != nil {
		a, aerr := netip.ParseAddr(v)
		if aerr != nil {
			return "", &Error{Kind: KindInvalid, Type: "InvalidCIDR", Message: fmt.Sprintf("Invalid CIDR %s given as IP prefix.", v)}
		}
		pfx = netip.PrefixFrom(a, a.BitLen())
	}
	if !pfx.Addr().Is4() || pfx.Addr().Zone() != "" {
		return "", &Error{Kind: KindInvalid, Type: "SecurityGroupRuleParameterConflict",
			Message: fmt.Sprintf("Conflicting value ethertype IPv4 for CIDR %s", v)}
	}
	return pfx.Masked().String(), nil
}

// checkPortRange is Neutron's _validate_port_range, after its
// canonicalization: 1..65535 is no range.
func checkPortRange(proto int, min, max *int) (*int, *int, error) {
	for _, v := range []*int{min, max} {
		if v != nil && (*v < 0 || *v > 65535) {
			return nil, nil, &Error{Kind: KindInvalid, Type: "SecurityGroupInvalidPortValue", Message: fmt.Sprintf("Invalid value for port %d", *v)}
		}
	}
	if min != nil && max != nil && *min == 1 && *max == 65535 {
		return nil, nil, nil
	}
	if min == nil && max == nil {
		return nil, nil, nil
	}
	if proto < 0 {
		return nil, nil, &Error{Kind: KindInvalid, Type: "SecurityGroupProtocolRequiredWithPorts", Message: "Must also specify protocol if port range is given."}
	}
	switch {
	case portProtocols[proto]:
		if min != nil && *min == 0 || max != nil && *max == 0 {
			return nil, nil, &Error{Kind: KindInvalid, Type: "SecurityGroupInvalidPortValue", Message: "Invalid value for port 0"}
		}
		if min == nil || max == nil || *min > *max {
			return nil, nil, &Error{Kind: KindInvalid, Type: "SecurityGroupInvalidPortRange", Message: "For TCP/UDP protocols, port_range_min must be <= port_range_max"}
		}
	case proto == 1:
		for _, f := range []struct {
			v           *int
			field, attr string
		}{{min, "type", "port_range_min"}, {max, "code", "port_range_max"}} {
			if f.v != nil && *f.v > 255 {
				return nil, nil, &Error{Kind: KindInvalid, Type: "SecurityGroupInvalidIcmpValue",
					Message: fmt.Sprintf("Invalid value for ICMP %s (%s) %d. It must be 0 to 255.", f.field, f.attr, *f.v)}
			}
		}
		if min == nil {
			return nil, nil, &Error{Kind: KindInvalid, Type: "SecurityGroupMissingIcmpType",
				Message: fmt.Sprintf("ICMP code (port-range-max) %d is provided but ICMP type (port-range-min) is missing.", *max)}
		}
	default:
		return nil, nil, &Error{Kind: KindInvalid, Type: "SecurityGroupInvalidProtocolForPort",
			Message: fmt.Sprintf("Ports cannot be specified for protocol %d. Ports are only supported for DCCP, SCTP, TCP, UDP, UDPLITE.", proto)}
	}
	return intCopy(min), intCopy(max), nil
}

func intCopy(v *int) *int {
	if v == nil {
		return nil
	}
	c := *v
	return &c
}

// ruleKey is what makes two rules of a group the same rule (Neutron's
// _rule_to_key): a protocol's name and number alike, 0.0.0.0/0 and no
// prefix alike.
func ruleKey(r SecurityGroupRule) string {
	proto, _ := ProtocolNumber(r.Protocol)
	pfx := r.RemoteIPPrefix
	if pfx == "0.0.0.0/0" {
		pfx = ""
	}
	port := func(v *int) string {
		if v == nil {
			return "+"
		}
		return strconv.Itoa(*v)
	}
	return strings.Join([]string{r.SecurityGroupID, r.Direction, r.Ethertype, strconv.Itoa(proto),
		port(r.PortRangeMin), port(r.PortRangeMax), r.RemoteGroupID, pfx}, "|")
}

// DeleteSecurityGroupRule deletes one rule; it returns the rule, whose
// group changed.
func (s *Store) DeleteSecurityGroupRule(index uint64, id string) (SecurityGroupRule, error) {
	g, ok := s.sgs[s.sgRules[id]]
	if !ok {
		return SecurityGroupRule{}, notFound("SecurityGroupRuleNotFound", "Security group rule %s does not exist", id)
	}
	i := slices.IndexFunc(g.Rules, func(r SecurityGroupRule) bool { return r.ID == id })
	r := g.Rules[i]
	g.Rules = slices.Delete(slices.Clone(g.Rules), i, i+1)
	g.RevisionNumber = index
	g.stamp(s.now)
	delete(s.sgRules, id)
	return r, nil
}
