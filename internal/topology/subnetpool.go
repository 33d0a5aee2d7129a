package topology

import (
	"net/netip"
	"slices"
)

// SubnetPool is Neutron's subnet pool: prefixes that subnets are cut
// from (a subnet created with its subnetpool_id and no cidr gets the
// first free prefix of the length asked, or of default_prefixlen), no two
// of its subnets overlapping.
type SubnetPool struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	Prefixes         []string `json:"prefixes"`
	DefaultPrefixLen int      `json:"default_prefixlen"`
	MinPrefixLen     int      `json:"min_prefixlen"`
	MaxPrefixLen     int      `json:"max_prefixlen"`
	IPVersion        int      `json:"ip_version"`
	Shared           bool     `json:"shared"`
	IsDefault        bool     `json:"is_default"`
	Description      string   `json:"description"`
	ProjectID        string   `json:"project_id"`
	TenantID         string   `json:"tenant_id"`
	Tags             []string `json:"tags"`
	RevisionNumber   uint64   `json:"revision_number"`
	Stamps
}

// SubnetPoolSpec is a subnet pool create or update; nil fields are
// absent.
type SubnetPoolSpec struct {
	ID               string
	Name             *string
	Prefixes         *[]string
	DefaultPrefixLen *int
	MinPrefixLen     *int
	MaxPrefixLen     *int
	Shared           *bool
	IsDefault        *bool
	Description      *string
	ProjectID        *string
	TenantID         *string
	Tags             []string
}

// ResourceSubnetPool names a subnet pool in changes.
const ResourceSubnetPool = "subnetpool"

// SubnetPools returns every subnet pool.
func (s *Store) SubnetPools() []SubnetPool {
	out := make([]SubnetPool, 0, len(s.subnetPools))
	for _, id := range sortedKeys(s.subnetPools) {
		out = append(out, poolOut(s.subnetPools[id]))
	}
	return out
}

// SubnetPool returns one subnet pool.
func (s *Store) SubnetPool(id string) (SubnetPool, bool) {
	p, ok := s.subnetPools[id]
	if !ok {
		return SubnetPool{}, false
	}
	return poolOut(p), true
}

func poolOut(p *SubnetPool) SubnetPool {
	c := *p
	c.Prefixes, c.Tags = slices.Clone(p.Prefixes), slices.Clone(p.Tags)
	return c
}

// CreateSubnetPool creates a subnet pool: IPv4 prefixes (at least one,
// none overlapping another), and prefix lengths min ≤ default ≤ max
// (Neutron's defaults: 8, min, 32).
func (s *Store) CreateSubnetPool(index uint64, sp SubnetPoolSpec) (SubnetPool, error) {
	if sp.ID == "" {
		return SubnetPool{}, invalid("subnet pool id is required")
	}
	if _, ok := s.subnetPools[sp.ID]; ok {
		return SubnetPool{}, conflict("SubnetPoolExists", "Subnet pool %s already exists", sp.ID)
	}
	if sp.Prefixes == nil {
		return SubnetPool{}, invalid("prefixes is required")
	}
	p := &SubnetPool{ID: sp.ID, IPVersion: 4, MinPrefixLen: 8, MaxPrefixLen: 32, Tags: []string{}}
	if err := applyPoolFields(p, sp, true); err != nil {
		return SubnetPool{}, err
	}
	if err := s.withinQuota(QuotaSubnetPool, p.ProjectID); err != nil {
		return SubnetPool{}, err
	}
	p.RevisionNumber = index
	p.stamp(s.now)
	s.subnetPools[p.ID] = p
	return poolOut(p), nil
}

// UpdateSubnetPool changes a subnet pool.
func (s *Store) UpdateSubnetPool(index uint64, sp SubnetPoolSpec) (SubnetPool, error) {
	p, ok := s.subnetPools[sp.ID]
	if !ok {
		return SubnetPool{}, notFound("SubnetPoolNotFound", "Subnet pool %s could not be found.", sp.ID)
	}
	c := poolOut(p)
	if err := applyPoolFields(&c, sp, false); err != nil {
		return SubnetPool{}, err
	}
	c.RevisionNumber = index
	c.stamp(s.now)
	*p = c
	return poolOut(p), nil
}

// DeleteSubnetPool deletes a subnet pool.
func (s *Store) DeleteSubnetPool(_ uint64, id string) error {
	if _, ok := s.subnetPools[id]; !ok {
		return notFound("SubnetPoolNotFound", "Subnet pool %s could not be found.", id)
	}
	for _, sid := range sortedKeys(s.subnets) {
		if s.subnets[sid].SubnetPoolID == id {
			return conflict("SubnetPoolInUse", "Unable to complete operation on subnet pool %s: subnet %s was allocated from it.", id, sid)
		}
	}
	delete(s.subnetPools, id)
	return nil
}

