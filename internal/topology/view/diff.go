package view

import (
	"fmt"
	"reflect"
	"slices"
)

// Diff lists where two views of the same store differ, as a reader of
// them would see it (an index holding nothing equals one left out); nil
// when they agree. It is how a view patched by Builder.Next is checked
// against one built whole.
func Diff(a, b *View) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if a.index != b.index {
		add("index %d != %d", a.index, b.index)
	}
	out = append(out, diffMap("networks", a.networks, b.networks)...)
	out = append(out, diffMap("netByKey", a.netByKey, b.netByKey)...)
	out = append(out, diffMap("subnets", a.subnets, b.subnets)...)
	out = append(out, diffMap("chassis", a.chassis, b.chassis)...)
	out = append(out, diffMap("routers", a.routers, b.routers)...)
	out = append(out, diffMap("rtrByKey", a.rtrByKey, b.rtrByKey)...)
	if a.ports.len() != b.ports.len() {
		add("ports: %d != %d", a.ports.len(), b.ports.len())
	}
	a.ports.each(func(p *Port) {
		q, ok := b.ports.get(p.ID)
		if !ok || !reflect.DeepEqual(p, q) {
			add("port %s: %+v != %+v", p.ID, p, q)
		}
		if k, ok := b.ports.getKey(p.Key); !ok || k.ID != p.ID {
			add("port key %d: %s != %v", p.Key, p.ID, k)
		}
	})
	b.ports.each(func(p *Port) {
		if _, ok := a.ports.get(p.ID); !ok {
			add("port %s only in the second", p.ID)
		}
	})
	out = append(out, diffMap("routerPorts", a.routerPorts, b.routerPorts)...)
	out = append(out, diffMap("netPorts", a.netPorts.toMap(), b.netPorts.toMap())...)
	out = append(out, diffMap("located", a.located.toMap(), b.located.toMap())...)
	out = append(out, diffMap("hosted", a.hosted.toMap(), b.hosted.toMap())...)
	out = append(out, diffMap("hosts", a.hosts.toMap(), b.hosts.toMap())...)
	out = append(out, diffMap("vipOwners", a.vipOwners, b.vipOwners)...)
	out = append(out, diffMap("ifacesByNet", a.ifacesByNet, b.ifacesByNet)...)
	out = append(out, diffMap("ifacesByRtr", a.ifacesByRtr, b.ifacesByRtr)...)
	out = append(out, diffMap("addrClaims", a.addrClaims.toMap(), b.addrClaims.toMap())...)
	out = append(out, diffMap("macClaims", a.macClaims.toMap(), b.macClaims.toMap())...)
	out = append(out, diffMap("gateways", a.gateways, b.gateways)...)
	out = append(out, diffMap("staticRoutes", a.staticRoutes, b.staticRoutes)...)
	out = append(out, diffMap("extNeighbours", a.extNeighbours, b.extNeighbours)...)
	out = append(out, diffMap("gatewayChassis", a.gatewayChassis, b.gatewayChassis)...)
	out = append(out, diffMap("fipsOn", a.fipsOn, b.fipsOn)...)
	out = append(out, diffMap("served", a.served, b.served)...)
	out = append(out, diffMap("sgs", a.sgs, b.sgs)...)
	if !reflect.DeepEqual(orEmpty(a.fips), orEmpty(b.fips)) {
		add("fips: %+v != %+v", a.fips, b.fips)
	}
	slices.Sort(out)
	return out
}

// diffMap compares two indexes entry by entry; an empty entry (a nil or
// empty slice or map) is the same as none.
func diffMap[K comparable, V any](name string, a, b map[K]V) []string {
	var out []string
	for k, av := range a {
		bv, ok := b[k]
		if isEmpty(av) && (!ok || isEmpty(bv)) {
			continue
		}
		if !ok || !reflect.DeepEqual(av, bv) {
			out = append(out, fmt.Sprintf("%s[%v]: %+v != %+v", name, k, av, bv))
		}
	}
	for k, bv := range b {
		if _, ok := a[k]; !ok && !isEmpty(bv) {
			out = append(out, fmt.Sprintf("%s[%v] only in the second: %+v", name, k, bv))
		}
	}
	return out
}

func isEmpty(v any) bool {
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.Slice, reflect.Map:
		return r.Len() == 0
	}
	return false
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
