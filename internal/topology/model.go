// Package topology is the logical topology of the cloud — networks,
// subnets, ports, routers, chassis — as one deterministic in-memory store.
// The raft FSM applies commands to it; the apps read it. Every allocation
// (keys, segmentation ids, MACs, IPs, DVR MACs) is decided here from the
// store's own state: no clock, no randomness, no map order, so every
// replica that applies the same log holds the same topology.
package topology

import "encoding/json"

// Network is a logical L2 network (Neutron "network").
type Network struct {
	// Extra holds Neutron fields Wyvern stores and returns but does not
	// act on (availability_zone_hints, binding:profile, ...).
	Extra          map[string]json.RawMessage `json:"extra,omitempty"`
	ID             string                     `json:"id"`
	Name           string                     `json:"name"`
	AdminStateUp   bool                       `json:"admin_state_up"`
	NetworkType    string                     `json:"provider:network_type"`
	SegmentationID uint32                     `json:"provider:segmentation_id"`
	MTU            int                        `json:"mtu"`
	// PhysicalNetwork is the physical network of a flat or vlan network:
	// a name in some chassis' bridge mappings ("" for overlays).
	PhysicalNetwork string `json:"provider:physical_network"`
	// External marks a network routers use as their gateway and floating
	// IPs come from (router:external).
	External    bool     `json:"router:external"`
	Status      string   `json:"status"`
	Shared      bool     `json:"shared"`
	Description string   `json:"description"`
	ProjectID   string   `json:"project_id"`
	TenantID    string   `json:"tenant_id"`
	Tags        []string `json:"tags"`
	Subnets     []string `json:"subnets"`
	// DNSDomain is the domain of its ports' dns_names (Neutron's
	// dns-integration), "" for none.
	DNSDomain string `json:"dns_domain"`
	// Key is the network's small integer key: the pipeline's NetworkKey.
	Key uint32 `json:"wyvern:key"`
	// RevisionNumber is the raft index of the last change.
	RevisionNumber uint64 `json:"revision_number"`
	Stamps
}

// AllocationPool is a range of addresses a subnet hands out.
type AllocationPool struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// HostRoute is a route a subnet announces (stored, not acted on).
type HostRoute struct {
	Destination string `json:"destination"`
	NextHop     string `json:"nexthop"`
}

// Subnet is an IPv4 prefix on a network.
type Subnet struct {
	// Extra holds Neutron fields Wyvern stores and returns but does not
	// act on (availability_zone_hints, binding:profile, ...).
	Extra           map[string]json.RawMessage `json:"extra,omitempty"`
	ID              string                     `json:"id"`
	NetworkID       string                     `json:"network_id"`
	Name            string                     `json:"name"`
	IPVersion       int                        `json:"ip_version"`
	CIDR            string                     `json:"cidr"`
	GatewayIP       *string                    `json:"gateway_ip"`
	AllocationPools []AllocationPool           `json:"allocation_pools"`
	EnableDHCP      bool                       `json:"enable_dhcp"`
	DNSNameservers  []string                   `json:"dns_nameservers"`
	HostRoutes      []HostRoute                `json:"host_routes"`
	Description     string                     `json:"description"`
	ProjectID       string                     `json:"project_id"`
	TenantID        string                     `json:"tenant_id"`
	Tags            []string                   `json:"tags"`
	// SubnetPoolID is the subnet pool its CIDR was cut from, "" for none.
	SubnetPoolID   string `json:"subnetpool_id"`
	RevisionNumber uint64 `json:"revision_number"`
	Stamps
}

// FixedIP is one address of a port.
type FixedIP struct {
	SubnetID  string `json:"subnet_id"`
	IPAddress string `json:"ip_address"`
}

// AddressPair lets a port also send from and answer for another address
// (VRRP, keepalived).
type AddressPair struct {
	IPAddress  string `json:"ip_address"`
	MACAddress string `json:"mac_address"`
}

