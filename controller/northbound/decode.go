package northbound

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// resource describes one Neutron collection.
type resource struct {
	singular, plural string
	// typed are the fields Wyvern acts on; passive ones it stores and
	// returns; anything else is refused.
	typed, passive map[string]bool
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

var (
	networks = resource{"network", "networks",
		set("id", "name", "admin_state_up", "provider:network_type", "provider:segmentation_id", "provider:physical_network",
			"router:external", "mtu", "shared", "description", "project_id", "tenant_id", "tags", "dns_domain"),
		set("availability_zone_hints", "qos_policy_id", "port_security_enabled", "is_default", "segments", "vlan_transparent")}
	subnets = resource{"subnet", "subnets",
		set("id", "network_id", "name", "ip_version", "cidr", "gateway_ip", "allocation_pools", "enable_dhcp",
			"dns_nameservers", "host_routes", "description", "project_id", "tenant_id", "tags", "subnetpool_id", "prefixlen"),
		set("ipv6_ra_mode", "ipv6_address_mode", "use_default_subnetpool",
			"segment_id", "service_types", "dns_publish_fixed_ip")}
	ports = resource{"port", "ports",
		set("id", "network_id", "name", "mac_address", "fixed_ips", "allowed_address_pairs", "port_security_enabled",
			"device_owner", "device_id", "admin_state_up", "binding:host_id", "description", "project_id", "tenant_id",
			"tags", "security_groups", "dns_name", "extra_dhcp_opts"),
		set("binding:vnic_type", "binding:profile", "dns_domain", "qos_policy_id",
			"propagate_uplink_status", "numa_affinity_policy", "data_plane_status")}
	routers = resource{"router", "routers",
		set("id", "name", "admin_state_up", "distributed", "description", "project_id", "tenant_id", "tags",
			"external_gateway_info", "routes"),
		set("ha", "availability_zone_hints", "flavor_id", "enable_ndp_proxy")}
	// Floating IPs and their port forwardings have no passive fields: the
	// store keeps none for them.
	floatingips = resource{"floatingip", "floatingips",
		set("id", "floating_network_id", "floating_ip_address", "subnet_id", "port_id", "fixed_ip_address",
			"description", "project_id", "tenant_id", "tags"),
		set()}
	portForwardings = resource{"port_forwarding", "port_forwardings",
		set("id", "protocol", "external_port", "internal_port", "internal_ip_address", "internal_port_id", "description"),
		set()}
	// Subnet pools are stored, not allocated from; they have no passive
	// fields.
	subnetPools = resource{"subnetpool", "subnetpools",
		set("id", "name", "prefixes", "default_prefixlen", "min_prefixlen", "max_prefixlen", "shared", "is_default",
			"description", "project_id", "tenant_id", "tags"),
		set()}
	// Security groups and rules take no id (Neutron chooses it) and have
	// no passive fields.
	securityGroups = resource{"security_group", "security_groups",
		set("name", "description", "project_id", "tenant_id", "tags", "stateful"),
		set()}
	securityGroupRules = resource{"security_group_rule", "security_group_rules",
		set("security_group_id", "direction", "ethertype", "protocol", "port_range_min", "port_range_max",
			"remote_ip_prefix", "remote_group_id", "remote_address_group_id", "description", "project_id", "tenant_id"),
		set()}
)

// splitFields checks every field of one object against the resource:
// typed fields are re-encoded for strict decoding, passive ones kept raw.
func (r resource) splitFields(obj map[string]json.RawMessage) ([]byte, map[string]json.RawMessage, error) {
	typed := map[string]json.RawMessage{}
	var passive map[string]json.RawMessage
	for k, v := range obj {
		switch {
		case r.typed[k]:
			typed[k] = v
		case r.passive[k]:
			if err := checkPassive(k, v); err != nil {
				return nil, nil, err
			}
			if passive == nil {
				passive = map[string]json.RawMessage{}
			}
			passive[k] = v
		default:
			return nil, nil, badRequest("Unrecognized attribute(s) '%s'", k)
		}
	}
	b, err := json.Marshal(typed)
	return b, passive, err
}

// decodeBody reads {"<singular>": {...}} or, when bulk is allowed,
// {"<plural>": [...]}, and returns the objects' typed and passive parts.
func (r resource) decodeBody(req *http.Request, bulkOK bool) ([][]byte, []map[string]json.RawMessage, bool, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, nil, false, err
	}
	var wrapper map[string]json.RawMessage
	if err := json.Unmarshal(body, &wrapper); err != nil {
		return nil, nil, false, badRequest("malformed JSON: %v", err)
	}
	var objs []map[string]json.RawMessage
	bulk := false
	for k, v := range wrapper {
		switch {
		case k == r.singular && !bulk && objs == nil:
			var o map[string]json.RawMessage
			if err := json.Unmarshal(v, &o); err != nil || o == nil {
				return nil, nil, false, badRequest("'%s' must be an object", k)
			}
			objs = append(objs, o)
		case k == r.plural && !bulkOK:
			return nil, nil, false, badRequest("Bulk operation not supported for %s", k)
		case k == r.plural && objs == nil:
			if err := json.Unmarshal(v, &objs); err != nil {
				return nil, nil, false, badRequest("'%s' must be a list of objects", k)
			}
			if len(objs) == 0 {
				return nil, nil, false, badRequest("'%s' is empty", k)
			}
			if len(objs) > MaxBulk {
				return nil, nil, false, badRequest("a bulk request holds at most %d %s, not %d", MaxBulk, k, len(objs))
			}
			bulk = true
		default:
			return nil, nil, false, badRequest("Unrecognized attribute(s) '%s'", k)
		}
	}
	if objs == nil {
		return nil, nil, false, badRequest("Resource body required: {\"%s\": {...}}", r.singular)
	}
	typed := make([][]byte, len(objs))
	passive := make([]map[string]json.RawMessage, len(objs))
	for i, o := range objs {
		if o == nil {
			return nil, nil, false, badRequest("'%s' must be a list of objects", r.plural)
		}
		if typed[i], passive[i], err = r.splitFields(o); err != nil {
			return nil, nil, false, err
		}
	}
	return typed, passive, bulk, nil
}

