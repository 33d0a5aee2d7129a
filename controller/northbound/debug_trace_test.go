package northbound

import (
	"net/http"
	"strings"
	"testing"
)

// TestDebugEndpointsAreAdmins: the flows, traces, OVSDB and logs of a
// node are an admin's to read; a node that explains no chassis says so.
func TestDebugEndpointsAreAdmins(t *testing.T) {
	s := startScopedAPI(t)
	for _, path := range []string{"/debug/flows", "/debug/trace?from=p&to=10.0.0.1", "/debug/ovsdb", "/debug/logs"} {
		if code, _ := s.as("", "GET", path, ""); code != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d, want 401", path, code)
		}
		if code, _ := s.as("tok-a", "GET", path, ""); code != http.StatusForbidden {
			t.Errorf("GET %s as a project member: %d, want 403", path, code)
		}
		code, out := s.as("tok-admin", "GET", path, "")
		msg, _ := out["NeutronError"].(map[string]any)["message"].(string)
		if code != http.StatusNotFound || !strings.Contains(msg, "explains no chassis") {
			t.Errorf("GET %s as admin, no explainer: %d %v, want 404 saying so", path, code, out)
		}
	}
}
