package northbound

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/wyvern-sdn/wyvern/controller/cluster"
	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// Floating IPs (Neutron's router extension) and their port forwardings
// (floating-ip-port-forwarding). A floating IP is created one at a time,
// as in Neutron; its port forwardings live under it and are the floating
// IP's project's.

type floatingIPReq struct {
	ID                *string  `json:"id"`
	FloatingNetworkID *string  `json:"floating_network_id"`
	FloatingIPAddress *string  `json:"floating_ip_address"`
	SubnetID          *string  `json:"subnet_id"`
	Description       *string  `json:"description"`
	ProjectID         *string  `json:"project_id"`
	TenantID          *string  `json:"tenant_id"`
	Tags              []string `json:"tags"`
	// PortID and FixedIPAddress: null disassociates, as Neutron's clients
	// send it ({"floatingip": {"port_id": null}}).
	PortID         nullable[string] `json:"port_id"`
	FixedIPAddress nullable[string] `json:"fixed_ip_address"`
}

type portForwardingReq struct {
	ID                *string `json:"id"`
	Protocol          *string `json:"protocol"`
	ExternalPort      *int    `json:"external_port"`
	InternalPort      *int    `json:"internal_port"`
	InternalIPAddress *string `json:"internal_ip_address"`
	InternalPortID    *string `json:"internal_port_id"`
	Description       *string `json:"description"`
}

func (r floatingIPReq) spec(pathID string, _ map[string]json.RawMessage) (topology.FloatingIPSpec, error) {
	id, err := idFor(r.ID, pathID)
	sp := topology.FloatingIPSpec{ID: id, FloatingNetworkID: r.FloatingNetworkID, FloatingIPAddress: r.FloatingIPAddress,
		SubnetID: r.SubnetID, PortID: nullString(r.PortID), FixedIPAddress: nullString(r.FixedIPAddress),
		Description: r.Description, ProjectID: r.ProjectID, TenantID: r.TenantID, Tags: r.Tags}
	if pathID == "" {
		// The port that holds the address on the external network:
		// chosen here, as every id is, before the command is proposed.
		sp.HolderPortID = newUUID()
	}
	return sp, err
}

// nullString is a nullable string as the store takes it: absent is nil,
// null is "".
func nullString(f nullable[string]) *string {
	if !f.Set {
		return nil
	}
	v := f.Value
	return &v
}

func (r portForwardingReq) spec(pathID string, _ map[string]json.RawMessage) (topology.PortForwardingSpec, error) {
	id, err := idFor(r.ID, pathID)
	return topology.PortForwardingSpec{ID: id, Protocol: r.Protocol, ExternalPort: r.ExternalPort, InternalPort: r.InternalPort,
		InternalIPAddress: r.InternalIPAddress, InternalPortID: r.InternalPortID, Description: r.Description}, err
}

// floatingIPCreate handles POST /v2.0/floatingips. A plural body is
// refused: Neutron does not create floating IPs in bulk.
func (s *Server) floatingIPCreate(w http.ResponseWriter, r *http.Request) error {
	specs, _, err := decodeSpecs[floatingIPReq, topology.FloatingIPSpec](floatingips, r, "", false)
	if err != nil {
		return err
	}
	if err := s.admit(r, floatingips, specs, true); err != nil {
		return err
	}
	f, err := propose[topology.FloatingIP](r.Context(), s, cluster.CmdFloatingIPCreate, cluster.FloatingIPCreate{Spec: specs[0]})
	if err != nil {
		return err
	}
	answerOne(w, r, http.StatusCreated, floatingips.singular, f)
	return nil
}

// floatingIPOf reads the floating IP the path names, as the caller may
// see it: another project's is not found.
func (s *Server) floatingIPOf(r *http.Request) (topology.FloatingIP, error) {
	id, c := r.PathValue("id"), callerOf(r.Context())
	var f topology.FloatingIP
	var ok bool
	s.cluster.Read(func(st *topology.Store) {
		f, ok = st.FloatingIP(id)
		ok = ok && visible(st, c, f)
	})
	if !ok {
		return f, notFoundFor(floatingips, id)
	}
	return f, nil
}

func (s *Server) portForwardingList(w http.ResponseWriter, r *http.Request) error {
	f, err := s.floatingIPOf(r)
	if err != nil {
		return err
	}
	return list(w, r, portForwardings.plural, f.PortForwardings)
}

func (s *Server) portForwardingShow(w http.ResponseWriter, r *http.Request) error {
	f, err := s.floatingIPOf(r)
	if err != nil {
		return err
	}
	id := r.PathValue("pf_id")
	i := slices.IndexFunc(f.PortForwardings, func(pf topology.PortForwarding) bool { return pf.ID == id })
	var pf topology.PortForwarding
	if i >= 0 {
		pf = f.PortForwardings[i]
	}
	return show(w, r, portForwardings.singular, pf, i >= 0, notFoundFor(portForwardings, id))
}

func (s *Server) portForwardingCreate(w http.ResponseWriter, r *http.Request) error {
	return s.portForwardingWrite(w, r, cluster.CmdPortForwardingCreate, "", http.StatusCreated)
}

func (s *Server) portForwardingUpdate(w http.ResponseWriter, r *http.Request) error {
	return s.portForwardingWrite(w, r, cluster.CmdPortForwardingUpdate, r.PathValue("pf_id"), http.StatusOK)
}

// portForwardingWrite creates (pathID "") or updates one port forwarding
// of the floating IP the path names.
func (s *Server) portForwardingWrite(w http.ResponseWriter, r *http.Request, cmd cluster.CommandType, pathID string, status int) error {
	specs, _, err := decodeSpecs[portForwardingReq, topology.PortForwardingSpec](portForwardings, r, pathID, false)
	if err != nil {
		return err
	}
	specs[0].FloatingIPID = r.PathValue("id")
	if err := s.admit(r, portForwardings, specs, pathID == ""); err != nil {
		return err
	}
	pf, err := propose[topology.PortForwarding](r.Context(), s, cmd, cluster.PortForwarding{Spec: specs[0]})
	if err != nil {
		return err
	}
	answerOne(w, r, status, portForwardings.singular, pf)
	return nil
}

func (s *Server) portForwardingDelete(w http.ResponseWriter, r *http.Request) error {
	fip := r.PathValue("id")
	if err := s.check(r, func(st *topology.Store, c Caller) error { return mayChange(st, c, floatingips, fip) }); err != nil {
		return err
	}
	if _, err := s.cluster.Propose(r.Context(), cluster.CmdPortForwardingDelete, cluster.PortForwardingID{FloatingIPID: fip, ID: r.PathValue("pf_id")}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
