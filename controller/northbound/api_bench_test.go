package northbound

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
)

// BenchmarkBulkCreatePortsInProcess posts 1000-port bulk creates to a
// an in-memory cluster over real HTTP: the API and FSM cost without
// raft, for profiling.
func BenchmarkBulkCreatePortsInProcess(b *testing.B) {
	c := startAPI(b)
	netID := id(c.create("/v2.0/networks", `{"network":{"name":"bench"}}`), "network")
	c.create("/v2.0/subnets", fmt.Sprintf(`{"subnet":{"network_id":%q,"cidr":"10.64.0.0/12"}}`, netID))
	ports := make([]map[string]any, 1000)
	for i := range ports {
		ports[i] = map[string]any{"network_id": netID}
	}
	body, _ := json.Marshal(map[string]any{"ports": ports})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := http.Post(c.base+"/v2.0/ports", "application/json", bytes.NewReader(body))
		if err != nil || resp.StatusCode != http.StatusCreated {
			b.Fatalf("bulk create: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "ports/s")
}