// readStrict reads a whole body and decodes it strictly.
func readStrict(r *http.Request, v any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	return strict(b, v)
}

// strict decodes typed fields, refusing wrong types.
func strict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("Invalid input: %v", err)
	}
	return nil
}

// Request bodies: pointer fields distinguish absent from zero.
type networkReq struct {
	ID             *string         `json:"id"`
	Name           *string         `json:"name"`
	AdminStateUp   *bool           `json:"admin_state_up"`
	NetworkType    *string         `json:"provider:network_type"`
	SegmentationID *segmentationID `json:"provider:segmentation_id"`
	// PhysicalNetwork: of a flat or vlan network, fixed at creation.
	PhysicalNetwork *string  `json:"provider:physical_network"`
	External        *bool    `json:"router:external"`
	MTU             *int     `json:"mtu"`
	Shared          *bool    `json:"shared"`
	Description     *string  `json:"description"`
	ProjectID       *string  `json:"project_id"`
	TenantID        *string  `json:"tenant_id"`
	Tags            []string `json:"tags"`
	DNSDomain       *string  `json:"dns_domain"`
}

type subnetReq struct {
	ID              *string                   `json:"id"`
	NetworkID       *string                   `json:"network_id"`
	Name            *string                   `json:"name"`
	IPVersion       *int                      `json:"ip_version"`
	CIDR            *string                   `json:"cidr"`
	GatewayIP       json.RawMessage           `json:"gateway_ip"`
	AllocationPools []topology.AllocationPool `json:"allocation_pools"`
	EnableDHCP      *bool                     `json:"enable_dhcp"`
	DNSNameservers  []string                  `json:"dns_nameservers"`
	HostRoutes      []topology.HostRoute      `json:"host_routes"`
	Description     *string                   `json:"description"`
	ProjectID       *string                   `json:"project_id"`
	TenantID        *string                   `json:"tenant_id"`
	Tags            []string                  `json:"tags"`
	// SubnetPoolID: null is none, as Neutron takes it.
	SubnetPoolID nullable[string] `json:"subnetpool_id"`
	PrefixLen    *intOrStr        `json:"prefixlen"`
}

type fixedIPReq struct {
	SubnetID  string `json:"subnet_id"`
	IPAddress string `json:"ip_address"`
}

