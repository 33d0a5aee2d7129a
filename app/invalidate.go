package app

import (
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Cookie masks of reactive flow deletes: one object's flows of one app;
// or every flow of one app serving some port, narrowed by a match. Both
// reach only flows a punt installed (the on-demand bit), never an app's
// base flows nor the reconciled flows of a port plugged here.
const (
	byObject = pipeline.AppMask | pipeline.ObjectMask
	byKind   = pipeline.AppMask | pipeline.KindMask | pipeline.OnDemandMask
)

// DeleteObject deletes, in one table, the flows of app a that serve one
// object.
func DeleteObject(table uint8, a pipeline.App, object uint64) of.FlowMod {
	return of.FlowMod{Command: of.FlowDelete, CookieMask: byObject,
		Flow: of.Flow{Table: table, Cookie: pipeline.NewCookie(0, a, object) | pipeline.OnDemandMask}}
}

// DeletePortFlows deletes, in one table, the flows of app a that serve
// some port and match m (non-strictly: flows whose match holds m's).
func DeletePortFlows(table uint8, a pipeline.App, m of.Match) of.FlowMod {
	return of.FlowMod{Command: of.FlowDelete, CookieMask: byKind,
		Flow: of.Flow{Table: table, Cookie: pipeline.NewCookie(0, a, pipeline.PortObject(0)) | pipeline.OnDemandMask, Match: m}}
}
