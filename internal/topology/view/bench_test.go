package view_test

import (
	"fmt"
	"testing"

	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
)

// BenchmarkBuild: a view of 10,000 ports over 40 chassis, built as every
// applied batch of commands builds one.
func BenchmarkBuild(b *testing.B) {
	f := topologytest.Large(b, 40, 10_000)
	for b.Loop() {
		view.Build(f.Store)
	}
}

// BenchmarkBuildAfterOneChange: the same, with a builder that built the
// view before, after one port changed: what an applied batch costs.
func BenchmarkBuildAfterOneChange(b *testing.B) {
	f := topologytest.Large(b, 40, 10_000)
	var bl view.Builder
	bl.Build(f.Store)
	i := 0
	for b.Loop() {
		i++
		// A new name each time: the port's revision moves, so the
		// builder types it again (a status set twice would change nothing).
		name := fmt.Sprint("renamed", i)
		if _, err := f.Store.UpdatePort(uint64(1_000_000+i), topology.PortSpec{ID: fmt.Sprintf("p%d", 1+40*(i%200)), Name: &name}); err != nil {
			b.Fatal(err)
		}
		bl.Build(f.Store)
	}
}

// BenchmarkNextAfterOneBind: the convergence benchmark's cloud — 1,000
// chassis, 1,000 networks of 100 ports bound over 10 chassis each — and
// one port bound elsewhere, patched from the changes (Builder.Next) and,
// for comparison, rebuilt from the whole store (Builder.Build).
func BenchmarkNextAfterOneBind(b *testing.B) {
	str := func(s string) *string { return &s }
	s := topology.New()
	index := uint64(0)
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	for c := range 1000 {
		index++
		_, err := s.RegisterChassis(index, topology.ChassisSpec{Name: fmt.Sprintf("hv%d", c), EncapIP: fmt.Sprintf("172.31.%d.%d", c/250, c%250+1), Encaps: []string{topology.TypeVXLAN}})
		must(err)
	}
	for n := range 1000 {
		id := fmt.Sprintf("net%d", n)
		index++
		_, err := s.CreateNetworks(index, []topology.NetworkSpec{{ID: id}})
		must(err)
		_, err = s.CreateSubnets(index, []topology.SubnetSpec{{ID: id + "-v4", NetworkID: str(id), CIDR: str(fmt.Sprintf("10.%d.%d.0/24", n/250, n%250))}})
		must(err)
		specs := make([]topology.PortSpec, 100)
		for p := range specs {
			specs[p] = topology.PortSpec{ID: fmt.Sprintf("n%dp%d", n, p), NetworkID: str(id), SecurityGroups: []string{}}
		}
		index++
		_, err = s.CreatePorts(index, specs)
		must(err)
	}
	bindings := map[string][]topology.Binding{}
	for n := range 1000 {
		for p := range 100 {
			c := fmt.Sprintf("hv%d", (n*10+p%10)%1000)
			bindings[c] = append(bindings[c], topology.Binding{PortID: fmt.Sprintf("n%dp%d", n, p), OFPort: uint32(len(bindings[c]) + 1)})
		}
	}
	for c, bs := range bindings {
		index++
		_, err := s.SetBindings(index, c, bs)
		must(err)
	}
	s.SetIndex(index)
	for _, mode := range []string{"next", "build"} {
		b.Run(mode, func(b *testing.B) {
			var bl view.Builder
			bl.Build(s)
			i := 0
			for b.Loop() {
				i++
				c := fmt.Sprintf("hv%d", i%1000)
				index++
				bs := append(bindings[c], topology.Binding{PortID: fmt.Sprintf("n%dp%d", i%1000, 0), OFPort: 900 + uint32(i)})
				ids, err := s.SetBindings(index, c, bs)
				must(err)
				s.SetIndex(index)
				var changes []topology.Change
				for _, id := range ids {
					changes = append(changes, topology.Change{Index: index, Resource: topology.ResourcePort, Op: "update", ID: id})
				}
				if mode == "next" {
					bl.Next(s, changes)
				} else {
					bl.Build(s)
				}
			}
		})
	}
}