type portReq struct {
	ID                  *string                 `json:"id"`
	NetworkID           *string                 `json:"network_id"`
	Name                *string                 `json:"name"`
	MACAddress          *string                 `json:"mac_address"`
	FixedIPs            *[]fixedIPReq           `json:"fixed_ips"`
	AllowedAddressPairs *[]topology.AddressPair `json:"allowed_address_pairs"`
	PortSecurityEnabled *bool                   `json:"port_security_enabled"`
	DeviceOwner         *string                 `json:"device_owner"`
	DeviceID            *string                 `json:"device_id"`
	AdminStateUp        *bool                   `json:"admin_state_up"`
	HostID              *string                 `json:"binding:host_id"`
	Description         *string                 `json:"description"`
	ProjectID           *string                 `json:"project_id"`
	TenantID            *string                 `json:"tenant_id"`
	Tags                []string                `json:"tags"`
	// SecurityGroups: null is none, as Neutron converts it.
	SecurityGroups nullable[[]string] `json:"security_groups"`
	DNSName        *string            `json:"dns_name"`
	ExtraDHCPOpts  *[]extraDHCPOptReq `json:"extra_dhcp_opts"`
}

type subnetPoolReq struct {
	ID               *string   `json:"id"`
	Name             *string   `json:"name"`
	Prefixes         *[]string `json:"prefixes"`
	DefaultPrefixLen *intOrStr `json:"default_prefixlen"`
	MinPrefixLen     *intOrStr `json:"min_prefixlen"`
	MaxPrefixLen     *intOrStr `json:"max_prefixlen"`
	Shared           *bool     `json:"shared"`
	IsDefault        *bool     `json:"is_default"`
	Description      *string   `json:"description"`
	ProjectID        *string   `json:"project_id"`
	TenantID         *string   `json:"tenant_id"`
	Tags             []string  `json:"tags"`
}

// intOrStr is a number, or a string of digits as Neutron's convert_to_int
// takes it.
type intOrStr int

func (v *intOrStr) UnmarshalJSON(b []byte) error {
	if len(b) > 1 && b[0] == '"' {
		b = b[1 : len(b)-1]
	}
	n, err := strconv.Atoi(string(b))
	if err != nil {
		return fmt.Errorf("%s is not an integer", b)
	}
	*v = intOrStr(n)
	return nil
}

func (r subnetPoolReq) spec(pathID string, _ map[string]json.RawMessage) (topology.SubnetPoolSpec, error) {
	id, err := idFor(r.ID, pathID)
	return topology.SubnetPoolSpec{ID: id, Name: r.Name, Prefixes: r.Prefixes, DefaultPrefixLen: (*int)(r.DefaultPrefixLen),
		MinPrefixLen: (*int)(r.MinPrefixLen), MaxPrefixLen: (*int)(r.MaxPrefixLen), Shared: r.Shared, IsDefault: r.IsDefault,
		Description: r.Description, ProjectID: r.ProjectID, TenantID: r.TenantID, Tags: r.Tags}, err
}

// extraDHCPOptReq is one of Neutron's extra_dhcp_opts; a null value
// removes the option on update.
type extraDHCPOptReq struct {
	OptName   string  `json:"opt_name"`
	OptValue  *string `json:"opt_value"`
	IPVersion *int    `json:"ip_version"`
}

type routerReq struct {
	ID           *string  `json:"id"`
	Name         *string  `json:"name"`
	AdminStateUp *bool    `json:"admin_state_up"`
	Distributed  *bool    `json:"distributed"`
	Description  *string  `json:"description"`
	ProjectID    *string  `json:"project_id"`
	TenantID     *string  `json:"tenant_id"`
	Tags         []string `json:"tags"`
	// ExternalGatewayInfo: null or {} clears the gateway.
	ExternalGatewayInfo nullable[gatewayInfoReq] `json:"external_gateway_info"`
	// Routes: the router's static routes, all of them (a PUT replaces
	// them); null is none, as Neutron converts it.
	Routes nullable[[]topology.HostRoute] `json:"routes"`
}

// gatewayInfoReq is a router's external_gateway_info as a client gives
// it. The omitempty tags keep an absent member absent when it is encoded
// again (the decode fuzz test round-trips requests).
type gatewayInfoReq struct {
	NetworkID        *string       `json:"network_id,omitempty"`
	EnableSNAT       *bool         `json:"enable_snat,omitempty"`
	ExternalFixedIPs *[]fixedIPReq `json:"external_fixed_ips,omitempty"`
}

