package northbound

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/wyvern-sdn/wyvern/trace"
)

// Explainer answers the debugging endpoints about the node's local
// chassis (controller/explain): its flows, a packet's trace, its OVSDB,
// the node's recent log lines. Errors are trace's sentinels.
type Explainer interface {
	Flows(ctx context.Context, chassis, port string) (any, error)
	Trace(ctx context.Context, req trace.Request, live, ctEst bool) (any, error)
	OVSDB(ctx context.Context) (any, error)
	Logs() any
}

// explainError maps the explainer's errors to statuses.
func explainError(err error) error {
	switch {
	case errors.Is(err, trace.ErrBadRequest):
		return badRequest("%s", err)
	case errors.Is(err, trace.ErrNoSuchPort), errors.Is(err, trace.ErrNoSuchTarget):
		return &apiError{http.StatusNotFound, "NotFound", err.Error()}
	case errors.Is(err, trace.ErrNotHere):
		return &apiError{http.StatusConflict, "Conflict", err.Error()}
	case errors.Is(err, trace.ErrElsewhere):
		return &apiError{http.StatusMisdirectedRequest, "MisdirectedRequest", err.Error()}
	case errors.Is(err, trace.ErrUnavailable):
		return &apiError{http.StatusServiceUnavailable, "ServiceUnavailable", err.Error()}
	}
	return err
}

func (s *Server) explainer(w http.ResponseWriter) bool {
	if s.opts.Explain == nil {
		writeError(w, &apiError{http.StatusNotFound, "HTTPNotFound", "this node explains no chassis"})
		return false
	}
	return true
}

// debugFlows is GET /debug/flows?chassis=C|port=P.
func (s *Server) debugFlows(w http.ResponseWriter, r *http.Request) {
	if !s.explainer(w) {
		return
	}
	q := r.URL.Query()
	for k := range q {
		if k != "chassis" && k != "port" {
			writeError(w, badRequest("unknown parameter %q: want chassis or port", k))
			return
		}
	}
	out, err := s.opts.Explain.Flows(r.Context(), q.Get("chassis"), q.Get("port"))
	if err != nil {
		writeError(w, explainError(err))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// debugTrace is GET /debug/trace?from=PORT&to=IP|MAC[&tcp=N|&udp=N][&src_ip=IP][&live=true][&ct=est].
func (s *Server) debugTrace(w http.ResponseWriter, r *http.Request) {
	if !s.explainer(w) {
		return
	}
	q := r.URL.Query()
	req := trace.Request{From: q.Get("from"), To: q.Get("to"), SrcIP: q.Get("src_ip")}
	var live, ctEst bool
	for k, vs := range q {
		v := vs[0]
		switch k {
		case "from", "to", "src_ip":
		case "tcp", "udp":
			if req.Proto != "" {
				writeError(w, badRequest("give tcp or udp, not both"))
				return
			}
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil || n == 0 {
				writeError(w, badRequest("%s=%q: want a port 1..65535", k, v))
				return
			}
			req.Proto, req.DstPort = k, uint16(n)
		case "live":
			b, err := strconv.ParseBool(v)
			if err != nil {
				writeError(w, badRequest("live=%q: want true or false", v))
				return
			}
			live = b
		case "ct":
			if v != "new" && v != "est" {
				writeError(w, badRequest("ct=%q: want new or est", v))
				return
			}
			ctEst = v == "est"
		default:
			writeError(w, badRequest("unknown parameter %q", k))
			return
		}
	}
	out, err := s.opts.Explain.Trace(r.Context(), req, live, ctEst)
	if err != nil {
		writeError(w, explainError(err))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// debugOVSDB is GET /debug/ovsdb: the local OVSDB's contents.
func (s *Server) debugOVSDB(w http.ResponseWriter, r *http.Request) {
	if !s.explainer(w) {
		return
	}
	out, err := s.opts.Explain.OVSDB(r.Context())
	if err != nil {
		writeError(w, explainError(err))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// debugLogs is GET /debug/logs: the node's recent log lines.
func (s *Server) debugLogs(w http.ResponseWriter, r *http.Request) {
	if !s.explainer(w) {
		return
	}
	writeJSON(w, http.StatusOK, s.opts.Explain.Logs())
}
