package bridge

import (
	"github.com/wyvern-sdn/wyvern/internal/apps"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
)

// Explained is one connected bridge as its loop last programmed it: what
// /debug/flows and /debug/trace compute the bridge's desired flows from.
type Explained struct {
	DPID   uint64
	Round  uint16
	Synced bool
	// View is the view the loop programmed the bridge from, the local
	// chassis' bindings laid over it; Local the local bridge's facts (nil:
	// not the local chassis' bridge, which holds the base pipeline only).
	View     *view.View
	Local    *Local
	Pipeline *apps.Pipeline
	Switch   Switch
}

// Explain returns a connected bridge's loop state; ok is false when no
// bridge with that datapath id is connected.
func (m *Manager) Explain(dpid uint64) (Explained, bool) {
	m.mu.Lock()
	l := m.bridges[dpid]
	m.mu.Unlock()
	if l == nil {
		return Explained{}, false
	}
	v, local := l.view()
	round, synced := l.status()
	return Explained{DPID: dpid, Round: round, Synced: synced, View: v, Local: local, Pipeline: m.pipeline, Switch: l.sw}, true
}