// nullable is a field whose JSON null says something (clear the gateway,
// disassociate the floating IP) that its absence does not; a pointer
// field cannot tell the two apart. Its value is decoded as strictly as
// the body around it.
type nullable[T any] struct {
	Set   bool // the field is in the body
	Null  bool // as null
	Value T
}

func (n *nullable[T]) UnmarshalJSON(b []byte) error {
	*n = nullable[T]{Set: true}
	if string(b) == "null" {
		n.Null = true
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(&n.Value)
}

func (n nullable[T]) MarshalJSON() ([]byte, error) {
	if !n.Set || n.Null {
		return []byte("null"), nil
	}
	return json.Marshal(n.Value)
}

// IsZero is true of an absent field (for encoding/json's omitzero).
func (n nullable[T]) IsZero() bool { return !n.Set }

// segmentationID is a number, or a string of digits as Neutron's
// convert_to_int takes it (the openstack CLI sends "77").
type segmentationID uint32

func (s *segmentationID) UnmarshalJSON(b []byte) error {
	if len(b) > 1 && b[0] == '"' {
		b = b[1 : len(b)-1]
	}
	v, err := strconv.ParseUint(string(b), 10, 32)
	if err != nil {
		return fmt.Errorf("provider:segmentation_id %s is not an integer", b)
	}
	*s = segmentationID(v)
	return nil
}

// idFor picks the object's id: given on create (a UUID the client chose) or
// generated; on update it must match the path if present.
func idFor(given *string, pathID string) (string, error) {
	switch {
	case pathID != "" && given != nil && *given != pathID:
		return "", badRequest("id %q in the body differs from the path", *given)
	case pathID != "":
		return pathID, nil
	case given != nil && *given == "":
		return "", badRequest("id must not be empty")
	case given != nil:
		return *given, nil
	}
	return newUUID(), nil
}

func (r networkReq) spec(pathID string, extra map[string]json.RawMessage) (topology.NetworkSpec, error) {
	id, err := idFor(r.ID, pathID)
	return topology.NetworkSpec{Extra: extra, ID: id, Name: r.Name, AdminStateUp: r.AdminStateUp, NetworkType: r.NetworkType,
		SegmentationID: (*uint32)(r.SegmentationID), PhysicalNetwork: r.PhysicalNetwork, External: r.External, MTU: r.MTU,
		Shared: r.Shared, Description: r.Description, ProjectID: r.ProjectID, TenantID: r.TenantID, Tags: r.Tags,
		DNSDomain: r.DNSDomain}, err
}

func (r subnetReq) spec(pathID string, extra map[string]json.RawMessage) (topology.SubnetSpec, error) {
	id, err := idFor(r.ID, pathID)
	sp := topology.SubnetSpec{Extra: extra, ID: id, NetworkID: r.NetworkID, Name: r.Name, IPVersion: r.IPVersion, CIDR: r.CIDR,
		AllocationPools: r.AllocationPools, EnableDHCP: r.EnableDHCP, DNSNameservers: r.DNSNameservers,
		HostRoutes: r.HostRoutes, Description: r.Description, ProjectID: r.ProjectID, TenantID: r.TenantID, Tags: r.Tags,
		PrefixLen: (*int)(r.PrefixLen)}
	if r.SubnetPoolID.Set {
		v := r.SubnetPoolID.Value // "" for null
		sp.SubnetPoolID = &v
	}
	switch {
	case r.GatewayIP == nil:
	case string(r.GatewayIP) == "null":
		sp.GatewayNone = true
	default:
		var g string
		if json.Unmarshal(r.GatewayIP, &g) != nil {
			return sp, badRequest("gateway_ip must be an address or null")
		}
		sp.GatewayIP = &g
	}
	return sp, err
}

func (r portReq) spec(pathID string, extra map[string]json.RawMessage) (topology.PortSpec, error) {
	id, err := idFor(r.ID, pathID)
	sp := topology.PortSpec{Extra: extra, ID: id, NetworkID: r.NetworkID, Name: r.Name, MACAddress: r.MACAddress,
		AllowedAddressPairs: r.AllowedAddressPairs, PortSecurityEnabled: r.PortSecurityEnabled, DeviceOwner: r.DeviceOwner,
		DeviceID: r.DeviceID, AdminStateUp: r.AdminStateUp, HostID: r.HostID, Description: r.Description,
		ProjectID: r.ProjectID, TenantID: r.TenantID, Tags: r.Tags, DNSName: r.DNSName}
	if r.SecurityGroups.Set {
		sp.SecurityGroups = append([]string{}, r.SecurityGroups.Value...)
	}
	if r.ExtraDHCPOpts != nil {
		opts := make([]topology.ExtraDHCPOpt, len(*r.ExtraDHCPOpts))
		for i, o := range *r.ExtraDHCPOpts {
			opts[i] = topology.ExtraDHCPOpt{OptName: o.OptName}
			if o.OptValue != nil {
				opts[i].OptValue = *o.OptValue
			}
			if o.IPVersion != nil {
				opts[i].IPVersion = *o.IPVersion
			}
		}
		sp.ExtraDHCPOpts = &opts
	}
	sp.FixedIPs = fixedIPSpecs(r.FixedIPs)
	return sp, err
}

func fixedIPSpecs(req *[]fixedIPReq) *[]topology.FixedIPSpec {
	if req == nil {
		return nil
	}
	f := make([]topology.FixedIPSpec, len(*req))
	for i, x := range *req {
		f[i] = topology.FixedIPSpec{SubnetID: x.SubnetID, IPAddress: x.IPAddress}
	}
	return &f
}

func (r routerReq) spec(pathID string, extra map[string]json.RawMessage) (topology.RouterSpec, error) {
	id, err := idFor(r.ID, pathID)
	if err != nil {
		return topology.RouterSpec{}, err
	}
	sp := topology.RouterSpec{Extra: extra, ID: id, Name: r.Name, AdminStateUp: r.AdminStateUp, Distributed: r.Distributed,
		Description: r.Description, ProjectID: r.ProjectID, TenantID: r.TenantID, Tags: r.Tags}
	if r.ExternalGatewayInfo.Set {
		g, err := gatewaySpec(r.ExternalGatewayInfo)
		if err != nil {
			return sp, err
		}
		sp.Gateway = &g
		if !g.Clear {
			// The port that will hold the gateway's addresses, should the
			// store need a new one: ids are chosen before proposing.
			sp.GatewayPortID = newUUID()
		}
	}
	if r.Routes.Set {
		routes := r.Routes.Value
		if routes == nil {
			routes = []topology.HostRoute{}
		}
		sp.Routes = &routes
	}
	return sp, nil
}

// gatewaySpec is the store's reading of external_gateway_info: null or {}
// clears it, as in Neutron; anything else names the external network.
func gatewaySpec(f nullable[gatewayInfoReq]) (topology.GatewaySpec, error) {
	info := f.Value
	if f.Null || info == (gatewayInfoReq{}) {
		return topology.GatewaySpec{Clear: true}, nil
	}
	if info.NetworkID == nil || *info.NetworkID == "" {
		return topology.GatewaySpec{}, invalidInput("Invalid input for external_gateway_info. Reason: network_id is required.")
	}
	return topology.GatewaySpec{NetworkID: *info.NetworkID, EnableSNAT: info.EnableSNAT, FixedIPs: fixedIPSpecs(info.ExternalFixedIPs)}, nil
}

// boundedReq is a request body with bounds on its fields (bounds.go).
type boundedReq interface{ bounds() error }

// decodeReqs decodes a create or update body into requests, each within
// its bounds, and their passive fields.
func decodeReqs[Req any](r resource, req *http.Request, bulkOK bool) ([]Req, []map[string]json.RawMessage, bool, error) {
	typed, passive, bulk, err := r.decodeBody(req, bulkOK)
	if err != nil {
		return nil, nil, false, err
	}
	reqs := make([]Req, len(typed))
	for i := range typed {
		if err := strict(typed[i], &reqs[i]); err != nil {
			return nil, nil, false, err
		}
		if b, ok := any(reqs[i]).(boundedReq); ok {
			if err := b.bounds(); err != nil {
				return nil, nil, false, err
			}
		}
	}
	return reqs, passive, bulk, nil
}

// decodeSpecs decodes a create or update body into store specs.
func decodeSpecs[Req specReq[Spec], Spec any](r resource, req *http.Request, pathID string, bulkOK bool) ([]Spec, bool, error) {
	reqs, passive, bulk, err := decodeReqs[Req](r, req, bulkOK)
	if err != nil {
		return nil, false, err
	}
	specs := make([]Spec, len(reqs))
	for i, rq := range reqs {
		if specs[i], err = rq.spec(pathID, passive[i]); err != nil {
			return nil, false, err
		}
	}
	return specs, bulk, nil
}
