package main

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/daemontest"
	"github.com/wyvern-sdn/wyvern/internal/ovstest"
)

// healthBody is what /livez, /readyz and /healthz answer.
type healthBody struct {
	Status  string   `json:"status"`
	Node    string   `json:"node"`
	Missing []string `json:"missing"`
}

// TestHealthFollowsTheLocalOVSDB: on a node with --ovsdb, /readyz (and
// its alias /healthz) is 503 naming OVSDB while ovsdb-server is down and
// 200 again once it is back; /livez stays 200 throughout.
func TestHealthFollowsTheLocalOVSDB(t *testing.T) {
	tb := newTestbed(t, 1)
	h := tb.hvs[0]
	get := func(path string) (int, healthBody) {
		t.Helper()
		var out healthBody
		code, err := daemontest.Call(tb.client, "GET", tb.scheme+"://"+h.api, path, nil, &out)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return code, out
	}
	ready := func(what string) {
		t.Helper()
		ovstest.Eventually(t, 30*time.Second, what, func() bool {
			code, out := get("/readyz")
			return code == http.StatusOK && out.Status == "ready" && len(out.Missing) == 0
		})
		for _, p := range []string{"/livez", "/healthz"} {
			if code, out := get(p); code != http.StatusOK {
				t.Fatalf("%s: GET %s %d %+v, want 200", what, p, code, out)
			}
		}
	}
	ready("ready at start")
	if code, out := get("/livez"); out.Status != "live" || out.Node != "hv1" {
		t.Fatalf("GET /livez: %d %+v", code, out)
	}

	h.ovs.StopOVSDB()
	want := []string{"ovsdb: not connected to " + h.ovs.DB()}
	start := time.Now()
	ovstest.Eventually(t, 10*time.Second, "/readyz 503 without ovsdb-server", func() bool {
		code, out := get("/readyz")
		return code == http.StatusServiceUnavailable && out.Status == "not ready" && slices.Equal(out.Missing, want)
	})
	t.Logf("/readyz went 503 %s after ovsdb-server stopped", time.Since(start).Round(time.Millisecond))
	if code, out := get("/healthz"); code != http.StatusServiceUnavailable || !slices.Equal(out.Missing, want) {
		t.Fatalf("GET /healthz without ovsdb-server: %d %+v, want 503 missing %q", code, out, want)
	}
	if code, out := get("/livez"); code != http.StatusOK || out.Status != "live" {
		t.Fatalf("GET /livez without ovsdb-server: %d %+v, want 200", code, out)
	}

	h.ovs.RestartOVSDB()
	start = time.Now()
	ready("ready again after ovsdb-server restarted")
	t.Logf("/readyz back to 200 %s after ovsdb-server restarted", time.Since(start).Round(time.Millisecond))
}
