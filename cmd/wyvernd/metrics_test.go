package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
)

// families parses Prometheus' text format.
func families(t *testing.T, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not Prometheus' text format: %v", err)
	}
	return fams
}

// sum adds a family's samples (counters, gauges, untyped; histograms'
// and summaries' counts) whose labels include every label given.
func sum(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	total := 0.0
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		case m.Summary != nil:
			total += float64(m.GetSummary().GetSampleCount())
		}
	}
	return total, true
}

// TestMetricsAfterTraffic: after VMs on two chassis talk, GET /metrics
// (API, admin) on the leader and the debug listener of the other node
// show every family the operator's dashboard uses with non-zero values:
// raft (our gauges and raft's own go-metrics), the API by route and code,
// the reconciler (bundles, flow-mods, per-bridge flows, cookie rounds),
// punts by reason with their answer latency, libovsdb's own; the debug
// listener serves pprof and changes the log level at run time; and every
// metric the Grafana dashboard queries exists.
func TestMetricsAfterTraffic(t *testing.T) {
	tb := newTestbed(t, 2)
	hv1, hv2 := tb.hvs[0], tb.hvs[1]
	a := tb.network("A", "vxlan", 100, "10.0.0.0/24")
	vm1, p1 := tb.vm(hv1, a, "")
	vm2, p2 := tb.vm(hv2, a, "")
	tb.waitActive(p1, p2)
	if err := ping(vm1, ipOf(vm2)); err != nil {
		t.Fatalf("ping: %v", err)
	}

	// Through the API of hv1 (the leader: it bootstrapped the cluster).
	resp, err := tb.client.Get(tb.scheme + "://" + hv1.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	fams := families(t, body)
	nonZero := []struct {
		name   string
		labels []string
	}{
		{"wyvern_raft_term", nil},
		{"wyvern_raft_commit_index", nil},
		{"wyvern_raft_applied_index", nil},
		{"wyvern_raft_is_leader", nil},
		{"wyvern_raft_leader_changes_total", nil},
		{"wyvern_raft_propose_seconds", []string{"outcome", "committed"}},
		{"wyvern_raft_commitTime", nil}, // raft's own, through go-metrics
		{"wyvern_raft_fsm_apply", nil},
		{"wyvern_api_requests_total", []string{"route", "POST /v2.0/ports", "code", "201"}},
		{"wyvern_api_request_duration_seconds", []string{"route", "GET /v2.0/ports/{id}"}},
		{"wyvern_reconciler_bundles_total", []string{"kind", "replay"}},
		{"wyvern_reconciler_bundles_total", []string{"kind", "reactive"}},
		{"wyvern_reconciler_flow_mods_total", nil},
		{"wyvern_reconciler_bundle_duration_seconds", nil},
		{"wyvern_reconciler_cookie_rounds_total", nil},
		{"wyvern_reconciler_cookie_round", nil},
		{"wyvern_bridge_flows_desired", nil},
		{"wyvern_bridge_flows_installed", nil},
		{"wyvern_bridges_connected", nil},
		{"wyvern_punt_received_total", nil},
		{"wyvern_punt_outcomes_total", []string{"outcome", "answered"}},
		{"wyvern_punt_answer_seconds", nil},
		{"wyvern_ovsdb_sessions_total", nil},
		{"wyvern_ovsdb_monitors", nil}, // libovsdb's own
		{"wyvern_build_info", nil},
		{"go_goroutines", nil},
		{"process_resident_memory_bytes", nil},
	}
	for _, w := range nonZero {
		v, ok := sum(fams, w.name, w.labels...)
		if !ok || v <= 0 {
			t.Errorf("%s%v: %v (present %v), want > 0", w.name, w.labels, v, ok)
		}
	}
	for _, name := range []string{"wyvern_reconciler_quarantined_flows", "wyvern_punt_queue_dropped_total",
		"wyvern_punt_meter_dropped_packets_total", "wyvern_raft_apply_lag_entries", "wyvern_raft_commit_lag_entries",
		"wyvern_ovsdb_disconnects_total"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}
	if v, _ := sum(fams, "wyvern_punt_received_total", "reason", "l2-miss"); v <= 0 {
		var reasons []string
		for _, m := range fams["wyvern_punt_received_total"].GetMetric() {
			reasons = append(reasons, fmt.Sprint(m.GetLabel(), m.GetCounter().GetValue()))
		}
		t.Logf("punts by reason: %v", reasons)
	}

	// The dashboard queries only what exists.
	checkDashboard(t, fams)

	// The debug listener of hv2, on its loopback.
	debug := func(method, path, body string) (int, string) {
		t.Helper()
		args := []string{"curl", "-s", "-o", "/dev/stdout", "-w", "\n%{http_code}", "-X", method, "-H", "Content-Type: application/json"}
		if body != "" {
			args = append(args, "-d", body)
		}
		out, err := hv2.ovs.NS.Exec(append(args, "http://127.0.0.1:9697"+path)...)
		if err != nil {
			t.Fatalf("%s %s on hv2's debug listener: %v", method, path, err)
		}
		i := strings.LastIndex(out, "\n")
		var code int
		fmt.Sscan(out[i+1:], &code)
		return code, out[:i]
	}
	code, text := debug("GET", "/metrics", "")
	if code != 200 {
		t.Fatalf("debug /metrics: %d", code)
	}
	f2 := families(t, []byte(text))
	if v, _ := sum(f2, "wyvern_raft_is_leader"); v != 0 {
		t.Errorf("hv2 says it leads (wyvern_raft_is_leader %v); hv1 bootstrapped the cluster", v)
	}
	if v, _ := sum(f2, "wyvern_raft_applied_index"); v <= 0 {
		t.Errorf("hv2's wyvern_raft_applied_index %v, want > 0", v)
	}
	if code, text := debug("GET", "/debug/pprof/", ""); code != 200 || !strings.Contains(text, "goroutine") {
		t.Errorf("pprof index: %d %.200s", code, text)
	}
	if code, text := debug("GET", "/debug/pprof/goroutine?debug=1", ""); code != 200 || !strings.Contains(text, "goroutine profile") {
		t.Errorf("goroutine profile: %d %.200s", code, text)
	}
	if code, text := debug("PUT", "/debug/log-level", `{"level":"debug"}`); code != 200 || !strings.Contains(text, `"debug"`) {
		t.Fatalf("PUT log-level debug: %d %s", code, text)
	}
	if code, text := debug("GET", "/debug/log-level", ""); code != 200 || !strings.Contains(text, `"debug"`) {
		t.Fatalf("GET log-level after PUT: %d %s", code, text)
	}
	// At debug, the chassis logs the ports it reports: a VM plugged on
	// hv2 now shows the new level in force.
	before, _ := os.ReadFile(hv2.m.logPath)
	_, p3 := tb.vm(hv2, a, "")
	tb.waitActive(p3)
	ovstest.Eventually(t, 5*time.Second, "hv2 logs at debug", func() bool {
		b, _ := os.ReadFile(hv2.m.logPath)
		return len(b) > len(before) && bytes.Contains(b[len(before):], []byte("ports reported"))
	})
	if code, text := debug("PUT", "/debug/log-level", `{"level":"loud"}`); code != 400 {
		t.Errorf("PUT log-level loud: %d %s, want 400", code, text)
	}
	if code, _ := debug("PUT", "/debug/log-level", `{"level":"info"}`); code != 200 {
		t.Errorf("PUT log-level info: %d", code)
	}
}

// dashboardPath is the Grafana dashboard shipped for operators.
const dashboardPath = "../../deploy/grafana/wyvern-dashboard.json"

// checkDashboard checks the dashboard is a Grafana dashboard (the fields
// Grafana's dashboard schema, v36 and later, requires, every panel placed and typed,
// every target a PromQL expression against the Prometheus datasource
// variable) and that each metric it queries is one the node exports.
func checkDashboard(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID           string `json:"uid"`
		Title         string `json:"title"`
		SchemaVersion int    `json:"schemaVersion"`
		Editable      *bool  `json:"editable"`
		GraphTooltip  *int   `json:"graphTooltip"`
		Time          struct {
			From string `json:"from"`
			To   string `json:"to"`
		} `json:"time"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			GridPos *struct {
				H, W, X, Y int
			} `json:"gridPos"`
			Datasource struct {
				Type string `json:"type"`
				UID  string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr  string `json:"expr"`
				RefID string `json:"refId"`
			} `json:"targets"`
		} `json:"panels"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	if d.Editable == nil || d.GraphTooltip == nil || *d.GraphTooltip < 0 || *d.GraphTooltip > 2 {
		t.Errorf("%s: Grafana's dashboard schema requires editable (bool) and graphTooltip (0, 1 or 2)", dashboardPath)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 || d.Time.From == "" || d.Time.To == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: not a Grafana dashboard: uid %q title %q schemaVersion %d time %+v panels %d",
			dashboardPath, d.UID, d.Title, d.SchemaVersion, d.Time, len(d.Panels))
	}
	hasDS := false
	for _, v := range d.Templating.List {
		hasDS = hasDS || v.Type == "datasource" && v.Name == "datasource" && v.Query == "prometheus"
	}
	if !hasDS {
		t.Errorf("%s: no datasource variable of type prometheus", dashboardPath)
	}
	kinds := map[string]bool{"timeseries": true, "stat": true, "gauge": true, "table": true, "row": true, "bargauge": true}
	ids := map[int]bool{}
	metricName := regexp.MustCompile(`\b(wyvern_[a-zA-Z0-9_]+|go_[a-z0-9_]+|process_[a-z0-9_]+)`)
	var used []string
	for _, p := range d.Panels {
		if !kinds[p.Type] || p.Title == "" || p.GridPos == nil || p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 || ids[p.ID] || p.ID == 0 {
			t.Errorf("%s: panel %d %q (%s): needs a unique id, a known type, a title and a gridPos within 24 columns", dashboardPath, p.ID, p.Title, p.Type)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("%s: panel %q: datasource %+v, %d targets", dashboardPath, p.Title, p.Datasource, len(p.Targets))
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.RefID == "" {
				t.Errorf("%s: panel %q: a target without expr or refId", dashboardPath, p.Title)
			}
			for _, m := range metricName.FindAllString(tg.Expr, -1) {
				base := m
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if _, ok := fams[base]; !ok {
						base = strings.TrimSuffix(base, suffix)
					}
				}
				if _, ok := fams[base]; !ok {
					t.Errorf("%s: panel %q queries %s, which the node does not export", dashboardPath, p.Title, m)
				}
				used = append(used, base)
			}
		}
	}
	sort.Strings(used)
	t.Logf("dashboard: %d panels over %d metrics", len(d.Panels), len(slices.Compact(used)))
}

// TestJSONLogs: with --log-format json every line wyvernd writes is one
// JSON object with a level, a message and the node, raft's entries
// included, their key-value pairs as fields of their own.
func TestJSONLogs(t *testing.T) {
	c := newCluster(t)
	m := c.add("auto", "--log-format", "json")
	waitHealthy(t, m)
	m.stop()
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	raft := 0
	for _, line := range lines {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		if e["level"] == nil || e["msg"] == nil || e["node"] != m.id || e["ts"] == nil {
			t.Errorf("want level, msg, ts and node %q: %s", m.id, line)
		}
		if e["logger"] == "cluster.raft" {
			raft++
			if e["msg"] == "entering leader state" && e["leader"] == nil {
				t.Errorf("raft's fields are not fields: %s", line)
			}
		}
	}
	if raft == 0 {
		t.Errorf("no raft entries among %d lines", len(lines))
	}
	t.Logf("%d lines, %d of raft", len(lines), raft)
}
