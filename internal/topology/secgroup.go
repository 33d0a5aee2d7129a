package topology

import (
	"crypto/sha1"
	"encoding/hex"
	"slices"
	"strings"
)

// --- security groups ------------------------------------------------------

// SecurityGroupSpec is a security group create or update; nil fields are
// absent.
type SecurityGroupSpec struct {
	ID          string
	Name        *string
	Description *string
	ProjectID   *string
	TenantID    *string
	Tags        []string
	Stateful    *bool
	// EgressRuleID is the id of the rule every new group starts with
	// (egress, IPv4, any protocol, anywhere), chosen by the caller.
	EgressRuleID string
	// Default asks for the default group of ProjectID (or TenantID):
	// created, with ids derived from the project, unless the project has
	// it already. The other fields are not read.
	Default bool
}

// SecurityGroupRuleSpec is a rule create; rules are not updated.
type SecurityGroupRuleSpec struct {
	ID              string
	SecurityGroupID string
	Direction       string // ingress or egress
	Ethertype       string // IPv4; "" is IPv4
	// Protocol: a name Neutron knows (tcp, udp, icmp, ...), a number
	// 0..255 as text, or "" / "any" for any.
	Protocol     string
	PortRangeMin *int
	PortRangeMax *int
	// RemoteIPPrefix and RemoteGroupID: at most one; "" for none.
	RemoteIPPrefix string
	RemoteGroupID  string
	Description    string
	// ProjectID (or TenantID): "" is the group's project.
	ProjectID string
	TenantID  string
}

// EthertypeIPv4 is the one ethertype Wyvern's rules take.
const EthertypeIPv4 = "IPv4"

// DefaultSecurityGroupDescription is the description of every project's
// default group, as Neutron writes it.
const DefaultSecurityGroupDescription = "Default security group"

// DefaultSecurityGroupID is the id of a project's default group: a
// name-based UUID (SHA-1, version 5) of the project, so that every
// replica, and a request that asks for it before it exists, names the
// same group.
func DefaultSecurityGroupID(project string) string {
	return nameUUID("wyvern-default-sg:" + project)
}

// defaultRuleIDs are the ids of a project's default group's two rules.
func defaultRuleIDs(project string) (egress, ingress string) {
	return nameUUID("wyvern-default-sg:" + project + ":egress-ipv4"), nameUUID("wyvern-default-sg:" + project + ":ingress-ipv4")
}

// uuidNamespace is RFC 4122's URL namespace, under which Wyvern's
// derived ids are named.
var uuidNamespace = [16]byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}

// nameUUID is the version 5 UUID of a name.
// Every port create asks for its project's default group by this id, on
// every replica: it is built without fmt or a heap-allocated hash.
func nameUUID(name string) string {
	var in [128]byte
	data := append(append(in[:0], uuidNamespace[:]...), name...)
	sum := sha1.Sum(data)
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:])
}

// SecurityGroups returns every security group with its rules, in id
// order.
func (s *Store) SecurityGroups() []SecurityGroup {
	out := make([]SecurityGroup, 0, len(s.sgs))
	for _, id := range sortedKeys(s.sgs) {
		out = append(out, sgOut(s.sgs[id]))
	}
	return out
}

// SecurityGroup returns one security group with its rules.
func (s *Store) SecurityGroup(id string) (SecurityGroup, bool) {
	g, ok := s.sgs[id]
	if !ok {
		return SecurityGroup{}, false
	}
	return sgOut(g), true
}

// DefaultSecurityGroup returns a project's default group, if it has one.
func (s *Store) DefaultSecurityGroup(project string) (SecurityGroup, bool) {
	g := s.defaultGroup(project)
	if g == nil {
		return SecurityGroup{}, false
	}
	return sgOut(g), true
}

// HasDefaultSecurityGroup reports whether a project has its default
// group, without copying it out.
func (s *Store) HasDefaultSecurityGroup(project string) bool { return s.defaultGroup(project) != nil }