// Port is a logical switch port.
type Port struct {
	// Extra holds Neutron fields Wyvern stores and returns but does not
	// act on (availability_zone_hints, binding:profile, ...).
	Extra               map[string]json.RawMessage `json:"extra,omitempty"`
	ID                  string                     `json:"id"`
	NetworkID           string                     `json:"network_id"`
	Name                string                     `json:"name"`
	MACAddress          string                     `json:"mac_address"`
	FixedIPs            []FixedIP                  `json:"fixed_ips"`
	AllowedAddressPairs []AddressPair              `json:"allowed_address_pairs"`
	PortSecurityEnabled bool                       `json:"port_security_enabled"`
	DeviceOwner         string                     `json:"device_owner"`
	DeviceID            string                     `json:"device_id"`
	AdminStateUp        bool                       `json:"admin_state_up"`
	HostID              string                     `json:"binding:host_id"`
	// VIFType, VIFDetails and VNICType are what Nova's os-vif reads to
	// plug a VM; the store fills them in when it hands a port out.
	VIFType    string         `json:"binding:vif_type"`
	VIFDetails map[string]any `json:"binding:vif_details"`
	VNICType   string         `json:"binding:vnic_type"`
	// DNSName is the port's host name in its network's DNSDomain.
	DNSName string `json:"dns_name"`
	// ExtraDHCPOpts are DHCP options of this port's own (Neutron's
	// extra_dhcp_opt extension).
	ExtraDHCPOpts  []ExtraDHCPOpt `json:"extra_dhcp_opts"`
	Status         string         `json:"status"`
	Description    string         `json:"description"`
	ProjectID      string         `json:"project_id"`
	TenantID       string         `json:"tenant_id"`
	Tags           []string       `json:"tags"`
	SecurityGroups []string       `json:"security_groups"`
	// Key is the port's small integer key: the pipeline's port keys.
	Key uint32 `json:"wyvern:key"`
	// OFPort is the OpenFlow port number of the port's interface on the
	// bridge of its chassis (HostID), as that chassis reported it.
	OFPort         uint32 `json:"wyvern:ofport,omitempty"`
	RevisionNumber uint64 `json:"revision_number"`
	Stamps
}

// Router is a distributed logical router.
type Router struct {
	// Extra holds Neutron fields Wyvern stores and returns but does not
	// act on (availability_zone_hints, binding:profile, ...).
	Extra        map[string]json.RawMessage `json:"extra,omitempty"`
	ID           string                     `json:"id"`
	Name         string                     `json:"name"`
	AdminStateUp bool                       `json:"admin_state_up"`
	Status       string                     `json:"status"`
	Distributed  bool                       `json:"distributed"`
	Description  string                     `json:"description"`
	ProjectID    string                     `json:"project_id"`
	TenantID     string                     `json:"tenant_id"`
	Tags         []string                   `json:"tags"`
	// ExternalGateway is the router's leg on an external network, nil
	// for none; GatewayPortID the port that holds its addresses.
	ExternalGateway *ExternalGateway `json:"external_gateway_info"`
	GatewayPortID   string           `json:"wyvern:gateway_port,omitempty"`
	// Routes are the router's static routes (Neutron's extraroute).
	Routes         []HostRoute `json:"routes"`
	Key            uint32      `json:"wyvern:key"`
	RevisionNumber uint64      `json:"revision_number"`
	Stamps
}

// ExternalGateway is a router's address on an external network: the
// source of its SNAT, and where its next hop to the outside is.
type ExternalGateway struct {
	NetworkID        string    `json:"network_id"`
	EnableSNAT       bool      `json:"enable_snat"`
	ExternalFixedIPs []FixedIP `json:"external_fixed_ips"`
}

// FloatingIP is an address of an external network that a port's fixed
// IP is reached by from outside (and sends from), translated on the
// chassis where the port lives; or, with port forwardings, some of its
// TCP/UDP ports.
type FloatingIP struct {
	ID                string `json:"id"`
	FloatingNetworkID string `json:"floating_network_id"`
	FloatingIPAddress string `json:"floating_ip_address"`
	// PortID and FixedIPAddress: the association, "" for none.
	PortID         string `json:"port_id"`
	FixedIPAddress string `json:"fixed_ip_address"`
	// RouterID is the router that reaches the associated port's subnet
	// and has its gateway on the floating network.
	RouterID        string           `json:"router_id"`
	Status          string           `json:"status"`
	Description     string           `json:"description"`
	ProjectID       string           `json:"project_id"`
	TenantID        string           `json:"tenant_id"`
	Tags            []string         `json:"tags"`
	PortForwardings []PortForwarding `json:"port_forwardings"`
	// HolderPortID is the port (device_owner network:floatingip) that
	// holds the address on the floating network.
	HolderPortID   string `json:"wyvern:holder_port"`
	Key            uint32 `json:"wyvern:key"`
	RevisionNumber uint64 `json:"revision_number"`
	Stamps
}

// PortForwarding maps a TCP or UDP port of a floating IP to a port of an
// internal address (Neutron's floating-ip-port-forwarding).
type PortForwarding struct {
	ID                string `json:"id"`
	Protocol          string `json:"protocol"`
	ExternalPort      uint16 `json:"external_port"`
	InternalPort      uint16 `json:"internal_port"`
	InternalIPAddress string `json:"internal_ip_address"`
	InternalPortID    string `json:"internal_port_id"`
	Description       string `json:"description"`
}

// Neighbour is the MAC of an address on an external network outside
// the cloud (a router's next hop), learned by ARP from a gateway chassis.
type Neighbour struct {
	NetworkID string `json:"network_id"`
	IP        string `json:"ip_address"`
	MAC       string `json:"mac_address"`
}

