package bridge

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// metrics are the bridges' Prometheus families. What happens (bundles,
// flow-mods, punts answered) is observed where it happens; what each
// bridge holds (desired and installed flows, quarantined flows, its cookie
// round, what its punt queue and meters dropped) is read when scraped.
type metrics struct {
	bundles  *prometheus.CounterVec   // bridge, kind
	flowMods *prometheus.CounterVec   // bridge, kind
	duration *prometheus.HistogramVec // kind
	rounds   *prometheus.CounterVec   // bridge
	punts    *prometheus.CounterVec   // reason
	answer   *prometheus.HistogramVec // reason
	// answerBy is answer's series of each punt reason, looked up once
	// a reason (when first seen) rather than once a punt.
	answerBy [256]atomic.Pointer[observer]
	// roleChanges: this node's role on a bridge changed (master, slave)
	// or its claim was refused as stale.
	roleChanges *prometheus.CounterVec // bridge, role
}

// Bundle kinds: a replay (a new cookie round, the whole pipeline), a sync
// (the changed objects' flows), a punt's answer (reactive flows).
const (
	kindReplay   = "replay"
	kindSync     = "sync"
	kindReactive = "reactive"
)

// observer is a histogram's series, held by pointer.
type observer struct{ prometheus.Observer }

func newMetrics() *metrics {
	return &metrics{
		bundles: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "wyvern", Subsystem: "reconciler", Name: "bundles_total",
			Help: "OpenFlow bundles committed to a bridge, by kind (replay, sync, reactive)."}, []string{"bridge", "kind"}),
		flowMods: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "wyvern", Subsystem: "reconciler", Name: "flow_mods_total",
			Help: "Flow-mods in committed bundles, by bridge and kind."}, []string{"bridge", "kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "wyvern", Subsystem: "reconciler", Name: "bundle_duration_seconds",
			Help:    "Time from sending a bundle to its commit's answer, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"kind"}),
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "wyvern", Subsystem: "reconciler", Name: "cookie_rounds_total",
			Help: "Replays of a bridge, each in a new cookie round that sweeps the older rounds' flows."}, []string{"bridge"}),
		punts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "wyvern", Subsystem: "punt", Name: "received_total",
			Help: "Packet-ins decoded, by punt reason."}, []string{"reason"}),
		answer: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "wyvern", Subsystem: "punt", Name: "answer_seconds",
			Help:    "Time from a packet-in to its answer's packet-outs sent (reactive flows installed first), by punt reason.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}, []string{"reason"}),
		roleChanges: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "wyvern", Subsystem: "bridge", Name: "role_changes_total",
			Help: "This node's role on a bridge changed (to master or slave), or its role request was refused as stale."}, []string{"bridge", "role"}),
	}
}

// answered observes a punt's answer latency.
func (mt *metrics) answered(r pipeline.PuntReason, took time.Duration) {
	o := mt.answerBy[r].Load()
	if o == nil { // the reason's first answer (two at once store the same series)
		o = &observer{mt.answer.WithLabelValues(r.String())}
		mt.answerBy[r].Store(o)
	}
	o.Observe(took.Seconds())
}

func bridgeLabel(dpid uint64) string { return fmt.Sprintf("%016x", dpid) }

// bundle records a committed bundle.
func (mt *metrics) bundle(dpid uint64, kind string, mods int, took time.Duration) {
	b := bridgeLabel(dpid)
	mt.bundles.WithLabelValues(b, kind).Inc()
	mt.flowMods.WithLabelValues(b, kind).Add(float64(mods))
	mt.duration.WithLabelValues(kind).Observe(took.Seconds())
}

// forget drops a bridge's series: its session has ended, and nothing of
// it counts any more.
func (mt *metrics) forget(dpid uint64) {
	b := prometheus.Labels{"bridge": bridgeLabel(dpid)}
	for _, v := range []*prometheus.CounterVec{mt.bundles, mt.flowMods, mt.rounds, mt.roleChanges} {
		v.DeletePartialMatch(b)
	}
}

// collector reads each bridge's state when scraped.
type collector struct {
	m *Manager

	desired, installed, quarantined, round *prometheus.Desc
	queueDropped, malformed, meterDropped  *prometheus.Desc
	outcomes, bridges                      *prometheus.Desc
}

