package chassis

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// sessionMetrics carries libovsdb's own metrics (updates, table updates,
// disconnects, monitors) to the node's registry across OVSDB sessions:
// libovsdb registers a client's collectors when the client is made, and
// the agent makes one per session, so this registerer keeps the current
// session's and forgets the previous one's (their counters restart, as
// after a process restart; wyvern_ovsdb_sessions_total counts them).
type sessionMetrics struct {
	mu       sync.Mutex
	current  []prometheus.Collector
	sessions prometheus.Counter
}

func newSessionMetrics() *sessionMetrics {
	return &sessionMetrics{sessions: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "wyvern", Subsystem: "ovsdb",
		Name: "sessions_total", Help: "OVSDB sessions the chassis agent has started with the local ovsdb-server."})}
}

// newSession forgets the last session's collectors.
func (s *sessionMetrics) newSession() {
	s.mu.Lock()
	s.current = nil
	s.mu.Unlock()
	s.sessions.Inc()
}

// Register implements prometheus.Registerer for libovsdb.
func (s *sessionMetrics) Register(c prometheus.Collector) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.current = append(s.current, c)
	return nil
}

func (s *sessionMetrics) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = s.Register(c)
	}
}

func (s *sessionMetrics) Unregister(c prometheus.Collector) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.current {
		if x == c {
			s.current = append(s.current[:i], s.current[i+1:]...)
			return true
		}
	}
	return false
}

// Describe says nothing: the collectors change with the session, which
// makes this an unchecked collector.
func (s *sessionMetrics) Describe(chan<- *prometheus.Desc) {}

func (s *sessionMetrics) Collect(ch chan<- prometheus.Metric) {
	s.sessions.Collect(ch)
	s.mu.Lock()
	cs := append([]prometheus.Collector(nil), s.current...)
	s.mu.Unlock()
	for _, c := range cs {
		c.Collect(ch)
	}
}
