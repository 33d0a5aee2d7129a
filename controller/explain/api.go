package explain

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/wyvern-sdn/wyvern/trace"
)

// Flows answers /debug/flows (northbound.Explainer).
func (s *Service) Flows(ctx context.Context, chassis, port string) (any, error) {
	return s.FlowsOf(ctx, chassis, port)
}

// Trace answers /debug/trace (northbound.Explainer).
func (s *Service) Trace(ctx context.Context, req trace.Request, live, ctEst bool) (any, error) {
	return s.TraceOf(ctx, TraceRequest{Request: req, Live: live, CTEst: ctEst})
}

// OVSDBDump is /debug/ovsdb: ovsdb-client dump of the local OVSDB.
type OVSDBDump struct {
	Node     string `json:"node"`
	Endpoint string `json:"endpoint"`
	Dump     string `json:"dump"`
}

// OVSDB answers /debug/ovsdb (northbound.Explainer).
func (s *Service) OVSDB(ctx context.Context) (any, error) {
	if s.cfg.OVSDB == "" {
		return nil, fmt.Errorf("%w: node %s has no local OVSDB (start it with --ovsdb)", trace.ErrUnavailable, s.cfg.Node)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, "ovsdb-client", "dump", s.cfg.OVSDB, "Open_vSwitch").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%w: ovsdb-client dump %s: %v: %s", trace.ErrUnavailable, s.cfg.OVSDB, err, strings.TrimSpace(string(out)))
	}
	return OVSDBDump{Node: s.cfg.Node, Endpoint: s.cfg.OVSDB, Dump: string(out)}, nil
}

// Logs answers /debug/logs (northbound.Explainer): the node's recent
// log lines, oldest first.
func (s *Service) Logs() any {
	lines := []string{}
	if s.cfg.Logs != nil {
		lines = append(lines, s.cfg.Logs()...)
	}
	return map[string]any{"node": s.cfg.Node, "lines": lines}
}