// Chassis is a hypervisor with an integration bridge.
type Chassis struct {
	Name       string   `json:"name"`
	EncapIP    string   `json:"encap_ip"`
	Encaps     []string `json:"encaps"`
	DVRMAC     string   `json:"dvr_mac"`
	DatapathID string   `json:"datapath_id"`
	NodeID     string   `json:"node_id"`
	Connected  bool     `json:"connected"`
	LastSeen   string   `json:"last_seen"`
	// Bridge and DatapathType: the chassis' integration bridge.
	Bridge       string `json:"bridge,omitempty"`
	DatapathType string `json:"datapath_type,omitempty"`
	// BridgeMappings are the physical networks the chassis reaches, each
	// through an OVS bridge holding its uplink.
	BridgeMappings map[string]string `json:"bridge_mappings,omitempty"`
	// Gateway: the chassis may host routers' SNAT.
	Gateway bool `json:"gateway,omitempty"`
	// Unreachable: the cluster's leader lost contact with the chassis'
	// node; it is not chosen for anything until it reports again.
	Unreachable bool   `json:"unreachable,omitempty"`
	Key         uint32 `json:"wyvern:key"`
}

// Reaches reports whether the chassis can carry a network: an overlay it
// has the encapsulation of, or a provider network whose physical network
// it has a bridge mapping for.
func (c Chassis) Reaches(n Network) bool {
	if IsProvider(n.NetworkType) {
		_, ok := c.BridgeMappings[n.PhysicalNetwork]
		return ok
	}
	return true
}

// Member is a controller node's addresses, registered when it joins so any
// node can forward to any other.
type Member struct {
	ID           string `json:"id"`
	RaftAddr     string `json:"raft_address"`
	APIAddr      string `json:"api_address"`
	OpenFlowAddr string `json:"openflow_address"`
	// Unreachable: the leader's word that the node stopped answering
	// raft's heartbeats; such a node is master of no bridge.
	Unreachable bool `json:"unreachable,omitempty"`
}

// Status values of networks, ports and routers.
const (
	StatusActive = "ACTIVE"
	StatusDown   = "DOWN"
)

// Network types: overlays (vxlan, gre) and provider networks (flat,
// vlan), which reach a physical network through a chassis' bridge
// mapping.
const (
	TypeVXLAN = "vxlan"
	TypeGRE   = "gre"
	TypeFlat  = "flat"
	TypeVLAN  = "vlan"
)

// IsProvider reports whether a network type is carried by a physical
// network rather than by tunnels.
func IsProvider(typ string) bool { return typ == TypeFlat || typ == TypeVLAN }

// MaxVLAN is the largest VLAN id a vlan network may have.
const MaxVLAN = 4094

// Device owners of the ports the topology creates itself: a router's
// interface on a subnet, a router's gateway on an external network, and
// the holder of a floating IP's address.
const (
	OwnerRouterInterface = "network:router_interface_distributed"
	OwnerRouterGateway   = "network:router_gateway"
	OwnerFloatingIP      = "network:floatingip"
)

// HasExtra reports whether the object carries passive Neutron fields.
func (n Network) HasExtra() bool { return len(n.Extra) > 0 }

// HasExtra reports whether the object carries passive Neutron fields.
func (s Subnet) HasExtra() bool { return len(s.Extra) > 0 }

// HasExtra reports whether the object carries passive Neutron fields.
func (p Port) HasExtra() bool { return len(p.Extra) > 0 }

// HasExtra reports whether the object carries passive Neutron fields.
func (r Router) HasExtra() bool { return len(r.Extra) > 0 }

// ExtraDHCPOpt is one DHCP option of a port's own: a name (as Neutron and
// dnsmasq spell it, e.g. "mtu", "dns-server") or an option number, and its
// value as text.
type ExtraDHCPOpt struct {
	OptName   string `json:"opt_name"`
	OptValue  string `json:"opt_value"`
	IPVersion int    `json:"ip_version"`
}

// VIF types, as Neutron reports them.
const (
	VIFTypeOVS           = "ovs"
	VIFTypeUnbound       = "unbound"
	VIFTypeBindingFailed = "binding_failed"
	VNICNormal           = "normal"
)

// Stamps are the times of Neutron's standard attributes: when the object
// was created and last changed, in ISO 8601 UTC to the second
// ("2026-12-01T05:00:00Z"). They come from the raft entry that made the
// change (the time its leader appended it), never from a replica's
// clock, so every replica holds the same ones. An object restored from a
// snapshot older than them has none ("").
type Stamps struct {
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

// stamp records a change at now; the first one is the creation.
func (st *Stamps) stamp(now string) {
	if st.CreatedAt == "" {
		st.CreatedAt = now
	}
	st.UpdatedAt = now
}