func (s *Store) defaultGroup(project string) *SecurityGroup {
	g, ok := s.sgs[DefaultSecurityGroupID(project)]
	if !ok || !isDefaultGroup(g) || g.ProjectID != project {
		return nil
	}
	return g
}

// SecurityGroupRules returns every rule of every group, in id order.
func (s *Store) SecurityGroupRules() []SecurityGroupRule {
	out := make([]SecurityGroupRule, 0, len(s.sgRules))
	for _, id := range sortedKeys(s.sgRules) {
		r, _ := s.SecurityGroupRule(id)
		out = append(out, r)
	}
	return out
}

// SecurityGroupRule returns one rule.
func (s *Store) SecurityGroupRule(id string) (SecurityGroupRule, bool) {
	g, ok := s.sgs[s.sgRules[id]]
	if !ok {
		return SecurityGroupRule{}, false
	}
	for _, r := range g.Rules {
		if r.ID == id {
			return cloneRule(r), true
		}
	}
	return SecurityGroupRule{}, false
}

// EachSecurityGroup calls fn with every security group, its rules
// included, in id order; fn must not keep the slices it is handed.
func (s *Store) EachSecurityGroup(fn func(SecurityGroup)) {
	for _, id := range sortedKeys(s.sgs) {
		fn(*s.sgs[id])
	}
}

// SecurityGroupPorts returns the ids of the ports holding a group, in id
// order.
func (s *Store) SecurityGroupPorts(id string) []string {
	var out []string
	for _, pid := range sortedKeys(s.ports) {
		if slices.Contains(s.ports[pid].SecurityGroups, id) {
			out = append(out, pid)
		}
	}
	return out
}

func sgOut(g *SecurityGroup) SecurityGroup {
	out := *g
	out.Tags = slices.Clone(g.Tags)
	if out.Tags == nil {
		out.Tags = []string{}
	}
	out.Rules = make([]SecurityGroupRule, len(g.Rules))
	for i, r := range g.Rules {
		out.Rules[i] = cloneRule(r)
	}
	return out
}

func cloneRule(r SecurityGroupRule) SecurityGroupRule {
	if r.PortRangeMin != nil {
		v := *r.PortRangeMin
		r.PortRangeMin = &v
	}
	if r.PortRangeMax != nil {
		v := *r.PortRangeMax
		r.PortRangeMax = &v
	}
	return r
}

func isDefaultGroup(g *SecurityGroup) bool { return g.Name == DefaultSecurityGroupName }

// specProject is the project a spec names: project_id, else tenant_id.
func specProject(project, tenant *string) string {
	switch {
	case project != nil:
		return *project
	case tenant != nil:
		return *tenant
	}
	return ""
}

// CreateSecurityGroups creates security groups, all or none. Each starts
// with one rule, egress IPv4 anywhere (Neutron's IPv6 one has no place in
// an IPv4 cloud). A group of a project that has no default group yet
// creates that first, as Neutron does; a spec with Default asks for the
// default group alone.
func (s *Store) CreateSecurityGroups(index uint64, specs []SecurityGroupSpec) ([]SecurityGroup, error) {
	saved := s.seq.clone()
	var made []string
	out := make([]SecurityGroup, 0, len(specs))
	for i, sp := range specs {
		g, created, err := s.createSecurityGroup(index, sp)
		made = append(made, created...)
		if err != nil {
			for _, id := range made {
				s.removeSecurityGroup(id)
			}
			s.seq = saved
			return nil, withItem(err, i, len(specs))
		}
		out = append(out, g)
	}
	return out, nil
}

// CreateSecurityGroup creates one security group.
func (s *Store) CreateSecurityGroup(index uint64, sp SecurityGroupSpec) (SecurityGroup, error) {
	out, err := s.CreateSecurityGroups(index, []SecurityGroupSpec{sp})
	if err != nil {
		return SecurityGroup{}, err
	}
	return out[0], nil
}

