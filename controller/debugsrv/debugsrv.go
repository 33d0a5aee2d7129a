// Package debugsrv is wyvernd's debug listener (--debug-addr): Go's
// profiles (pprof), the log level changed at run time, and the node's
// metrics, apart from the API and without its authentication — so it
// listens on loopback unless the operator says otherwise.
package debugsrv

import (
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Handler serves:
//   - GET /metrics: the node's metrics in Prometheus' text format;
//   - GET /debug/pprof/...: profiles (heap, goroutine, profile?seconds=N,
//     trace, ...);
//   - GET /debug/log-level: {"level":"info"}; PUT with {"level":"debug"}
//     changes it at once, for every part of the node (raft's entries too).
func Handler(metrics prometheus.Gatherer, level zap.AtomicLevel) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/log-level", level)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("wyvernd debug listener: /metrics, /debug/pprof/, /debug/log-level (GET; PUT {\"level\":\"debug\"})\n"))
	})
	return mux
}
