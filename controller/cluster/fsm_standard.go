package cluster

import (
	"encoding/json"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// Commands of Neutron's standard attributes (tags, and the revision
// precondition (If-Match) that guards another command), of its subnet
// pools, which Wyvern stores, and of its quotas.
type (
	// Tags changes one object's tags (topology.Store.UpdateTags).
	Tags struct {
		Resource string // topology.ResourceNetwork, ...
		ID       string
		Op       topology.TagOp
		Tags     []string
	}
	// IfRevision applies Command (with its Payload) only if the object
	// Resource/ID is at one of Revisions when the entry is applied: the
	// check and the change are one step, so no write slips in between.
	// SubnetPoolCreate and SubnetPoolUpdate: a stored subnet pool.
	SubnetPoolCreate struct{ Spec topology.SubnetPoolSpec }
	SubnetPoolUpdate struct{ Spec topology.SubnetPoolSpec }
	// QuotasSet sets some of a project's limits.
	QuotasSet struct {
		Project string
		Limits  map[string]int
	}
	IfRevision struct {
		Resource  string
		ID        string
		Revisions []uint64
		Command   CommandType
		Payload   json.RawMessage
	}
)

// standardPayloads are the payloads of the commands here.
var standardPayloads = map[CommandType]func() any{
	CmdTags: func() any { return new(Tags) }, CmdIfRevision: func() any { return new(IfRevision) },
	CmdSubnetPoolCreate: func() any { return new(SubnetPoolCreate) }, CmdSubnetPoolUpdate: func() any { return new(SubnetPoolUpdate) },
	CmdSubnetPoolDelete: func() any { return new(ByID) },
	CmdQuotasSet:        func() any { return new(QuotasSet) }, CmdQuotasReset: func() any { return new(ByID) },
}

// standardHandlers apply the commands here. CmdIfRevision's handler is
// registered by init: it dispatches through the table it is in.
var standardHandlers = map[CommandType]handler{
	CmdTags: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		c := decodeInto[Tags](d)
		tags, err := s.UpdateTags(i, c.Resource, c.ID, c.Op, c.Tags)
		res, id := changed(s, c.Resource, c.ID)
		return tags, one(i, res, "update", id), err
	},
	CmdSubnetPoolCreate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		p, err := s.CreateSubnetPool(i, decodeInto[SubnetPoolCreate](d).Spec)
		return []topology.SubnetPool{p}, one(i, topology.ResourceSubnetPool, "create", p.ID), err
	},
	CmdSubnetPoolUpdate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		p, err := s.UpdateSubnetPool(i, decodeInto[SubnetPoolUpdate](d).Spec)
		return p, one(i, topology.ResourceSubnetPool, "update", p.ID), err
	},
	CmdSubnetPoolDelete: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		id := decodeInto[ByID](d).ID
		return nil, one(i, topology.ResourceSubnetPool, "delete", id), s.DeleteSubnetPool(i, id)
	},
	CmdQuotasSet: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		c := decodeInto[QuotasSet](d)
		q, err := s.SetQuotas(i, c.Project, c.Limits)
		return q, one(i, "quota", "update", c.Project), err
	},
	CmdQuotasReset: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		id := decodeInto[ByID](d).ID
		s.ResetQuotas(i, id)
		return nil, one(i, "quota", "delete", id), nil
	},
}

func init() { handlers[CmdIfRevision] = applyIfRevision }

// applyIfRevision checks the guarded object's revision, then applies the
// command it guards as if it came alone.
func applyIfRevision(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
	c := decodeInto[IfRevision](d)
	if err := s.CheckRevision(c.Resource, c.ID, c.Revisions); err != nil {
		return nil, nil, err
	}
	h, ok := handlers[c.Command]
	if !ok || c.Command == CmdIfRevision {
		panic(decodeFailure{errUnknownCommand})
	}
	return h(s, i, c.Payload)
}

// changed is the object a standard attribute's change is recorded
// against: a security group rule's changes are its group's.
func changed(s *topology.Store, resource, id string) (string, string) {
	if resource == topology.ResourceSecurityGroupRule {
		r, _ := s.SecurityGroupRule(id)
		return topology.ResourceSecurityGroup, r.SecurityGroupID
	}
	return resource, id
}