// createSecurityGroup creates one group, and the default group of its
// project if that is missing; it returns the ids it created. On an error
// it has created nothing.
func (s *Store) createSecurityGroup(index uint64, sp SecurityGroupSpec) (SecurityGroup, []string, error) {
	project := specProject(sp.ProjectID, sp.TenantID)
	if sp.Default {
		g, created, err := s.EnsureDefaultSecurityGroup(index, project)
		if created {
			return g, []string{g.ID}, err
		}
		return g, nil, err
	}
	if sp.ID == "" || sp.EgressRuleID == "" {
		return SecurityGroup{}, nil, invalid("security group id and its egress rule's id are required")
	}
	if err := s.withinQuota(QuotaSecurityGroup, project); err != nil {
		return SecurityGroup{}, nil, err
	}
	if _, ok := s.sgs[sp.ID]; ok {
		return SecurityGroup{}, nil, conflict("SecurityGroupExists", "Security group %s already exists", sp.ID)
	}
	if _, ok := s.sgRules[sp.EgressRuleID]; ok {
		return SecurityGroup{}, nil, conflict("SecurityGroupRuleExists", "Security group rule already exists. Rule id is %s.", sp.EgressRuleID)
	}
	if sp.Name != nil && strings.EqualFold(*sp.Name, DefaultSecurityGroupName) {
		return SecurityGroup{}, nil, conflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
	}
	if egress, ingress := defaultRuleIDs(project); sp.ID == DefaultSecurityGroupID(project) || sp.EgressRuleID == egress || sp.EgressRuleID == ingress {
		return SecurityGroup{}, nil, conflict("SecurityGroupExists", "Security group %s: its ids are those of project %s's default group", sp.ID, project)
	}
	g := &SecurityGroup{ID: sp.ID, Stateful: true, Tags: []string{}}
	if sp.Name != nil {
		g.Name = *sp.Name
	}
	if sp.Description != nil {
		g.Description = *sp.Description
	}
	if sp.Stateful != nil {
		g.Stateful = *sp.Stateful
	}
	if sp.Tags != nil {
		g.Tags = slices.Clone(sp.Tags)
	}
	setProject(&g.ProjectID, &g.TenantID, sp.ProjectID, sp.TenantID)
	var created []string
	if d, ok, err := s.EnsureDefaultSecurityGroup(index, project); err != nil {
		return SecurityGroup{}, nil, err
	} else if ok {
		created = append(created, d.ID)
	}
	s.addSecurityGroup(index, g, []SecurityGroupRule{{ID: sp.EgressRuleID, Direction: DirectionEgress}})
	return sgOut(g), append(created, g.ID), nil
}

// addSecurityGroup stores a new group and its first rules (in their
// group's project, IPv4), allocating every key.
func (s *Store) addSecurityGroup(index uint64, g *SecurityGroup, rules []SecurityGroupRule) {
	s.seq.SecurityGroupKey++
	g.Key = s.seq.SecurityGroupKey
	g.RevisionNumber = index
	g.stamp(s.now)
	for _, r := range rules {
		r.SecurityGroupID, r.Ethertype = g.ID, EthertypeIPv4
		r.ProjectID, r.TenantID = g.ProjectID, g.TenantID
		s.seq.RuleKey++
		r.Key = s.seq.RuleKey
		r.RevisionNumber = index
		r.stamp(s.now)
		g.Rules = append(g.Rules, r)
		s.sgRules[r.ID] = g.ID
	}
	if g.Rules == nil {
		g.Rules = []SecurityGroupRule{}
	}
	s.sgs[g.ID] = g
}

