package northbound

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/controller/cluster"
	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// Security groups and their rules (Neutron's security-group extension).
// Ids are the cloud's: Neutron takes none on create, and a group's and
// its first rule's are chosen here, before the command is proposed; a
// project's default group has ids derived from the project, so the store
// can create it while it creates a port.

type securityGroupReq struct {
	Name        *string  `json:"name"`
	Description *string  `json:"description"`
	ProjectID   *string  `json:"project_id"`
	TenantID    *string  `json:"tenant_id"`
	Tags        []string `json:"tags"`
	Stateful    *bool    `json:"stateful"`
}

type securityGroupRuleReq struct {
	SecurityGroupID *string       `json:"security_group_id"`
	Direction       *string       `json:"direction"`
	Ethertype       *string       `json:"ethertype"`
	Protocol        *ruleProtocol `json:"protocol"` // null: any
	PortRangeMin    *rulePort     `json:"port_range_min"`
	PortRangeMax    *rulePort     `json:"port_range_max"`
	RemoteIPPrefix  *string       `json:"remote_ip_prefix"`
	RemoteGroupID   *string       `json:"remote_group_id"`
	// RemoteAddressGroupID: Wyvern has no address groups; only null.
	RemoteAddressGroupID *string `json:"remote_address_group_id"`
	Description          *string `json:"description"`
	ProjectID            *string `json:"project_id"`
	TenantID             *string `json:"tenant_id"`
}

// ruleProtocol is a rule's protocol as Neutron's convert_protocol takes
// it: a name or a number, as a string or a JSON number.
type ruleProtocol string

func (p *ruleProtocol) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*p = ruleProtocol(s)
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("protocol %s is not a name or a number", abbrev(string(b)))
	}
	*p = ruleProtocol(strconv.Itoa(n))
	return nil
}

// rulePort is a port_range_min/max: a number, or a string of digits, as
// Neutron's convert_validate_port_value takes it.
type rulePort int

func (p *rulePort) UnmarshalJSON(b []byte) error {
	if len(b) > 1 && b[0] == '"' {
		b = b[1 : len(b)-1]
	}
	v, err := strconv.Atoi(string(b))
	if err != nil {
		return fmt.Errorf("invalid value for port %s", abbrev(string(b)))
	}
	*p = rulePort(v)
	return nil
}

func (r securityGroupReq) spec(pathID string, _ map[string]json.RawMessage) (topology.SecurityGroupSpec, error) {
	sp := topology.SecurityGroupSpec{ID: pathID, Name: r.Name, Description: r.Description, ProjectID: r.ProjectID,
		TenantID: r.TenantID, Tags: r.Tags, Stateful: r.Stateful}
	if pathID == "" {
		sp.ID, sp.EgressRuleID = newUUID(), newUUID()
	}
	return sp, nil
}

