package cluster

import (
	"slices"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// Command payloads.
type (
	// SecurityGroupCreate creates groups, all or none (one asks for a
	// project's default group with Default).
	SecurityGroupCreate struct{ Specs []topology.SecurityGroupSpec }
	SecurityGroupUpdate struct{ Spec topology.SecurityGroupSpec }
	// SecurityGroupRuleCreate adds rules to one group, all or none.
	SecurityGroupRuleCreate struct {
		Specs []topology.SecurityGroupRuleSpec
	}
)

// securityGroupPayloads are the payloads of the commands here.
var securityGroupPayloads = map[CommandType]func() any{
	CmdSecurityGroupCreate: func() any { return new(SecurityGroupCreate) }, CmdSecurityGroupUpdate: func() any { return new(SecurityGroupUpdate) },
	CmdSecurityGroupDelete: func() any { return new(ByID) }, CmdSecurityGroupRuleCreate: func() any { return new(SecurityGroupRuleCreate) },
	CmdSecurityGroupRuleDelete: func() any { return new(ByID) },
}

// securityGroupHandlers apply the commands of security groups and rules.
var securityGroupHandlers = map[CommandType]handler{
	CmdSecurityGroupCreate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		specs := decodeInto[SecurityGroupCreate](d).Specs
		missing := missingDefaults(s, specs, func(sp topology.SecurityGroupSpec) (*string, *string) { return sp.ProjectID, sp.TenantID })
		out, err := s.CreateSecurityGroups(i, specs)
		ch := defaultsCreated(s, i, missing)
		for n, g := range out {
			if !specs[n].Default { // a default group asked for is among ch if it is new
				ch = append(ch, one(i, topology.ResourceSecurityGroup, "create", g.ID)...)
			}
		}
		return out, ch, err
	},
	CmdSecurityGroupUpdate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		g, err := s.UpdateSecurityGroup(i, decodeInto[SecurityGroupUpdate](d).Spec)
		return g, one(i, topology.ResourceSecurityGroup, "update", g.ID), err
	},
	CmdSecurityGroupDelete: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		id := decodeInto[ByID](d).ID
		others, err := s.DeleteSecurityGroup(i, id)
		return nil, append(one(i, topology.ResourceSecurityGroup, "delete", id),
			changes(i, topology.ResourceSecurityGroup, "update", others, func(id string) string { return id })...), err
	},
	CmdSecurityGroupRuleCreate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		out, err := s.CreateSecurityGroupRules(i, decodeInto[SecurityGroupRuleCreate](d).Specs)
		var ch []topology.Change
		if len(out) > 0 { // one group's rules
			ch = one(i, topology.ResourceSecurityGroup, "update", out[0].SecurityGroupID)
		}
		return out, ch, err
	},
	CmdSecurityGroupRuleDelete: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		r, err := s.DeleteSecurityGroupRule(i, decodeInto[ByID](d).ID)
		return nil, one(i, topology.ResourceSecurityGroup, "update", r.SecurityGroupID), err
	},
}

// missingDefaults are the projects named by specs that have no default
// security group before a command that may create theirs.
func missingDefaults[Spec any](s *topology.Store, specs []Spec, project func(Spec) (*string, *string)) []string {
	var out []string
	for _, sp := range specs {
		p, t := project(sp)
		name := ""
		switch {
		case p != nil:
			name = *p
		case t != nil:
			name = *t
		}
		if !s.HasDefaultSecurityGroup(name) && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// defaultsCreated are the changes of the default groups a command
// created: those of the projects that had none before it.
func defaultsCreated(s *topology.Store, i uint64, projects []string) []topology.Change {
	var ch []topology.Change
	for _, p := range projects {
		if g, ok := s.DefaultSecurityGroup(p); ok {
			ch = append(ch, one(i, topology.ResourceSecurityGroup, "create", g.ID)...)
		}
	}
	return ch
}
