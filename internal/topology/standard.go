package topology

import (
	"fmt"
	"slices"
)

// Neutron's standard attributes, shared by every resource: tags, the
// revision_number an If-Match names, and the Stamps.

// ResourceSecurityGroupRule names a security group rule where a
// standard attribute is asked of one (its changes are its group's).
const ResourceSecurityGroupRule = "securitygrouprule"

// MaxTags is how many tags one object holds at most; MaxTagLen how long
// one tag is at most (Neutron's tag extension).
const (
	MaxTags   = 50
	MaxTagLen = 60
)

// standard is one object's standard attributes, in place.
type standard struct {
	tags     *[]string // nil: the resource has no tags
	revision *uint64
	stamps   *Stamps
}

// standardOf finds an object's standard attributes, or says it is not
// found in the words Neutron would.
func (s *Store) standardOf(resource, id string) (standard, error) {
	switch resource {
	case ResourceNetwork:
		if n, ok := s.networks[id]; ok {
			return standard{&n.Tags, &n.RevisionNumber, &n.Stamps}, nil
		}
		return standard{}, notFound("NetworkNotFound", "Network %s could not be found.", id)
	case ResourceSubnet:
		if sn, ok := s.subnets[id]; ok {
			return standard{&sn.Tags, &sn.RevisionNumber, &sn.Stamps}, nil
		}
		return standard{}, notFound("SubnetNotFound", "Subnet %s could not be found.", id)
	case ResourcePort:
		if p, ok := s.ports[id]; ok {
			return standard{&p.Tags, &p.RevisionNumber, &p.Stamps}, nil
		}
		return standard{}, notFound("PortNotFound", "Port %s could not be found.", id)
	case ResourceRouter:
		if r, ok := s.routers[id]; ok {
			return standard{&r.Tags, &r.RevisionNumber, &r.Stamps}, nil
		}
		return standard{}, notFound("RouterNotFound", "Router %s could not be found", id)
	case ResourceFloatingIP:
		if f, ok := s.fips[id]; ok {
			return standard{&f.Tags, &f.RevisionNumber, &f.Stamps}, nil
		}
		return standard{}, notFound("FloatingIPNotFound", "Floating IP %s could not be found", id)
	case ResourceSecurityGroup:
		if g, ok := s.sgs[id]; ok {
			return standard{&g.Tags, &g.RevisionNumber, &g.Stamps}, nil
		}
		return standard{}, notFound("SecurityGroupNotFound", "Security group %s does not exist", id)
	case ResourceSubnetPool:
		if sp, ok := s.subnetPools[id]; ok {
			return standard{&sp.Tags, &sp.RevisionNumber, &sp.Stamps}, nil
		}
		return standard{}, notFound("SubnetPoolNotFound", "Subnet pool %s could not be found.", id)
	case ResourceSecurityGroupRule:
		if g, ok := s.sgs[s.sgRules[id]]; ok {
			for i := range g.Rules {
				if r := &g.Rules[i]; r.ID == id {
					return standard{nil, &r.RevisionNumber, &r.Stamps}, nil
				}
			}
		}
		return standard{}, notFound("SecurityGroupRuleNotFound", "Security group rule %s does not exist", id)
	}
	return standard{}, invalid("%s has no standard attributes", resource)
}

// Revision is an object's revision_number.
func (s *Store) Revision(resource, id string) (uint64, error) {
	st, err := s.standardOf(resource, id)
	if err != nil {
		return 0, err
	}
	return *st.revision, nil
}

// CheckRevision holds when the object's revision_number is one of want
// (Neutron's If-Match: revision_number=N); else the change it guards is
// refused with KindPrecondition.
func (s *Store) CheckRevision(resource, id string, want []uint64) error {
	have, err := s.Revision(resource, id)
	if err != nil {
		return err
	}
	if slices.Contains(want, have) {
		return nil
	}
	return &Error{Kind: KindPrecondition, Type: "RevisionNumberConstraintFailed",
		Message: fmt.Sprintf("Constrained to %s, but current revision is %d", revisionList(want), have)}
}

func revisionList(want []uint64) string {
	if len(want) == 1 {
		return fmt.Sprint(want[0])
	}
	return fmt.Sprint(want)
}

// TagOp is a change of an object's tags (Neutron's tag sub-resource).
type TagOp string

// Tag operations: replace them all, add one, remove one, remove all.
const (
	TagsReplace TagOp = "replace"
	TagAdd      TagOp = "add"
	TagRemove   TagOp = "remove"
	TagsClear   TagOp = "clear"
)

// UpdateTags changes an object's tags and returns them. Tags keep the
// order they were first given in, each once; removing a tag the object
// does not have is not found (TagNotFound). A change bumps the object's
// revision.
func (s *Store) UpdateTags(index uint64, resource, id string, op TagOp, tags []string) ([]string, error) {
	st, err := s.standardOf(resource, id)
	if err != nil {
		return nil, err
	}
	if st.tags == nil {
		return nil, invalid("%s %s has no tags", resource, id)
	}
	for _, t := range tags {
		if t == "" || len(t) > MaxTagLen {
			return nil, invalid("'%s' is not a valid tag: 1 to %d characters", t, MaxTagLen)
		}
	}
	var next []string
	switch op {
	case TagsReplace:
		next = []string{}
		for _, t := range tags {
			if !slices.Contains(next, t) {
				next = append(next, t)
			}
		}
	case TagAdd:
		if len(tags) != 1 {
			return nil, invalid("add takes one tag")
		}
		if slices.Contains(*st.tags, tags[0]) {
			return slices.Clone(*st.tags), nil // already there: nothing changes
		}
		next = append(slices.Clone(*st.tags), tags[0])
	case TagRemove:
		if len(tags) != 1 {
			return nil, invalid("remove takes one tag")
		}
		i := slices.Index(*st.tags, tags[0])
		if i < 0 {
			return nil, notFound("TagNotFound", "Tag %s could not be found for resource %s.", tags[0], id)
		}
		next = slices.Delete(slices.Clone(*st.tags), i, i+1)
	case TagsClear:
		next = []string{}
	default:
		return nil, invalid("unknown tag operation %q", op)
	}
	if len(next) > MaxTags {
		return nil, invalid("%s %s would have %d tags, more than the %d allowed", resource, id, len(next), MaxTags)
	}
	*st.tags = next
	*st.revision = index
	st.stamps.stamp(s.now)
	return slices.Clone(next), nil
}