func newCollector(m *Manager) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("wyvern_"+name, help, labels, nil)
	}
	return &collector{m: m,
		desired:      d("bridge_flows_desired", "Flows the apps want on a bridge (reactive flows not counted).", "bridge"),
		installed:    d("bridge_flows_installed", "Flows the reconciler has committed to a bridge and believes it holds.", "bridge"),
		quarantined:  d("reconciler_quarantined_flows", "Flows a bridge refused, left out until their app changes them (wyvern punts shows them).", "bridge"),
		round:        d("reconciler_cookie_round", "A bridge's current cookie round.", "bridge"),
		queueDropped: d("punt_queue_dropped_total", "Packet-ins the controller's fair queue dropped (a source's share, or the whole queue, full).", "bridge"),
		malformed:    d("punt_undecodable_total", "Packet-ins that could not be decoded.", "bridge"),
		meterDropped: d("punt_meter_dropped_packets_total", "Punts a bridge's meter dropped in the datapath, by meter (a port's, or a shared one).", "bridge", "meter"),
		outcomes:     d("punt_outcomes_total", "Punts by what the controller did with them.", "outcome"),
		bridges:      d("bridges_connected", "Bridges with an OpenFlow session to this node."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.desired, c.installed, c.quarantined, c.round, c.queueDropped, c.malformed,
		c.meterDropped, c.outcomes, c.bridges} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for name, v := range c.m.stats.Counters() {
		ch <- prometheus.MustNewConstMetric(c.outcomes, prometheus.CounterValue, float64(v), name)
	}
	c.m.mu.Lock()
	loops := make([]*loop, 0, len(c.m.bridges))
	for _, l := range c.m.bridges {
		loops = append(loops, l)
	}
	c.m.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.bridges, prometheus.GaugeValue, float64(len(loops)))
	var wg sync.WaitGroup
	for _, l := range loops {
		b := bridgeLabel(l.sw.DPID())
		l.mu.Lock()
		desired, installed, quarantined, round := l.desiredCount, l.installed.Len(), len(l.rejected), l.round
		l.mu.Unlock()
		ch <- prometheus.MustNewConstMetric(c.desired, prometheus.GaugeValue, float64(desired), b)
		ch <- prometheus.MustNewConstMetric(c.installed, prometheus.GaugeValue, float64(installed), b)
		ch <- prometheus.MustNewConstMetric(c.quarantined, prometheus.GaugeValue, float64(quarantined), b)
		ch <- prometheus.MustNewConstMetric(c.round, prometheus.GaugeValue, float64(round), b)
		if s, ok := l.sw.(interface{ Stats() *ofctl.Stats }); ok {
			st := s.Stats()
			ch <- prometheus.MustNewConstMetric(c.queueDropped, prometheus.CounterValue, float64(st.PuntsDropped.Load()), b)
			ch <- prometheus.MustNewConstMetric(c.malformed, prometheus.CounterValue, float64(st.PuntsMalformed.Load()), b)
		}
		wg.Add(1)
		go func() { // a meter statistics request per bridge, bounded
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			stats, err := l.sw.MeterStats(ctx)
			if err != nil {
				return
			}
			for _, ms := range stats {
				// A port's meter has a series once it has dropped a
				// punt: a node serving hundreds of bridges has a meter
				// for every port of each, and a series for each would
				// be most of a scrape (docs/operations.md, Scale).
				name, shared := sharedMeterName(ms.ID)
				if !shared {
					if ms.Dropped == 0 {
						continue
					}
					name = fmt.Sprintf("port-%d", ms.ID)
				}
				ch <- prometheus.MustNewConstMetric(c.meterDropped, prometheus.CounterValue, float64(ms.Dropped), b, name)
			}
		}()
	}
	wg.Wait()
}

// sharedMeterName is a shared meter's purpose; a port's meter (its key)
// is no shared one.
func sharedMeterName(id uint32) (name string, shared bool) {
	switch id {
	case pipeline.MeterFromRemotes:
		return "from-remotes", true
	case pipeline.MeterAnnouncements:
		return "announcements", true
	case pipeline.MeterICMPErrors:
		return "icmp-errors", true
	case pipeline.MeterNeighbours:
		return "neighbours", true
	}
	return "", false
}
