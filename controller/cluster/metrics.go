package cluster

import (
	"strconv"
	"sync"
	"time"

	gometrics "github.com/hashicorp/go-metrics/compat"
	gometricsprom "github.com/hashicorp/go-metrics/compat/prometheus"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the cluster's Prometheus families: raft's state read when
// scraped (term, indexes, lags, role), leader changes and proposals
// observed as they happen. raft's own go-metrics (commit and apply times,
// RPCs, snapshots) reach the same registry through a Prometheus sink.
type metrics struct {
	c             *Cluster
	leaderChanges prometheus.Counter
	leaderLost    prometheus.Counter
	propose       *prometheus.HistogramVec // outcome

	term, lastIndex, commitIndex, appliedIndex, commitLag, applyLag, leader, peers *prometheus.Desc
}

func newMetrics(c *Cluster) *metrics {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("wyvern_raft_"+name, help, nil, nil)
	}
	return &metrics{c: c,
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "wyvern", Subsystem: "raft", Name: "leader_changes_total",
			Help: "Leaders this node has seen elected (including itself)."}),
		leaderLost: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "wyvern", Subsystem: "raft", Name: "leader_lost_total",
			Help: "Times this follower saw the leader close its connections and go silent, and shortened raft's timeouts to elect at once."}),
		propose: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "wyvern", Subsystem: "raft", Name: "propose_seconds",
			Help:    "Time from a command proposed on this node to its answer (committed and applied on the leader, or refused), by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16)}, []string{"outcome"}),
		term:         d("term", "The node's current raft term."),
		lastIndex:    d("last_log_index", "Index of the node's last log entry."),
		commitIndex:  d("commit_index", "Highest log index the node knows committed."),
		appliedIndex: d("applied_index", "Highest log index applied to the node's topology."),
		commitLag:    d("commit_lag_entries", "Entries in the node's log not yet known committed (last_log_index - commit_index)."),
		applyLag:     d("apply_lag_entries", "Committed entries not yet applied to the node's topology (commit_index - applied_index)."),
		leader:       d("is_leader", "1 if this node is the raft leader."),
		peers:        d("configured_peers", "Other members of the raft configuration, voters and non-voters."),
	}
}

func (m *metrics) observePropose(start time.Time, err error) {
	outcome := "committed"
	if err != nil {
		outcome = "error"
	}
	m.propose.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.term, m.lastIndex, m.commitIndex, m.appliedIndex, m.commitLag, m.applyLag, m.leader, m.peers} {
		ch <- d
	}
	m.leaderChanges.Describe(ch)
	m.leaderLost.Describe(ch)
	m.propose.Describe(ch)
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.leaderChanges.Collect(ch)
	m.leaderLost.Collect(ch)
	m.propose.Collect(ch)
	r := m.c.raft
	if r == nil {
		return
	}
	st := r.Stats()
	num := func(k string) float64 {
		v, _ := strconv.ParseUint(st[k], 10, 64)
		return float64(v)
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	last, commit, applied := num("last_log_index"), num("commit_index"), num("applied_index")
	gauge(m.term, num("term"))
	gauge(m.lastIndex, last)
	gauge(m.commitIndex, commit)
	gauge(m.appliedIndex, applied)
	gauge(m.commitLag, max(0, last-commit))
	gauge(m.applyLag, max(0, commit-applied))
	isLeader := 0.0
	if r.State() == raft.Leader {
		isLeader = 1
	}
	gauge(m.leader, isLeader)
	gauge(m.peers, num("num_peers"))
}

// raftSinkOnce: raft reports through go-metrics' process-wide instance,
// so only the first cluster of a process (one in wyvernd) gets its
// figures.
var raftSinkOnce sync.Once

// sinkRaftMetrics points go-metrics' global instance (raft's) at reg.
func sinkRaftMetrics(reg prometheus.Registerer) error {
	var err error
	raftSinkOnce.Do(func() {
		var sink *gometricsprom.PrometheusSink
		sink, err = gometricsprom.NewPrometheusSinkFrom(gometricsprom.PrometheusOpts{Registerer: reg, Name: "wyvern_raft_sink"})
		if err != nil {
			return
		}
		conf := gometrics.DefaultConfig("wyvern")
		conf.EnableHostname, conf.EnableHostnameLabel, conf.EnableRuntimeMetrics = false, false, false
		_, err = gometrics.NewGlobal(conf, sink)
	})
	return err
}
