package topology

import (
	"net/netip"
	"sort"
)

// claims reports whether a port's allowed address pairs cover ip.
func claims(p *Port, ip netip.Addr) bool {
	for _, ap := range p.AllowedAddressPairs {
		if a, err := netip.ParseAddr(ap.IPAddress); err == nil && a == ip {
			return true
		}
		if pfx, err := netip.ParsePrefix(ap.IPAddress); err == nil && pfx.Contains(ip) {
			return true
		}
	}
	return false
}

// SetVIPOwner records which port holds a shared address (a VIP in several
// ports' allowed address pairs): the one that last announced it with a
// gratuitous ARP. It returns the previous owner ("" for none).
func (s *Store) SetVIPOwner(_ uint64, portID, ip string) (string, error) {
	p, ok := s.ports[portID]
	if !ok {
		return "", notFound("PortNotFound", "Port %s could not be found.", portID)
	}
	addr, err := parseIPv4(ip)
	if err != nil {
		return "", err
	}
	if !claims(p, addr) {
		return "", conflict("InvalidInput", "Port %s has no allowed address pair covering %s", portID, addr)
	}
	if s.vipOwners[p.NetworkID] == nil {
		s.vipOwners[p.NetworkID] = map[netip.Addr]string{}
	}
	prev := s.vipOwners[p.NetworkID][addr]
	s.vipOwners[p.NetworkID][addr] = portID
	return prev, nil
}

// VIPOwner is the port that holds a shared address in a network, if it
// still claims it.
func (s *Store) VIPOwner(network string, ip netip.Addr) (string, bool) {
	id, ok := s.vipOwners[network][ip]
	if !ok {
		return "", false
	}
	if p, ok := s.ports[id]; !ok || !claims(p, ip) {
		return "", false
	}
	return id, true
}

type vipRecord struct {
	Network string `json:"network_id"`
	IP      string `json:"ip_address"`
	Port    string `json:"port_id"`
}

func (s *Store) vipRecords() []vipRecord {
	var out []vipRecord
	for net, m := range s.vipOwners {
		for ip, port := range m {
			out = append(out, vipRecord{net, ip.String(), port})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Network < out[j].Network || out[i].Network == out[j].Network && out[i].IP < out[j].IP
	})
	return out
}
