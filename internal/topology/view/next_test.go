package view

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// TestNextEqualsBuild drives a store through random changes — ports
// created, deleted, renamed, given addresses and pairs, bound, moved and
// unplugged, router interfaces added and removed, networks created and
// updated, chassis registered — and after each checks that the view
// patched from the changes is the one built from the whole store, and
// that a view derived for a chassis' own bindings is indexed as its
// ports indexed afresh would be.
func TestNextEqualsBuild(t *testing.T) {
	str := func(s string) *string { return &s }
	s := topology.New()
	index := uint64(1)
	var changes []topology.Change
	note := func(resource, id string) {
		changes = append(changes, topology.Change{Index: index, Resource: resource, Op: "update", ID: id})
	}
	step := func(what string, fn func(i uint64) error) {
		t.Helper()
		index++
		if err := fn(index); err != nil {
			t.Logf("%s: %v (refused, nothing changed)", what, err)
		}
		s.SetIndex(index)
	}
	nets := []string{}
	addNetwork := func(n int) {
		id := fmt.Sprintf("net%d", n)
		step("network", func(i uint64) error {
			if _, err := s.CreateNetworks(i, []topology.NetworkSpec{{ID: id, Name: str(id)}}); err != nil {
				return err
			}
			note(topology.ResourceNetwork, id)
			_, err := s.CreateSubnets(i, []topology.SubnetSpec{{ID: id + "-v4", NetworkID: str(id), CIDR: str(fmt.Sprintf("10.%d.0.0/16", n))}})
			note(topology.ResourceSubnet, id+"-v4")
			return err
		})
		nets = append(nets, id)
	}
	for n := range 4 {
		addNetwork(n)
	}
	chassis := []string{}
	for c := 1; c <= 6; c++ {
		name := fmt.Sprintf("hv%d", c)
		step("chassis", func(i uint64) error {
			_, err := s.RegisterChassis(i, topology.ChassisSpec{Name: name, EncapIP: fmt.Sprintf("172.31.0.%d", c), Encaps: []string{topology.TypeVXLAN}})
			note(topology.ResourceChassis, name)
			return err
		})
		chassis = append(chassis, name)
	}
	step("router", func(i uint64) error {
		_, err := s.CreateRouters(i, []topology.RouterSpec{{ID: "r1", Name: str("r1")}})
		note(topology.ResourceRouter, "r1")
		return err
	})

	var b Builder
	b.Build(s)
	rng := rand.New(rand.NewPCG(17, 4))
	ports := []string{}
	bound := map[string][]topology.Binding{} // chassis → its bindings
	next := 0
	for round := range 400 {
		changes = changes[:0]
		switch op := rng.IntN(10); {
		case op < 3 || len(ports) < 5: // create a few ports
			var specs []topology.PortSpec
			for range 1 + rng.IntN(3) {
				next++
				specs = append(specs, topology.PortSpec{ID: fmt.Sprintf("p%d", next), NetworkID: str(nets[rng.IntN(len(nets))]), SecurityGroups: []string{}})
			}
			step("create ports", func(i uint64) error {
				_, err := s.CreatePorts(i, specs)
				if err == nil {
					for _, sp := range specs {
						ports = append(ports, sp.ID)
						note(topology.ResourcePort, sp.ID)
					}
				}
				return err
			})
		case op < 6 && rng.IntN(8) == 0: // a chassis taken out of service, and back
			c := chassis[rng.IntN(len(chassis))]
			step("delete chassis", func(i uint64) error {
				ids, err := s.DeleteChassis(i, c)
				note(topology.ResourceChassis, c)
				for _, id := range ids {
					note(topology.ResourcePort, id)
				}
				bound[c] = nil
				return err
			})
			if rng.IntN(2) == 0 {
				break // the next bind of it is refused until it is back
			}
			step("chassis again", func(i uint64) error {
				_, err := s.RegisterChassis(i, topology.ChassisSpec{Name: c, EncapIP: "172.31.1.1", Encaps: []string{topology.TypeVXLAN}})
				note(topology.ResourceChassis, c)
				return err
			})
		case op < 6: // bind, move or unplug ports of a chassis
			c := chassis[rng.IntN(len(chassis))]
			var bs []topology.Binding
			for _, bb := range bound[c] {
				if rng.IntN(4) > 0 {
					bs = append(bs, bb)
				}
			}
			for range rng.IntN(4) {
				bs = append(bs, topology.Binding{PortID: ports[rng.IntN(len(ports))], OFPort: uint32(1 + rng.IntN(50))})
			}
			step("bind", func(i uint64) error {
				ids, err := s.SetBindings(i, c, bs)
				for _, id := range ids {
					note(topology.ResourcePort, id)
				}
				bound[c] = bs
				return err
			})
		case op < 7: // rename a port, give it a pair
			id := ports[rng.IntN(len(ports))]
			step("update port", func(i uint64) error {
				pairs := []topology.AddressPair{{IPAddress: fmt.Sprintf("192.168.%d.0/24", rng.IntN(4))}}
				_, err := s.UpdatePort(i, topology.PortSpec{ID: id, Name: str(fmt.Sprint("n", round)), AllowedAddressPairs: &pairs})
				note(topology.ResourcePort, id)
				return err
			})
		case op < 8: // delete a port
			k := rng.IntN(len(ports))
			id := ports[k]
			step("delete port", func(i uint64) error {
				err := s.DeletePort(i, id)
				if err == nil {
					ports = append(ports[:k], ports[k+1:]...)
				}
				note(topology.ResourcePort, id)
				return err
			})
		case op < 9: // a router interface on a network, or one taken away
			n := nets[rng.IntN(len(nets))]
			step("router interface", func(i uint64) error {
				p, err := s.AddRouterInterface(i, "r1", n+"-v4", "")
				if err != nil {
					p, err = s.RemoveRouterInterface(i, "r1", n+"-v4")
				}
				if err == nil {
					note(topology.ResourcePort, p.ID)
					note(topology.ResourceRouter, "r1")
				}
				return err
			})
		default: // a network changes or comes
			if rng.IntN(2) == 0 {
				addNetwork(len(nets))
				break
			}
			n := nets[rng.IntN(len(nets))]
			step("update network", func(i uint64) error {
				up := rng.IntN(2) == 0
				_, err := s.UpdateNetwork(i, topology.NetworkSpec{ID: n, AdminStateUp: &up})
				note(topology.ResourceNetwork, n)
				return err
			})
		}
		got := b.Next(s, changes)
		want := Build(s)
		if d := Diff(got, want); d != nil {
			t.Fatalf("round %d, after %v: the patched view differs from the whole build:\n%v", round, changes, d)
		}
		// A chassis' own bindings laid over the view, as its bridge does.
		c := chassis[rng.IntN(len(chassis))]
		var own []topology.Binding
		for _, id := range ports {
			if rng.IntN(8) == 0 {
				own = append(own, topology.Binding{PortID: id, OFPort: uint32(100 + rng.IntN(10))})
			}
		}
		derived := got.WithChassisPorts(c, own)
		fresh := *derived
		fresh.index_(nil, nil)
		if d := Diff(derived, &fresh); d != nil {
			t.Fatalf("round %d: %s's bindings laid over the view are indexed unlike its ports indexed afresh:\n%v", round, c, d)
		}
	}
}
