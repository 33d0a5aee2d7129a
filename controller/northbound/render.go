package northbound

import (
	"encoding/json"
	"net/http"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// render turns an object into its Neutron JSON map: passive fields at the
// top level, Wyvern's own keys kept.
func render(v any) map[string]any {
	b, _ := json.Marshal(neutronView(v))
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if extra, ok := m["extra"].(map[string]any); ok {
		for k, x := range extra {
			// A field Wyvern now types wins over the same name stored
			// passively by an older release.
			if _, typed := m[k]; !typed {
				m[k] = x
			}
		}
		delete(m, "extra")
	}
	return m
}

// renderRaw encodes an object as Neutron JSON in one pass when it has no
// passive fields to splice in (the common case, and the one that matters
// for bulk), else through render.
func renderRaw(v any) json.RawMessage {
	v = neutronView(v)
	if e, ok := v.(interface{ HasExtra() bool }); !ok || !e.HasExtra() {
		if b, err := json.Marshal(v); err == nil {
			return b
		}
	}
	b, _ := json.Marshal(render(v))
	return b
}

// neutronView is an object as Neutron shows it, where the store's model
// says it otherwise; anything else is shown as it is.
func neutronView(v any) any {
	switch o := v.(type) {
	case topology.Network:
		return networkView{Network: o, PhysicalNetwork: nilIfEmpty(o.PhysicalNetwork), SegmentationID: segmentationOf(o)}
	case topology.Subnet:
		return subnetView{Subnet: o, SubnetPoolID: nilIfEmpty(o.SubnetPoolID)}
	case topology.Router:
		return routerView{Router: o}
	case topology.FloatingIP:
		return floatingIPView{ID: o.ID, FloatingNetworkID: o.FloatingNetworkID, FloatingIPAddress: o.FloatingIPAddress,
			PortID: nilIfEmpty(o.PortID), FixedIPAddress: nilIfEmpty(o.FixedIPAddress), RouterID: nilIfEmpty(o.RouterID),
			Status: o.Status, Description: o.Description, ProjectID: o.ProjectID, TenantID: o.TenantID, Tags: o.Tags,
			PortForwardings: o.PortForwardings, RevisionNumber: o.RevisionNumber, Stamps: o.Stamps}
	case topology.SecurityGroup:
		return groupView(o)
	case topology.SecurityGroupRule:
		return ruleView(o, true)
	}
	return v
}

// The views shadow a field of the object they embed with one of the same
// JSON name: encoding/json encodes the shallower of the two. Fields the
// object gains later are shown without a change here.

// networkView: an overlay has no physical network and a flat network no
// segmentation id; Neutron shows each as null.
type networkView struct {
	topology.Network
	PhysicalNetwork *string `json:"provider:physical_network"`
	SegmentationID  *uint32 `json:"provider:segmentation_id"`
}

func segmentationOf(n topology.Network) *uint32 {
	if n.NetworkType == topology.TypeFlat {
		return nil
	}
	return &n.SegmentationID
}

// subnetView: a subnet cut from no pool has subnetpool_id null.
type subnetView struct {
	topology.Subnet
	SubnetPoolID *string `json:"subnetpool_id"`
}

// routerView hides the router's gateway port, the store's own link to
// the port that holds external_gateway_info's addresses.
type routerView struct {
	topology.Router
	GatewayPort struct{} `json:"wyvern:gateway_port,omitzero"`
}

// floatingIPView is a floating IP as Neutron shows one: no association
// is null, and the store's own fields (its holder port, its key) are left
// out. It names every field, so that a field the store adds is not shown
// until it is meant to be.
type floatingIPView struct {
	ID                string                    `json:"id"`
	FloatingNetworkID string                    `json:"floating_network_id"`
	FloatingIPAddress string                    `json:"floating_ip_address"`
	PortID            *string                   `json:"port_id"`
	FixedIPAddress    *string                   `json:"fixed_ip_address"`
	RouterID          *string                   `json:"router_id"`
	Status            string                    `json:"status"`
	Description       string                    `json:"description"`
	ProjectID         string                    `json:"project_id"`
	TenantID          string                    `json:"tenant_id"`
	Tags              []string                  `json:"tags"`
	PortForwardings   []topology.PortForwarding `json:"port_forwardings"`
	RevisionNumber    uint64                    `json:"revision_number"`
	topology.Stamps
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// writeCollection writes {"<key>": [objects...]} from pre-encoded objects.
func writeCollection(w http.ResponseWriter, status int, key string, objs []json.RawMessage) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	size := len(key) + 8
	for _, o := range objs {
		size += len(o) + 1
	}
	b := make([]byte, 0, size)
	b = append(b, `{"`...)
	b = append(b, key...)
	b = append(b, `":[`...)
	for i, o := range objs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, o...)
	}
	b = append(b, "]}\n"...)
	_, _ = w.Write(b)
}

// writeObject answers {"key": obj} with obj as it was encoded: what
// writeJSON of that map writes, without encoding the map and scanning
// obj again.
func writeObject(w http.ResponseWriter, status int, key string, obj json.RawMessage) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if len(obj) == 0 {
		obj = json.RawMessage("null")
	}
	b := make([]byte, 0, len(key)+len(obj)+8)
	b = append(b, `{"`...)
	b = append(b, key...)
	b = append(b, `":`...)
	b = append(b, obj...)
	b = append(b, "}\n"...)
	_, _ = w.Write(b)
}