func (r securityGroupRuleReq) spec(string, map[string]json.RawMessage) (topology.SecurityGroupRuleSpec, error) {
	if r.RemoteAddressGroupID != nil {
		return topology.SecurityGroupRuleSpec{}, invalidInput("Invalid input for remote_address_group_id: Wyvern has no address groups.")
	}
	sp := topology.SecurityGroupRuleSpec{ID: newUUID(), SecurityGroupID: deref(r.SecurityGroupID), Direction: deref(r.Direction),
		Ethertype: deref(r.Ethertype), RemoteIPPrefix: deref(r.RemoteIPPrefix), RemoteGroupID: deref(r.RemoteGroupID),
		Description: deref(r.Description), ProjectID: deref(r.ProjectID), TenantID: deref(r.TenantID)}
	if r.SecurityGroupID == nil {
		return sp, invalidInput("Failed to parse request. Required attribute 'security_group_id' not specified")
	}
	if r.Protocol != nil {
		sp.Protocol = string(*r.Protocol)
	}
	if r.PortRangeMin != nil {
		v := int(*r.PortRangeMin)
		sp.PortRangeMin = &v
	}
	if r.PortRangeMax != nil {
		v := int(*r.PortRangeMax)
		sp.PortRangeMax = &v
	}
	return sp, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (r securityGroupReq) bounds() error {
	var b fieldBounds
	b.common(nil, r.Name, r.Description, r.ProjectID, r.TenantID, r.Tags)
	return b.err
}

func (r securityGroupRuleReq) bounds() error {
	var b fieldBounds
	b.common(nil, nil, r.Description, r.ProjectID, r.TenantID, nil)
	b.str("security_group_id", r.SecurityGroupID, MaxIDLen)
	b.str("remote_group_id", r.RemoteGroupID, MaxIDLen)
	b.str("remote_address_group_id", r.RemoteAddressGroupID, MaxIDLen)
	b.str("remote_ip_prefix", r.RemoteIPPrefix, MaxAddressLen)
	b.str("direction", r.Direction, MaxProtocolLen)
	b.str("ethertype", r.Ethertype, MaxProtocolLen)
	b.str("protocol", (*string)(r.Protocol), MaxProtocolLen)
	return b.err
}

// securityGroupList handles GET /v2.0/security-groups: as Neutron, the
// first list of a project that has no default group yet creates it.
func (s *Server) securityGroupList(w http.ResponseWriter, r *http.Request) error {
	s.ensureDefaultGroup(r)
	return lister(s, securityGroups.plural, (*topology.Store).SecurityGroups)(w, r)
}

// securityGroupRuleList handles GET /v2.0/security-group-rules, which
// makes a default group as the list of groups does.
func (s *Server) securityGroupRuleList(w http.ResponseWriter, r *http.Request) error {
	s.ensureDefaultGroup(r)
	return lister(s, securityGroupRules.plural, (*topology.Store).SecurityGroupRules)(w, r)
}

// ensureDefaultGroup creates the default group of the caller's project
// (an admin's: of the project_id it filters on) if it has none. A failure
// is logged, not answered: the list is served from what there is.
func (s *Server) ensureDefaultGroup(r *http.Request) {
	c := callerOf(r.Context())
	project := c.ProjectID
	if q := r.URL.Query(); c.Admin && q.Get("project_id") != "" {
		project = q.Get("project_id")
	} else if c.Admin && q.Get("tenant_id") != "" {
		project = q.Get("tenant_id")
	}
	if project == "" {
		return
	}
	var ok bool
	s.cluster.Read(func(st *topology.Store) { _, ok = st.DefaultSecurityGroup(project) })
	if ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	res, err := s.cluster.Propose(ctx, cluster.CmdSecurityGroupCreate,
		cluster.SecurityGroupCreate{Specs: []topology.SecurityGroupSpec{{Default: true, ProjectID: &project}}})
	if err != nil {
		s.log.Warn("cannot create a project's default security group", zap.String("project", project), zap.Error(err))
		return
	}
	// On a follower, the group is the leader's until this node applies it.
	if wi, ok := s.cluster.(interface {
		WaitIndex(context.Context, uint64) error
	}); ok {
		_ = wi.WaitIndex(ctx, res.Index)
	}
}

// securityGroupDelete handles DELETE /v2.0/security-groups/{id}. A
// member cannot delete its project's default group (Neutron's
// SecurityGroupCannotRemoveDefault); an admin can, once no port holds it.
func (s *Server) securityGroupDelete(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := s.check(r, func(st *topology.Store, c Caller) error {
		if err := mayChange(st, c, securityGroups, id); err != nil || c.Admin {
			return err
		}
		if g, _ := st.SecurityGroup(id); g.Name == topology.DefaultSecurityGroupName {
			return &topology.Error{Kind: topology.KindConflict, Type: "SecurityGroupCannotRemoveDefault",
				Message: "Insufficient rights for removing default security group."}
		}
		return nil
	}); err != nil {
		return err
	}
	if _, err := s.proposeOn(r, securityGroups, id, cluster.CmdSecurityGroupDelete, cluster.ByID{ID: id}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// securityGroupRuleCreate handles POST /v2.0/security-group-rules: one
// rule, or Neutron's bulk ({"security_group_rules": [...]}, all of one
// group), all or none, in one command.
func (s *Server) securityGroupRuleCreate(w http.ResponseWriter, r *http.Request) error {
	reqs, _, bulk, err := decodeReqs[securityGroupRuleReq](securityGroupRules, r, true)
	if err != nil {
		return err
	}
	specs := make([]topology.SecurityGroupRuleSpec, len(reqs))
	c := callerOf(r.Context())
	for i := range reqs {
		if err := ownProject(c, securityGroupRules, &reqs[i].ProjectID, &reqs[i].TenantID, true); err != nil {
			return err
		}
		if specs[i], err = reqs[i].spec("", nil); err != nil {
			return err
		}
	}
	if err := s.check(r, func(st *topology.Store, c Caller) error {
		if c.Admin {
			return nil
		}
		for _, sp := range specs {
			// Rules go into the caller's own groups, and name its own
			// groups as remotes; any other is not found.
			for _, id := range []string{sp.SecurityGroupID, sp.RemoteGroupID} {
				if g, ok := st.SecurityGroup(id); id != "" && (!ok || g.ProjectID != c.ProjectID) {
					return notFoundFor(securityGroups, id)
				}
			}
		}
		return nil
	}); err != nil {
		return err
	}
	out, err := propose[[]topology.SecurityGroupRule](r.Context(), s, cluster.CmdSecurityGroupRuleCreate, cluster.SecurityGroupRuleCreate{Specs: specs})
	if err != nil {
		return err
	}
	return answerMany(w, r, http.StatusCreated, securityGroupRules, out, bulk)
}

// securityGroupRuleUpdate: a rule is not changed, only deleted and made
// anew (Neutron has no update of a rule).
func (s *Server) securityGroupRuleUpdate(w http.ResponseWriter, r *http.Request) error {
	return &apiError{http.StatusMethodNotAllowed, "HTTPMethodNotAllowed", "A security group rule cannot be updated: delete it and create another."}
}

// securityGroupView is a group as Neutron shows one, its rules included.
// It names every field, so that a field the store adds is not shown
// until it is meant to be.
type securityGroupView struct {
	ID             string                  `json:"id"`
	Name           string                  `json:"name"`
	Description    string                  `json:"description"`
	ProjectID      string                  `json:"project_id"`
	TenantID       string                  `json:"tenant_id"`
	Tags           []string                `json:"tags"`
	Stateful       bool                    `json:"stateful"`
	Shared         bool                    `json:"shared"`
	Rules          []securityGroupRuleView `json:"security_group_rules"`
	RevisionNumber uint64                  `json:"revision_number"`
	Key            uint32                  `json:"wyvern:key"`
	topology.Stamps
}

// securityGroupRuleView is a rule as Neutron shows one: what it does not
// name is null. Its key is shown where the rule stands alone, not inside
// its group.
type securityGroupRuleView struct {
	ID                   string  `json:"id"`
	SecurityGroupID      string  `json:"security_group_id"`
	Direction            string  `json:"direction"`
	Ethertype            string  `json:"ethertype"`
	Protocol             *string `json:"protocol"`
	PortRangeMin         *int    `json:"port_range_min"`
	PortRangeMax         *int    `json:"port_range_max"`
	RemoteIPPrefix       *string `json:"remote_ip_prefix"`
	NormalizedCIDR       *string `json:"normalized_cidr"`
	RemoteGroupID        *string `json:"remote_group_id"`
	RemoteAddressGroupID *string `json:"remote_address_group_id"`
	Description          string  `json:"description"`
	ProjectID            string  `json:"project_id"`
	TenantID             string  `json:"tenant_id"`
	RevisionNumber       uint64  `json:"revision_number"`
	Key                  *uint32 `json:"wyvern:key,omitempty"`
	topology.Stamps
}

func ruleView(r topology.SecurityGroupRule, withKey bool) securityGroupRuleView {
	v := securityGroupRuleView{ID: r.ID, SecurityGroupID: r.SecurityGroupID, Direction: r.Direction, Ethertype: r.Ethertype,
		Protocol: nilIfEmpty(r.Protocol), PortRangeMin: r.PortRangeMin, PortRangeMax: r.PortRangeMax,
		RemoteIPPrefix: nilIfEmpty(r.RemoteIPPrefix), NormalizedCIDR: nilIfEmpty(r.RemoteIPPrefix),
		RemoteGroupID: nilIfEmpty(r.RemoteGroupID), Description: r.Description, ProjectID: r.ProjectID, TenantID: r.TenantID,
		RevisionNumber: r.RevisionNumber, Stamps: r.Stamps}
	if withKey {
		k := r.Key
		v.Key = &k
	}
	return v
}

func groupView(g topology.SecurityGroup) securityGroupView {
	v := securityGroupView{ID: g.ID, Name: g.Name, Description: g.Description, ProjectID: g.ProjectID, TenantID: g.TenantID,
		Tags: g.Tags, Stateful: g.Stateful, RevisionNumber: g.RevisionNumber, Key: g.Key, Stamps: g.Stamps,
		Rules: make([]securityGroupRuleView, len(g.Rules))}
	if v.Tags == nil {
		v.Tags = []string{}
	}
	for i, r := range g.Rules {
		v.Rules[i] = ruleView(r, false)
	}
	return v
}
