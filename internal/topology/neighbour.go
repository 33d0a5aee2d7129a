package topology

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
)

// --- learned neighbours and chassis liveness --------------------------------

// MaxNeighbours bounds the learned neighbours of one network: what the
// physical network says is bounded, whatever it says.
const MaxNeighbours = 1024

// LearnNeighbour records the MAC of an address on an external network;
// changed is false when it was known already.
func (s *Store) LearnNeighbour(_ uint64, nb Neighbour) (changed bool, err error) {
	n, ok := s.networks[nb.NetworkID]
	if !ok {
		return false, notFound("NetworkNotFound", "Network %s could not be found.", nb.NetworkID)
	}
	ip, err := parseIPv4(nb.IP)
	if err != nil {
		return false, err
	}
	mac, err := parseMAC(nb.MAC)
	if err != nil {
		return false, err
	}
	if s.neighbours[n.ID] == nil {
		s.neighbours[n.ID] = map[netip.Addr]string{}
	}
	if s.neighbours[n.ID][ip] == mac {
		return false, nil
	}
	if _, known := s.neighbours[n.ID][ip]; !known && len(s.neighbours[n.ID]) >= MaxNeighbours {
		return false, conflict("NeighbourTableFull", "Network %s already has %d learned neighbours", n.ID, MaxNeighbours)
	}
	s.neighbours[n.ID][ip] = mac
	return true, nil
}

// EachNeighbour calls fn with every learned neighbour, in a fixed order.
func (s *Store) EachNeighbour(fn func(Neighbour)) {
	for _, network := range sortedKeys(s.neighbours) {
		m := s.neighbours[network]
		ips := make([]netip.Addr, 0, len(m))
		for ip := range m {
			ips = append(ips, ip)
		}
		slices.SortFunc(ips, netip.Addr.Compare)
		for _, ip := range ips {
			fn(Neighbour{NetworkID: network, IP: ip.String(), MAC: m[ip]})
		}
	}
}

// SetChassisReachable records whether the cluster's leader reaches a
// chassis' node; changed is false when nothing changed.
func (s *Store) SetChassisReachable(i uint64, name string, reachable bool) (bool, error) {
	c, ok := s.chassis[name]
	if !ok {
		return false, notFound("ChassisNotFound", "Chassis %s could not be found.", name)
	}
	if c.Unreachable == !reachable {
		return false, nil
	}
	c.Unreachable = !reachable
	s.touchMastership(i)
	return true, nil
}

// ChassisOfNode returns the chassis a controller node registered.
func (s *Store) ChassisOfNode(node string) []string {
	var out []string
	for _, name := range sortedKeys(s.chassis) {
		if s.chassis[name].NodeID == node {
			out = append(out, name)
		}
	}
	return out
}

// fipRecord and neighbour records carry floating IPs and learned
// neighbours through snapshots.
func (s *Store) restoreFloatingIP(raw json.RawMessage) error {
	var f FloatingIP
	if err := json.Unmarshal(raw, &f); err != nil {
		return err
	}
	if f.ID == "" {
		return fmt.Errorf("floating IP without id")
	}
	s.fips[f.ID] = &f
	return nil
}

func (s *Store) restoreNeighbour(raw json.RawMessage) error {
	var nb Neighbour
	if err := json.Unmarshal(raw, &nb); err != nil {
		return err
	}
	ip, err := netip.ParseAddr(nb.IP)
	if err != nil {
		return err
	}
	if s.neighbours[nb.NetworkID] == nil {
		s.neighbours[nb.NetworkID] = map[netip.Addr]string{}
	}
	s.neighbours[nb.NetworkID][ip] = nb.MAC
	return nil
}
