package northbound

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// apiMetrics count the API's requests and their latency by route (the
// pattern a request matched, e.g. "GET /v2.0/ports/{id}"; "unmatched"
// for a path no route serves or a request refused before routing, as an
// unauthenticated one) and status code.
type apiMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newAPIMetrics(reg prometheus.Registerer) *apiMetrics {
	m := &apiMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "wyvern", Subsystem: "api", Name: "requests_total",
			Help: "Northbound API requests answered, by route and status code."}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "wyvern", Subsystem: "api", Name: "request_duration_seconds",
			Help:    "Time to answer a northbound API request, by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"route"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency)
	}
	return m
}

type routeKey struct{}

// routeOf is where a route's handler writes the pattern it serves, for
// the outer instrumentation to read once the request is answered.
type routeOf struct{ pattern string }

// instrument wraps the whole API: every request is counted, whatever
// answers it.
func (m *apiMetrics) instrument(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rt := &routeOf{pattern: "unmatched"}
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), routeKey{}, rt)))
		m.requests.WithLabelValues(rt.pattern, strconv.Itoa(sw.code)).Inc()
		m.latency.WithLabelValues(rt.pattern).Observe(time.Since(start).Seconds())
	})
}

// routed names the route a request matched (see instrument).
func routed(pattern string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if rt, ok := r.Context().Value(routeKey{}).(*routeOf); ok {
			rt.pattern = pattern
		}
		h(w, r)
	}
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// Flush passes through, for the event stream.
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.opts.Metrics == nil {
		writeError(w, &apiError{http.StatusNotFound, "HTTPNotFound", "this node exports no metrics"})
		return
	}
	s.opts.Metrics.ServeHTTP(w, r)
}
