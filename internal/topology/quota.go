package topology

import (
	"fmt"
	"maps"
	"slices"
)

// Quotas: per project, how many objects of each resource it may have
// (Neutron's quotas extension). Unlike Neutron's, the default of every
// resource is -1, no limit: a project is limited only where an admin
// set one. The limit is checked as the create is applied, so two
// concurrent creates cannot both pass it. What the cloud makes itself
// (router and floating IP ports, the rules of a default security group)
// is not refused.

// Quota resources, as Neutron names them.
const (
	QuotaNetwork           = "network"
	QuotaSubnet            = "subnet"
	QuotaPort              = "port"
	QuotaRouter            = "router"
	QuotaFloatingIP        = "floatingip"
	QuotaSecurityGroup     = "security_group"
	QuotaSecurityGroupRule = "security_group_rule"
	QuotaSubnetPool        = "subnetpool"
)

// QuotaResources are the resources a quota may limit.
var QuotaResources = []string{QuotaNetwork, QuotaSubnet, QuotaPort, QuotaRouter, QuotaFloatingIP,
	QuotaSecurityGroup, QuotaSecurityGroupRule, QuotaSubnetPool}

// Unlimited is the limit of a resource no quota limits.
const Unlimited = -1

// DefaultQuotas are every resource's default limit: none.
func DefaultQuotas() map[string]int {
	out := make(map[string]int, len(QuotaResources))
	for _, r := range QuotaResources {
		out[r] = Unlimited
	}
	return out
}

// Quotas are a project's limits, its own over the defaults.
func (s *Store) Quotas(project string) map[string]int {
	out := DefaultQuotas()
	maps.Copy(out, s.quotas[project])
	return out
}

// QuotaProjects are the projects with limits of their own, in order.
func (s *Store) QuotaProjects() []string { return sortedKeys(s.quotas) }

// SetQuotas sets some of a project's limits (each -1 or more) and
// returns them all.
func (s *Store) SetQuotas(_ uint64, project string, limits map[string]int) (map[string]int, error) {
	if project == "" {
		return nil, invalid("a quota names a project")
	}
	for _, r := range slices.Sorted(maps.Keys(limits)) {
		if !slices.Contains(QuotaResources, r) {
			return nil, invalid("Unrecognized attribute(s) '%s'", r)
		}
		if limits[r] < Unlimited {
			return nil, invalid("'%d' is not a valid quota for %s: -1 (no limit) or more", limits[r], r)
		}
	}
	if s.quotas[project] == nil {
		s.quotas[project] = map[string]int{}
	}
	maps.Copy(s.quotas[project], limits)
	return s.Quotas(project), nil
}

// ResetQuotas drops a project's own limits.
func (s *Store) ResetQuotas(_ uint64, project string) {
	delete(s.quotas, project)
}

// Usage counts a project's objects of each resource, as quotas count
// them: the ports routers and floating IPs make are not the project's.
func (s *Store) Usage(project string) map[string]int {
	out := make(map[string]int, len(QuotaResources))
	for _, r := range QuotaResources {
		out[r] = s.used(r, project)
	}
	return out
}

func (s *Store) used(resource, project string) int {
	n := 0
	switch resource {
	case QuotaNetwork:
		for _, x := range s.networks {
			n += b2i(x.ProjectID == project)
		}
	case QuotaSubnet:
		for _, x := range s.subnets {
			n += b2i(x.ProjectID == project)
		}
	case QuotaPort:
		for _, x := range s.ports {
			n += b2i(x.ProjectID == project && !isManaged(x.DeviceOwner))
		}
	case QuotaRouter:
		for _, x := range s.routers {
			n += b2i(x.ProjectID == project)
		}
	case QuotaFloatingIP:
		for _, x := range s.fips {
			n += b2i(x.ProjectID == project)
		}
	case QuotaSecurityGroup:
		for _, x := range s.sgs {
			n += b2i(x.ProjectID == project)
		}
	case QuotaSecurityGroupRule:
		for _, x := range s.sgs {
			for _, r := range x.Rules {
				n += b2i(r.ProjectID == project)
			}
		}
	case QuotaSubnetPool:
		for _, x := range s.subnetPools {
			n += b2i(x.ProjectID == project)
		}
	}
	return n
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// withinQuota refuses one more object of a resource for a project at
// its limit (OverQuota, 409, Neutron's message).
func (s *Store) withinQuota(resource, project string) error {
	return s.withinQuotaBy(resource, project, 1)
}

// withinQuotaBy refuses n more objects beyond the limit.
func (s *Store) withinQuotaBy(resource, project string, n int) error {
	limit, ok := s.quotas[project][resource]
	if !ok || limit == Unlimited {
		return nil
	}
	if s.used(resource, project)+n > limit {
		return conflict("OverQuota", "%s", fmt.Sprintf("Quota exceeded for resources: ['%s'].", resource))
	}
	return nil
}
