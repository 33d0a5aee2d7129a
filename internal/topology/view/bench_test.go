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
