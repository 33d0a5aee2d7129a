package northbound

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/wyvern-sdn/wyvern/controller/cluster"
)

// TestReadinessNamesWhatIsMissing: /readyz and its alias /healthz follow
// the node's Unready hook, naming each missing part; /livez does not.
func TestReadinessNamesWhatIsMissing(t *testing.T) {
	var missing atomic.Pointer[[]string]
	missing.Store(&[]string{})
	srv := httptest.NewServer(New(cluster.NewMemory("n1"), Options{Unready: func() []string { return *missing.Load() }},
		zaptest.NewLogger(t)).Handler())
	t.Cleanup(srv.Close)
	c := apiClient{t, srv.URL}
	check := func(path string, wantCode int, wantStatus string, wantMissing []string) {
		t.Helper()
		code, out := c.do("GET", path, "")
		var got []string
		if m, ok := out["missing"].([]any); ok {
			for _, s := range m {
				got = append(got, s.(string))
			}
		}
		if code != wantCode || out["status"] != wantStatus || !slices.Equal(got, wantMissing) || out["node"] != "n1" {
			t.Errorf("GET %s: %d %v, want %d status %q missing %q", path, code, out, wantCode, wantStatus, wantMissing)
		}
	}
	for _, p := range []string{"/readyz", "/healthz"} {
		check(p, http.StatusOK, "ready", nil)
	}
	check("/livez", http.StatusOK, "live", nil)

	gone := []string{"ovsdb: not connected to unix:/x/db.sock", "bridge: br-int not programmed"}
	missing.Store(&gone)
	for _, p := range []string{"/readyz", "/healthz"} {
		check(p, http.StatusServiceUnavailable, "not ready", gone)
	}
	check("/livez", http.StatusOK, "live", nil)
}
