package cluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Remote proposes commands to a cluster from outside it, over the
// members' internal channel, exactly as a follower forwards its own
// (POST /internal/propose, past the guard: the cluster secret, mutual
// TLS, or both): for an agent that is no member — a chassis agent
// without a node, or the switch emulator of bench/ registering a
// thousand chassis the way a real node's chassis does.
//
// A member that does not lead answers that it does not; Remote then asks
// the next, and remembers who answered.
type Remote struct {
	members []string
	client  *internalClient

	mu     sync.Mutex
	leader int // index of the member that answered last
}

// RemoteConfig is how to reach a cluster's internal channel.
type RemoteConfig struct {
	// Members are raft addresses (HOST:PORT) of members; RaftAddresses
	// finds them from API URLs.
	Members []string
	// Secret and TLS are the cluster secret and the client TLS
	// configuration (a certificate the cluster CA signed), as the
	// members have them; either may be nil.
	Secret []byte
	TLS    *tls.Config
}

// NewRemote returns a client of the members' internal channel.
func NewRemote(cfg RemoteConfig) (*Remote, error) {
	if len(cfg.Members) == 0 {
		return nil, errors.New("cluster: a remote client needs at least one member's raft address")
	}
	return &Remote{members: append([]string(nil), cfg.Members...), client: newInternalClient(newGuard(cfg.Secret, nil, cfg.TLS))}, nil
}

// RaftAddresses asks each member's API (GET /v2.0/cluster/raft-address,
// as a joining node does) where its internal channel listens.
func RaftAddresses(ctx context.Context, api *http.Client, urls []string) ([]string, error) {
	out := make([]string, 0, len(urls))
	for _, u := range urls {
		a, err := raftAddressOf(ctx, api, u)
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		out = append(out, a)
	}
	return out, nil
}

// Propose commits a command through the leader and returns its result,
// as Cluster.Propose does on a follower: a business error comes back as
// *topology.Error. While no member leads (an election), it retries until
// ctx ends, then returns ErrNoLeader.
func (r *Remote) Propose(ctx context.Context, t CommandType, payload any) (Result, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return Result{}, err
	}
	if err := checkPayload(t, b); err != nil {
		return Result{}, err
	}
	p := proposal{Type: t, Payload: b}
	delay := 20 * time.Millisecond
	for {
		var last error
		r.mu.Lock()
		first := r.leader
		r.mu.Unlock()
		for k := range r.members {
			i := (first + k) % len(r.members)
			var out outcome
			if err := r.client.call(ctx, r.members[i], http.MethodPost, "/internal/propose", p, &out); err != nil {
				last = fmt.Errorf("member %s: %w", r.members[i], err)
				continue
			}
			if out.NoLeader != "" {
				last = fmt.Errorf("member %s: %s", r.members[i], out.NoLeader)
				continue
			}
			r.mu.Lock()
			r.leader = i
			r.mu.Unlock()
			if out.Error != nil {
				return Result{Index: out.Index}, out.Error
			}
			return Result{Index: out.Index, raw: out.Value}, nil
		}
		select {
		case <-ctx.Done():
			return Result{}, fmt.Errorf("%w: %v (%v)", ErrNoLeader, last, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}