// EnsureDefaultSecurityGroup creates a project's default group unless it
// has one: "default", egress IPv4 anywhere, ingress IPv4 from the
// group's own members; its ids are derived from the project. The objects
// of no project ("", as --auth none makes them when no project_id is
// given) are one project of their own, with a default group of its own.
// It reports whether it created the group.
func (s *Store) EnsureDefaultSecurityGroup(index uint64, project string) (SecurityGroup, bool, error) {
	g, created, err := s.ensureDefaultGroup(index, project)
	if g == nil {
		return SecurityGroup{}, false, err
	}
	return sgOut(g), created, err
}

// ensureDefaultGroup is EnsureDefaultSecurityGroup without the copy: a
// port create wants only the group's id.
func (s *Store) ensureDefaultGroup(index uint64, project string) (*SecurityGroup, bool, error) {
	if g := s.defaultGroup(project); g != nil {
		return g, false, nil
	}
	id := DefaultSecurityGroupID(project)
	egress, ingress := defaultRuleIDs(project)
	if _, ok := s.sgs[id]; ok {
		return nil, false, conflict("SecurityGroupExists", "Security group %s, the id of project %s's default group, is another group", id, project)
	}
	for _, r := range []string{egress, ingress} {
		if _, ok := s.sgRules[r]; ok {
			return nil, false, conflict("SecurityGroupRuleExists", "Security group rule already exists. Rule id is %s.", r)
		}
	}
	g := &SecurityGroup{ID: id, Name: DefaultSecurityGroupName, Description: DefaultSecurityGroupDescription,
		ProjectID: project, TenantID: project, Stateful: true, Tags: []string{}}
	s.addSecurityGroup(index, g, []SecurityGroupRule{
		{ID: egress, Direction: DirectionEgress},
		{ID: ingress, Direction: DirectionIngress, RemoteGroupID: id},
	})
	return g, true, nil
}

