package northbound

import (
	"crypto/sha1"
	"fmt"
	"net/http"

	"github.com/wyvern-sdn/wyvern/controller/cluster"
	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// Neutron's agents and subnet pools, as far as Wyvern has them: one agent
// per chassis (what runs there is Wyvern's chassis agent), and subnet
// pools stored and returned (topology.SubnetPool).

// agentView is a chassis as a Neutron agent.
type agentView struct {
	ID                 string         `json:"id"`
	AgentType          string         `json:"agent_type"`
	Binary             string         `json:"binary"`
	Host               string         `json:"host"`
	Topic              string         `json:"topic"`
	Alive              bool           `json:"alive"`
	AdminStateUp       bool           `json:"admin_state_up"`
	AvailabilityZone   *string        `json:"availability_zone"`
	Configurations     map[string]any `json:"configurations"`
	Description        *string        `json:"description"`
	HeartbeatTimestamp string         `json:"heartbeat_timestamp"`
	ResourcesSynced    *bool          `json:"resources_synced"`
}

// AgentType is the agent_type of every chassis' agent.
const AgentType = "Wyvern agent"

// agentID is a chassis' agent id: a UUID derived from its name, the same
// on every node and across restarts.
func agentID(chassis string) string {
	h := sha1.Sum([]byte("wyvern-agent:" + chassis))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

func agentOf(c topology.Chassis) agentView {
	conf := map[string]any{"tunnel_types": c.Encaps, "tunneling_ip": c.EncapIP, "integration_bridge": c.Bridge,
		"datapath_type": c.DatapathType, "bridge_mappings": c.BridgeMappings, "gateway": c.Gateway}
	if c.BridgeMappings == nil {
		conf["bridge_mappings"] = map[string]string{}
	}
	return agentView{ID: agentID(c.Name), AgentType: AgentType, Binary: "wyvernd", Host: c.Name, Topic: "N/A",
		Alive: c.Connected && !c.Unreachable, AdminStateUp: true, Configurations: conf, HeartbeatTimestamp: c.LastSeen}
}

// agentList lists the agents: an admin's question (anyone else gets
// none, as Neutron's policy filters them out).
func (s *Server) agentList(w http.ResponseWriter, r *http.Request) error {
	var out []agentView
	if callerOf(r.Context()).Admin {
		s.cluster.Read(func(st *topology.Store) {
			for _, c := range st.Chassis() {
				out = append(out, agentOf(c))
			}
		})
	}
	return list(w, r, "agents", out)
}

func (s *Server) agentShow(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var a agentView
	found := false
	if callerOf(r.Context()).Admin {
		s.cluster.Read(func(st *topology.Store) {
			for _, c := range st.Chassis() {
				if agentID(c.Name) == id {
					a, found = agentOf(c), true
				}
			}
		})
	}
	return show(w, r, "agent", a, found, notFoundErr("AgentNotFound", "Agent", id))
}

// subnetPoolCreate handles POST /v2.0/subnetpools: one pool.
func (s *Server) subnetPoolCreate(w http.ResponseWriter, r *http.Request) error {
	specs, _, err := decodeSpecs[subnetPoolReq, topology.SubnetPoolSpec](subnetPools, r, "", false)
	if err != nil {
		return err
	}
	if err := s.admit(r, subnetPools, specs, true); err != nil {
		return err
	}
	v, err := propose[[]topology.SubnetPool](r.Context(), s, cluster.CmdSubnetPoolCreate, cluster.SubnetPoolCreate{Spec: specs[0]})
	if err != nil {
		return err
	}
	return answerMany(w, r, http.StatusCreated, subnetPools, v, false)
}

// serviceProvider is one of Neutron's service providers: who serves a
// service type.
type serviceProvider struct {
	ServiceType string `json:"service_type"`
	Name        string `json:"name"`
	Default     bool   `json:"default"`
}

// serviceProviders lists the one provider of the one service type Wyvern
// serves beyond the core: its distributed routers.
func (s *Server) serviceProviders(w http.ResponseWriter, r *http.Request) error {
	return list(w, r, "service_providers", []serviceProvider{{ServiceType: "L3_ROUTER_NAT", Name: "wyvern", Default: true}})
}
