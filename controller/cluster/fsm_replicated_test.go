package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/wyvern-sdn/wyvern/controller/cluster"
	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// TestStandardAttributesAgreeAcrossReplicas: three nodes hold the same
// created_at and updated_at for an object changed through a follower,
// and a stale If-Match sent to a follower is refused (412) as the leader
// applies it.
func TestStandardAttributesAgreeAcrossReplicas(t *testing.T) {
	nodes := threeMembers(t)
	n1 := nodes[0]
	fs := followersOf(nodes)
	follower := fs[len(fs)-1]
	ctx := context.Background()
	if _, err := follower.c.Propose(ctx, cluster.CmdNetworksCreate, cluster.NetworksCreate{Specs: []topology.NetworkSpec{{ID: "net-1"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := follower.c.Propose(ctx, cluster.CmdTags, cluster.Tags{Resource: topology.ResourceNetwork, ID: "net-1", Op: topology.TagAdd, Tags: []string{"t"}}); err != nil {
		t.Fatal(err)
	}
	var first topology.Network
	for i, m := range nodes {
		if err := m.c.Consistent(ctx); err != nil {
			t.Fatal(err)
		}
		var n topology.Network
		m.c.Read(func(s *topology.Store) { n, _ = s.Network("net-1") })
		if n.CreatedAt == "" || n.UpdatedAt == "" || len(n.Tags) != 1 {
			t.Fatalf("%s: %+v", m.c.NodeID(), n)
		}
		if i == 0 {
			first = n
		} else if n.Stamps != first.Stamps || n.RevisionNumber != first.RevisionNumber {
			t.Fatalf("%s holds %+v rev %d, %s %+v rev %d", m.c.NodeID(), n.Stamps, n.RevisionNumber, n1.c.NodeID(), first.Stamps, first.RevisionNumber)
		}
	}
	// A stale If-Match through a follower's API: 412, and nothing changes.
	req, _ := http.NewRequest("PUT", follower.api+"/v2.0/networks/net-1", strings.NewReader(`{"network":{"name":"late"}}`))
	req.Header.Set("If-Match", "revision_number=1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ NeutronError struct{ Type string } }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPreconditionFailed || body.NeutronError.Type != "RevisionNumberConstraintFailed" {
		t.Fatalf("a stale If-Match on a follower: %d %+v", resp.StatusCode, body)
	}
	var n topology.Network
	n1.c.Read(func(s *topology.Store) { n, _ = s.Network("net-1") })
	if n.Name == "late" {
		t.Fatal("a refused change was made")
	}
	// The forwarded error keeps its kind.
	_, err = follower.c.Propose(ctx, cluster.CmdTags, cluster.Tags{Resource: topology.ResourceNetwork, ID: "net-1", Op: topology.TagRemove, Tags: []string{"nope"}})
	var te *topology.Error
	if !errors.As(err, &te) || te.Type != "TagNotFound" {
		t.Fatalf("removing a missing tag through a follower: %v", err)
	}
}