// UpdateSecurityGroup changes a group's name, description, tags or
// statefulness. The default group keeps its name; no other group takes
// it; statefulness changes only while no port holds the group.
func (s *Store) UpdateSecurityGroup(index uint64, sp SecurityGroupSpec) (SecurityGroup, error) {
	g, ok := s.sgs[sp.ID]
	if !ok {
		return SecurityGroup{}, sgNotFound(sp.ID)
	}
	if sp.Name != nil {
		if isDefaultGroup(g) {
			return SecurityGroup{}, conflict("SecurityGroupCannotUpdateDefault", "Updating default security group not allowed.")
		}
		if strings.EqualFold(*sp.Name, DefaultSecurityGroupName) {
			return SecurityGroup{}, conflict("SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
		}
	}
	if p := specProject(sp.ProjectID, sp.TenantID); (sp.ProjectID != nil || sp.TenantID != nil) && p != g.ProjectID {
		return SecurityGroup{}, invalid("project_id of a security group cannot be changed")
	}
	if sp.Stateful != nil && *sp.Stateful != g.Stateful && len(s.SecurityGroupPorts(g.ID)) > 0 {
		return SecurityGroup{}, conflict("SecurityGroupInUse", "Security Group %s in use.", g.ID)
	}
	c := *g
	if sp.Name != nil {
		c.Name = *sp.Name
	}
	if sp.Description != nil {
		c.Description = *sp.Description
	}
	if sp.Tags != nil {
		c.Tags = slices.Clone(sp.Tags)
	}
	if sp.Stateful != nil {
		c.Stateful = *sp.Stateful
	}
	c.RevisionNumber = index
	c.stamp(s.now)
	*g = c
	return sgOut(g), nil
}

// DeleteSecurityGroup deletes a group no port holds, with its rules and
// the rules of other groups that name it as their remote group (as
// Neutron's cascade does). It returns the other groups it changed.
func (s *Store) DeleteSecurityGroup(index uint64, id string) ([]string, error) {
	if _, ok := s.sgs[id]; !ok {
		return nil, sgNotFound(id)
	}
	if len(s.SecurityGroupPorts(id)) > 0 {
		return nil, conflict("SecurityGroupInUse", "Security Group %s in use.", id)
	}
	s.removeSecurityGroup(id)
	var changed []string
	for _, gid := range sortedKeys(s.sgs) {
		g := s.sgs[gid]
		if !slices.ContainsFunc(g.Rules, func(r SecurityGroupRule) bool { return r.RemoteGroupID == id }) {
			continue
		}
		kept := make([]SecurityGroupRule, 0, len(g.Rules))
		for _, r := range g.Rules {
			if r.RemoteGroupID == id {
				delete(s.sgRules, r.ID)
				continue
			}
			kept = append(kept, r)
		}
		g.Rules, g.RevisionNumber = kept, index
		g.stamp(s.now)
		changed = append(changed, gid)
	}
	return changed, nil
}

func (s *Store) removeSecurityGroup(id string) {
	g, ok := s.sgs[id]
	if !ok {
		return
	}
	for _, r := range g.Rules {
		delete(s.sgRules, r.ID)
	}
	delete(s.sgs, id)
}

func sgNotFound(id string) *Error {
	return notFound("SecurityGroupNotFound", "Security group %s does not exist", id)
}

// --- ports ------------------------------------------------------------------

// trustedOwner reports whether ports of a device owner are the cloud's
// own (network:*), which Neutron gives no security groups.
func trustedOwner(owner string) bool { return strings.HasPrefix(owner, "network:") }

// portGroups decides the security groups of a port being created or
// updated, p carrying its other new fields, held its groups before (nil
// on create). It reports whether the port should get its project's
// default group, which the caller creates, if need be, once nothing can
// fail any more.
func (s *Store) portGroups(p *Port, sp PortSpec, held []string, create bool) ([]string, bool, error) {
	if trustedOwner(p.DeviceOwner) {
		return []string{}, false, nil
	}
	if !p.PortSecurityEnabled {
		switch {
		case len(sp.SecurityGroups) > 0:
			return nil, false, invalidAs("PortSecurityAndIPRequiredForSecurityGroups",
				"Port security must be enabled and port must have an IP address in order to use security groups.")
		case sp.SecurityGroups == nil && len(held) > 0:
			return nil, false, conflict("PortSecurityPortHasSecurityGroup",
				"Port has security group associated. Cannot disable port security or ip address until security group is removed.")
		}
		return []string{}, false, nil
	}
	want := sp.SecurityGroups
	if want == nil {
		if create {
			return []string{}, true, nil
		}
		want = held
	}
	out := make([]string, 0, len(want))
	stateful, stateless := false, false
	for _, id := range want {
		if slices.Contains(out, id) {
			continue
		}
		g, ok := s.sgs[id]
		if !ok || p.ProjectID != "" && g.ProjectID != p.ProjectID {
			if sp.SecurityGroups == nil && !ok {
				// A group the port held before groups were checked: it
				// keeps it until an update names its groups.
				out = append(out, id)
				continue
			}
			return nil, false, sgNotFound(id)
		}
		stateful, stateless = stateful || g.Stateful, stateless || !g.Stateful
		out = append(out, id)
	}
	if stateful && stateless {
		return nil, false, conflict("SecurityGroupConflict",
			"Error Cannot apply both stateful and stateless security groups on the same port at the same time while attempting the operation.")
	}
	return out, false, nil
}

func invalidAs(typ, msg string) *Error { return &Error{Kind: KindInvalid, Type: typ, Message: msg} }

// restoreSecurityGroup reads a group record of a snapshot.
func (s *Store) restoreSecurityGroup(g *SecurityGroup) {
	if g.Tags == nil {
		g.Tags = []string{}
	}
	if g.Rules == nil {
		g.Rules = []SecurityGroupRule{}
	}
	for _, r := range g.Rules {
		s.sgRules[r.ID] = g.ID
	}
	s.sgs[g.ID] = g
}
