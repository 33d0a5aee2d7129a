package topology

// Change is one committed change to the topology, as the change feed
// carries it: what the raft entry at Index did to which object.
type Change struct {
	Index    uint64 `json:"index"`
	Resource string `json:"resource"` // network, subnet, port, router, chassis, member, vip, floatingip, neighbour, securitygroup
	Op       string `json:"op"`       // create, update, delete
	ID       string `json:"id"`
}

// Resources a Change names.
const (
	ResourceNetwork = "network"
	ResourceSubnet  = "subnet"
	ResourcePort    = "port"
	ResourceRouter  = "router"
	ResourceChassis = "chassis"
	ResourceMember  = "member"
	// ResourceVIP: the holder of a shared address changed; ID is a port
	// that gained or lost it.
	ResourceVIP = "vip"
	// ResourceFloatingIP: a floating IP, its association or its port
	// forwardings changed.
	ResourceFloatingIP = "floatingip"
	// ResourceNeighbour: a next hop's MAC on an external network was
	// learned; ID is the network.
	ResourceNeighbour = "neighbour"
	// ResourceSecurityGroup: a security group or its rules changed; ID
	// is the group.
	ResourceSecurityGroup = "securitygroup"
)