func applyPoolFields(p *SubnetPool, sp SubnetPoolSpec, create bool) error {
	if sp.Prefixes != nil {
		var prefixes []netip.Prefix
		for _, x := range *sp.Prefixes {
			pfx, err := netip.ParsePrefix(x)
			if err != nil || !pfx.Addr().Is4() {
				return invalid("'%s' is not a valid IPv4 prefix", x)
			}
			pfx = pfx.Masked()
			for _, q := range prefixes {
				if q.Overlaps(pfx) {
					return invalid("prefixes %s and %s of the subnet pool overlap", q, pfx)
				}
			}
			prefixes = append(prefixes, pfx)
		}
		if len(prefixes) == 0 {
			return invalid("a subnet pool needs at least one prefix")
		}
		p.Prefixes = p.Prefixes[:0:0]
		for _, q := range prefixes {
			p.Prefixes = append(p.Prefixes, q.String())
		}
	}
	if sp.MinPrefixLen != nil {
		p.MinPrefixLen = *sp.MinPrefixLen
	}
	if sp.MaxPrefixLen != nil {
		p.MaxPrefixLen = *sp.MaxPrefixLen
	}
	switch {
	case sp.DefaultPrefixLen != nil:
		p.DefaultPrefixLen = *sp.DefaultPrefixLen
	case create:
		p.DefaultPrefixLen = p.MinPrefixLen
	}
	if p.MinPrefixLen < 0 || p.MaxPrefixLen > 32 || p.MinPrefixLen > p.DefaultPrefixLen || p.DefaultPrefixLen > p.MaxPrefixLen {
		return invalid("prefix lengths must be 0 ≤ min_prefixlen (%d) ≤ default_prefixlen (%d) ≤ max_prefixlen (%d) ≤ 32",
			p.MinPrefixLen, p.DefaultPrefixLen, p.MaxPrefixLen)
	}
	if sp.Name != nil {
		p.Name = *sp.Name
	}
	if sp.Shared != nil {
		p.Shared = *sp.Shared
	}
	if sp.IsDefault != nil {
		p.IsDefault = *sp.IsDefault
	}
	if sp.Description != nil {
		p.Description = *sp.Description
	}
	setProject(&p.ProjectID, &p.TenantID, sp.ProjectID, sp.TenantID)
	if sp.Tags != nil {
		p.Tags = slices.Clone(sp.Tags)
	}
	return nil
}

// cutFromPool finds the first prefix of the given length (the pool's
// default if nil), in the order of the pool's prefixes, that overlaps no
// subnet cut from the pool.
func (s *Store) cutFromPool(p *SubnetPool, length *int) (string, error) {
	bits := p.DefaultPrefixLen
	if length != nil {
		bits = *length
	}
	if bits < p.MinPrefixLen || bits > p.MaxPrefixLen {
		return "", invalid("prefixlen %d is outside %d..%d, the prefix lengths of subnet pool %s", bits, p.MinPrefixLen, p.MaxPrefixLen, p.ID)
	}
	taken := s.poolSubnets(p.ID)
	for _, x := range p.Prefixes {
		outer := netip.MustParsePrefix(x)
		if bits < outer.Bits() {
			continue
		}
		step := uint64(1) << (32 - bits)
		start := uint64(ip4(outer.Addr()))
		for a := start; a < start+(uint64(1)<<(32-outer.Bits())); a += step {
			v := uint32(a)
			cand := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), bits)
			if !slices.ContainsFunc(taken, cand.Overlaps) {
				return cand.String(), nil
			}
		}
	}
	return "", conflict("SubnetAllocationError", "Failed to allocate subnet: no /%d is left in subnet pool %s.", bits, p.ID)
}

// fitsPool checks a prefix asked of a pool: inside one of its prefixes,
// of a length it allows, overlapping none of its subnets.
func (s *Store) fitsPool(p *SubnetPool, prefix netip.Prefix) error {
	if prefix.Bits() < p.MinPrefixLen || prefix.Bits() > p.MaxPrefixLen {
		return invalid("prefix length of %s is outside %d..%d, the prefix lengths of subnet pool %s", prefix, p.MinPrefixLen, p.MaxPrefixLen, p.ID)
	}
	inside := slices.ContainsFunc(p.Prefixes, func(x string) bool {
		outer := netip.MustParsePrefix(x)
		return outer.Bits() <= prefix.Bits() && outer.Contains(prefix.Addr())
	})
	if !inside {
		return invalid("cidr %s is not within the prefixes of subnet pool %s", prefix, p.ID)
	}
	if slices.ContainsFunc(s.poolSubnets(p.ID), prefix.Overlaps) {
		return conflict("SubnetAllocationError", "Failed to allocate subnet: %s overlaps a subnet of subnet pool %s.", prefix, p.ID)
	}
	return nil
}

// poolSubnets are the prefixes of the subnets cut from a pool.
func (s *Store) poolSubnets(pool string) []netip.Prefix {
	var out []netip.Prefix
	for _, sn := range s.subnets {
		if sn.SubnetPoolID == pool {
			out = append(out, netip.MustParsePrefix(sn.CIDR))
		}
	}
	return out
}
