package topology

// SecurityGroup is a named set of rules that the ports holding it are
// filtered by (Neutron's security group); its ports are its members,
// whose addresses (fixed IPs and allowed address pairs) other groups'
// rules may name as a remote group.
type SecurityGroup struct {
	ID          string              `json:"id"`
	Name        string              `json:"name"`
	Description string              `json:"description"`
	ProjectID   string              `json:"project_id"`
	TenantID    string              `json:"tenant_id"`
	Tags        []string            `json:"tags"`
	Stateful    bool                `json:"stateful"`
	Rules       []SecurityGroupRule `json:"security_group_rules"`
	// Key is the group's small integer key (conjunction ids, cookies).
	Key            uint32 `json:"wyvern:key"`
	RevisionNumber uint64 `json:"revision_number"`
	Stamps
}

// SecurityGroupRule admits new connections in one direction: from
// (ingress) or to (egress) the port, of a protocol and ports, from or to
// an address prefix or the members of a remote group. Traffic no rule
// admits is dropped; replies of admitted connections pass (stateful).
type SecurityGroupRule struct {
	ID              string `json:"id"`
	SecurityGroupID string `json:"security_group_id"`
	Direction       string `json:"direction"` // ingress or egress
	Ethertype       string `json:"ethertype"` // IPv4
	// Protocol is a name (tcp, udp, icmp, ...) or a number as text, ""
	// for any.
	Protocol string `json:"protocol"`
	// PortRangeMin and PortRangeMax: TCP/UDP destination ports, or ICMP
	// type and code; nil for any.
	PortRangeMin   *int   `json:"port_range_min"`
	PortRangeMax   *int   `json:"port_range_max"`
	RemoteIPPrefix string `json:"remote_ip_prefix"` // "" for none
	RemoteGroupID  string `json:"remote_group_id"`  // "" for none
	Description    string `json:"description"`
	ProjectID      string `json:"project_id"`
	TenantID       string `json:"tenant_id"`
	// Key is the rule's small integer key, unique in the cloud: its
	// conjunction id on every bridge.
	Key            uint32 `json:"wyvern:key"`
	RevisionNumber uint64 `json:"revision_number"`
	Stamps
}

// Rule directions.
const (
	DirectionIngress = "ingress"
	DirectionEgress  = "egress"
)

// DefaultSecurityGroupName is the name of the group every project has,
// which a port that names none is given.
const DefaultSecurityGroupName = "default"
