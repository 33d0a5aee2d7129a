package chassis

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/controller/chassis/vswitch"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
)

// physnetKey is the external_ids key naming the physical network a patch
// port of the integration bridge leads to.
const physnetKey = "wyvern-physnet"

// patchNames are the two ends of the patch between the integration bridge
// and a physical network's bridge: short (an OVS port name is an
// interface name, 15 characters at most) and stable per physical network.
func patchNames(physnet string) (intSide, extSide string) {
	h := fnv.New32a()
	h.Write([]byte(physnet))
	x := h.Sum32()
	return fmt.Sprintf("wyvp-%08x", x), fmt.Sprintf("wyvx-%08x", x)
}

// ensurePatches patches the integration bridge to the bridge of each
// mapped physical network, which the operator made and which holds the
// uplink. A mapped bridge that does not exist is reported and skipped:
// without its patch the physical network is simply not reached from here
// (the chassis' facts say so), never half-connected.
func (a *Agent) ensurePatches(ctx context.Context, ovs client.Client, br *vswitch.Bridge) ([]ovsdb.Operation, error) {
	physnets := make([]string, 0, len(a.cfg.BridgeMappings))
	for p := range a.cfg.BridgeMappings {
		physnets = append(physnets, p)
	}
	sort.Strings(physnets)
	var ops []ovsdb.Operation
	for _, physnet := range physnets {
		extName := a.cfg.BridgeMappings[physnet]
		ext := &vswitch.Bridge{Name: extName}
		if err := ovs.Get(ctx, ext); errors.Is(err, client.ErrNotFound) {
			a.log.Warn("the bridge of a mapped physical network does not exist; create it with its uplink",
				zap.String("physical-network", physnet), zap.String("bridge", extName))
			continue
		} else if err != nil {
			return nil, err
		}
		intName, extSide := patchNames(physnet)
		for _, end := range []struct {
			bridge     *vswitch.Bridge
			name, peer string
			ids        map[string]string
		}{
			{br, intName, extSide, map[string]string{physnetKey: physnet}},
			{ext, extSide, intName, map[string]string{physnetKey: physnet, "wyvern-bridge": a.cfg.Bridge}},
		} {
			more, err := ensurePatchEnd(ctx, ovs, end.bridge, end.name, end.peer, end.ids)
			if err != nil {
				return nil, err
			}
			ops = append(ops, more...)
		}
	}
	return ops, nil
}

// ensurePatchEnd makes one end of a patch exist on a bridge, with its peer
// and external ids as given.
func ensurePatchEnd(ctx context.Context, ovs client.Client, br *vswitch.Bridge, name, peer string, ids map[string]string) ([]ovsdb.Operation, error) {
	iface := &vswitch.Interface{Name: name}
	err := ovs.Get(ctx, iface)
	if errors.Is(err, client.ErrNotFound) {
		// OVSDB's uuid-names are identifiers: no '-'.
		row := strings.ReplaceAll(name, "-", "_")
		i := &vswitch.Interface{UUID: "if_" + row, Name: name, Type: "patch", Options: map[string]string{"peer": peer}, ExternalIDs: ids}
		p := &vswitch.Port{UUID: "port_" + row, Name: name, Interfaces: []string{i.UUID}}
		cops, err := createAll(ovs, i, p)
		if err != nil {
			return nil, err
		}
		mut, err := ovs.Where(br).Mutate(br, model.Mutation{Field: &br.Ports, Mutator: ovsdb.MutateOperationInsert, Value: []string{p.UUID}})
		if err != nil {
			return nil, err
		}
		return append(cops, mut...), nil
	}
	if err != nil {
		return nil, err
	}
	if iface.Type == "patch" && iface.Options["peer"] == peer && iface.ExternalIDs[physnetKey] == ids[physnetKey] {
		return nil, nil
	}
	want := *iface
	want.Type, want.Options, want.ExternalIDs = "patch", map[string]string{"peer": peer}, ids
	return ovs.Where(iface).Update(&want, &want.Type, &want.Options, &want.ExternalIDs)
}

// FactsFromPorts are a bridge's facts read from its own port names (the
// switch's port description), for a bridge whose chassis' node is not the
// one programming it: the tunnel ports Wyvern's agent names wyv-vxlan and
// wyv-gre, and the patch port of each physical network the chassis maps.
func FactsFromPorts(chassis string, mappings map[string]string, ports map[string]uint32) view.Bridge {
	b := view.Bridge{Chassis: chassis, TunnelPorts: map[string]uint32{}, PhysicalPorts: map[string]uint32{}}
	for typ, name := range tunnelPortNames {
		if no, ok := ports[name]; ok {
			b.TunnelPorts[typ] = no
		}
	}
	for physnet := range mappings {
		intSide, _ := patchNames(physnet)
		if no, ok := ports[intSide]; ok {
			b.PhysicalPorts[physnet] = no
		}
	}
	return b
}
