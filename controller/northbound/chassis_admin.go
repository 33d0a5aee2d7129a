package northbound

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/wyvern-sdn/wyvern/controller/cluster"
	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// chassisReq registers a chassis no Wyvern node manages (central mode):
// an OVS the operator configured, whose bridge lists the members'
// OpenFlow addresses. Its bridge's master programs it and records the
// ports plugged there by their names (docs/operations.md, "Central
// mode").
type chassisReq struct {
	Name           string            `json:"name"`
	EncapIP        string            `json:"encap_ip"`
	Encaps         []string          `json:"encaps"`
	DatapathID     string            `json:"datapath_id"`
	Bridge         string            `json:"bridge"`
	DatapathType   string            `json:"datapath_type"`
	BridgeMappings map[string]string `json:"bridge_mappings"`
	Gateway        bool              `json:"gateway"`
}

// chassisRegister is POST /v2.0/chassis (admin).
func (s *Server) chassisRegister(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Chassis *chassisReq `json:"chassis"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return badRequest("Malformed request body: %v", err)
	}
	if dec.More() {
		return badRequest("Malformed request body: trailing data")
	}
	c := body.Chassis
	if c == nil {
		return badRequest(`Malformed request body: want {"chassis": {...}}`)
	}
	dpid, err := strconv.ParseUint(c.DatapathID, 16, 64)
	if err != nil || dpid == 0 || len(c.DatapathID) > 16 {
		return invalidInput("Invalid input for datapath_id. Reason: %q is not a datapath id (up to 16 hex digits, not 0).", c.DatapathID)
	}
	if len(c.Encaps) == 0 {
		c.Encaps = []string{topology.TypeVXLAN, topology.TypeGRE}
	}
	if c.Bridge == "" {
		c.Bridge = "br-int"
	}
	if c.DatapathType == "" {
		c.DatapathType = "system"
	}
	if c.DatapathType != "system" && c.DatapathType != "netdev" {
		return invalidInput("Invalid input for datapath_type. Reason: %q is neither system nor netdev.", c.DatapathType)
	}
	dpidText := fmt.Sprintf("%016x", dpid)
	var conflict error
	s.cluster.Read(func(st *topology.Store) {
		for _, o := range st.Chassis() {
			switch {
			case o.Name == c.Name && o.NodeID != "":
				conflict = &apiError{http.StatusConflict, "ChassisManaged", fmt.Sprintf("Chassis %s is managed by node %s, which registers it itself.", c.Name, o.NodeID)}
			case o.Name != c.Name && o.DatapathID == dpidText:
				conflict = &apiError{http.StatusConflict, "DatapathInUse", fmt.Sprintf("Datapath %s is chassis %s's.", dpidText, o.Name)}
			}
		}
	})
	if conflict != nil {
		return conflict
	}
	spec := topology.ChassisSpec{Name: c.Name, EncapIP: c.EncapIP, Encaps: c.Encaps, DatapathID: dpidText,
		Bridge: c.Bridge, DatapathType: c.DatapathType, BridgeMappings: c.BridgeMappings, Gateway: c.Gateway}
	out, err := propose[topology.Chassis](r.Context(), s, cluster.CmdChassisRegister, cluster.ChassisReg{Spec: spec})
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(map[string]any{"chassis": out})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, err = w.Write(buf.Bytes())
	return err
}

// chassisDelete is DELETE /v2.0/chassis/{name} (admin): a hypervisor taken
// out of service. Its ports stay, unplugged (topology.Store.DeleteChassis);
// a chassis a member node manages is refused (409 ChassisManaged) until
// that member is removed.
func (s *Server) chassisDelete(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.cluster.Propose(r.Context(), cluster.CmdChassisDelete, cluster.ByID{ID: r.PathValue("name")}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// agentDelete is Neutron's DELETE /v2.0/agents/{id} (admin): the agent's
// chassis goes, as with chassisDelete.
func (s *Server) agentDelete(w http.ResponseWriter, r *http.Request) error {
	id, name := r.PathValue("id"), ""
	s.cluster.Read(func(st *topology.Store) {
		for _, c := range st.Chassis() {
			if agentID(c.Name) == id {
				name = c.Name
			}
		}
	})
	if name == "" {
		return notFoundErr("AgentNotFound", "Agent", id)
	}
	if _, err := s.cluster.Propose(r.Context(), cluster.CmdChassisDelete, cluster.ByID{ID: name}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
