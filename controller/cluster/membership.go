package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// JoinRequest is what a joining node sends to any member.
type JoinRequest struct {
	ID           string `json:"id"`
	RaftAddress  string `json:"raft_address"`
	APIAddress   string `json:"api_address"`
	OpenFlowAddr string `json:"openflow_address"`
	Voter        string `json:"voter"`
}

// JoinReply tells the joiner how far it must apply before it is ready.
type JoinReply struct {
	Suffrage string `json:"suffrage"`
	// AppliedIndex is the leader's FSM index once the joiner was added:
	// the joiner is ready when its own FSM has applied that far.
	AppliedIndex uint64 `json:"applied_index"`
	// CommitIndex is raft's commit index then (informative).
	CommitIndex uint64 `json:"commit_index"`
}

// Join adds a node to the cluster, or refreshes its addresses: on the
// leader directly, from a follower over the internal channel.
func (c *Cluster) Join(ctx context.Context, req JoinRequest) (JoinReply, error) {
	if req.ID == "" || req.RaftAddress == "" || req.APIAddress == "" {
		return JoinReply{}, &topology.Error{Kind: topology.KindInvalid, Type: "InvalidInput", Message: "join needs id, raft_address and api_address"}
	}
	switch req.Voter {
	case "", VoterAuto, VoterTrue, VoterFalse:
	default:
		return JoinReply{}, &topology.Error{Kind: topology.KindInvalid, Type: "InvalidInput", Message: "voter must be auto, true or false"}
	}
	if c.raft.State() == raft.Leader {
		return c.addMember(ctx, req)
	}
	var out memberOutcome
	if err := c.callLeader(ctx, http.MethodPost, "/internal/join", req, &out); err != nil {
		return JoinReply{}, err
	}
	return out.Reply, out.err()
}

// RemoveMember takes a node out of the cluster, from any node.
func (c *Cluster) RemoveMember(ctx context.Context, id string) error {
	if c.raft.State() == raft.Leader {
		return c.removeMember(ctx, id)
	}
	var out memberOutcome
	if err := c.callLeader(ctx, http.MethodDelete, "/internal/members/"+id, nil, &out); err != nil {
		return err
	}
	return out.err()
}

func (o memberOutcome) err() error {
	switch {
	case o.Error != nil:
		return o.Error
	case o.NoLeader != "":
		return fmt.Errorf("%w: %s", ErrNoLeader, o.NoLeader)
	}
	return nil
}

// addMember runs on the leader: add the node to the raft configuration
// with the suffrage asked for, then record its addresses in the FSM.
func (c *Cluster) addMember(ctx context.Context, req JoinRequest) (JoinReply, error) {
	if c.raft.State() != raft.Leader {
		return JoinReply{}, errNotLeader
	}
	cf := c.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return JoinReply{}, err
	}
	voters := 0
	var existing *raft.Server
	for _, s := range cf.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
		if s.ID == raft.ServerID(req.ID) {
			existing = &s
		}
	}
	voter := req.Voter == VoterTrue || (req.Voter == VoterAuto || req.Voter == "") && voters < autoVoters
	if existing != nil && existing.Address == raft.ServerAddress(req.RaftAddress) {
		voter = existing.Suffrage == raft.Voter // a rejoin keeps its place
	}
	if existing == nil || existing.Address != raft.ServerAddress(req.RaftAddress) {
		var f raft.IndexFuture
		if voter {
			f = c.raft.AddVoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddress), 0, 10*time.Second)
		} else {
			f = c.raft.AddNonvoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddress), 0, 10*time.Second)
		}
		if err := f.Error(); err != nil {
			return JoinReply{}, fmt.Errorf("adding %s to raft: %w", req.ID, err)
		}
	}
	m := topology.Member{ID: req.ID, RaftAddr: req.RaftAddress, APIAddr: req.APIAddress, OpenFlowAddr: req.OpenFlowAddr}
	var have topology.Member
	var registered bool
	c.fsm.Read(func(s *topology.Store) { have, registered = s.Member(req.ID) })
	if !registered || have != m {
		if _, err := c.apply(ctx, CmdMemberRegister, MemberReg{Member: m}); err != nil {
			return JoinReply{}, err
		}
	}
	suffrage := "nonvoter"
	if voter {
		suffrage = "voter"
	}
	c.log.Info("member joined", zap.String("member", req.ID), zap.String("suffrage", suffrage))
	return JoinReply{Suffrage: suffrage, AppliedIndex: c.fsm.Index(), CommitIndex: c.raft.CommitIndex()}, nil
}

// removeMember runs on the leader. The member record goes first: removing
// the leader itself from raft makes it step down, and nothing after that
// could be committed by it.
func (c *Cluster) removeMember(ctx context.Context, id string) error {
	if c.raft.State() != raft.Leader {
		return errNotLeader
	}
	cf := c.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return err
	}
	inRaft := false
	for _, s := range cf.Configuration().Servers {
		inRaft = inRaft || s.ID == raft.ServerID(id)
	}
	if _, err := c.apply(ctx, CmdMemberRemove, ByID{ID: id}); err != nil {
		var te *topology.Error
		if !errors.As(err, &te) || te.Kind != topology.KindNotFound {
			return err
		}
		if !inRaft { // neither registered nor in raft: no such member
			return err
		}
	}
	if !inRaft {
		return nil // registered only (a join cut short): the record is gone
	}
	if err := c.raft.RemoveServer(raft.ServerID(id), 0, 10*time.Second).Error(); err != nil {
		return fmt.Errorf("removing %s from raft: %w", id, err)
	}
	return nil
}

// joinVia asks the members listed in --join (API URLs), in turn, until
// one adds us. The API tells only where its node's internal channel is
// (GET /v2.0/cluster/raft-address); the join itself goes there, where the
// guard checks our certificate or cluster secret, and that node hands it
// to its leader. Nothing about membership is decided on the public API.
func (c *Cluster) joinVia(ctx context.Context, urls []string) (JoinReply, error) {
	req := JoinRequest{ID: c.cfg.NodeID, RaftAddress: c.cfg.RaftAddr, APIAddress: c.cfg.APIAddr,
		OpenFlowAddr: c.cfg.OpenFlowAddr, Voter: c.cfg.Voter}
	api := &http.Client{Timeout: 15 * time.Second}
	if c.guard.tlsClient != nil {
		api.Transport = &http.Transport{TLSClientConfig: c.guard.tlsClient.Clone()}
	}
	delay := 200 * time.Millisecond
	for {
		for _, base := range urls {
			addr, err := raftAddressOf(ctx, api, base)
			if err != nil {
				c.log.Info("join attempt failed; retrying", zap.String("via", base), zap.Error(err))
				continue
			}
			var out memberOutcome
			if err := c.client.call(ctx, addr, http.MethodPost, "/internal/join-request", req, &out); err != nil {
				c.log.Info("join attempt failed; retrying", zap.String("via", base), zap.String("raft-address", addr), zap.Error(err))
				continue
			}
			if err := out.err(); err != nil {
				c.log.Info("join refused; retrying", zap.String("via", base), zap.Error(err))
				continue
			}
			return out.Reply, nil
		}
		select {
		case <-ctx.Done():
			return JoinReply{}, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// raftAddressOf asks a member's API where its internal channel listens.
func raftAddressOf(ctx context.Context, api *http.Client, base string) (string, error) {
	url := strings.TrimRight(base, "/") + "/v2.0/cluster/raft-address"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := api.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, bytes.TrimSpace(b))
	}
	var out struct {
		RaftAddress string `json:"raft_address"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.RaftAddress == "" {
		return "", fmt.Errorf("GET %s: no raft_address in %q", url, b)
	}
	return out.RaftAddress, nil
}

// RaftAddress is where this node's raft and internal channel listen.
func (c *Cluster) RaftAddress() string { return c.cfg.RaftAddr }

// MemberStatus is one member as GET /v2.0/cluster shows it.
type MemberStatus struct {
	ID          string `json:"id"`
	RaftAddress string `json:"raft_address"`
	APIAddress  string `json:"api_address"`
	// OpenFlowAddress is where the member's bridges connect
	// (--openflow-addr): what a bridge of a chassis no node runs on lists.
	OpenFlowAddress string `json:"openflow_address,omitempty"`
	Suffrage        string `json:"suffrage"`
	State           string `json:"state"`
	// Unreachable: the leader's word that the node has stopped answering
	// raft's heartbeats and is gone (or has been failing them for
	// several seconds); it is master of no bridge.
	Unreachable bool `json:"unreachable,omitempty"`
}

// Status is the cluster as this node sees it.
type Status struct {
	Leader  string         `json:"leader"`
	Members []MemberStatus `json:"members"`
	// AppliedIndex is the raft index of the last command this node's FSM
	// applied: what its reads reflect.
	AppliedIndex uint64 `json:"applied_index"`
	CommitIndex  uint64 `json:"commit_index"`
	Node         string `json:"node"`
	Ready        bool   `json:"ready"`
}

// Status reads the raft configuration and the registered addresses.
func (c *Cluster) Status() (Status, error) {
	cf := c.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return Status{}, err
	}
	_, leader := c.raft.LeaderWithID()
	regs := map[string]topology.Member{}
	c.fsm.Read(func(s *topology.Store) {
		for _, m := range s.Members() {
			regs[m.ID] = m
		}
	})
	st := Status{Leader: string(leader), AppliedIndex: c.fsm.Index(), CommitIndex: c.raft.CommitIndex(),
		Node: c.cfg.NodeID, Ready: c.ready.Load()}
	for _, s := range cf.Configuration().Servers {
		m := MemberStatus{ID: string(s.ID), RaftAddress: string(s.Address), APIAddress: regs[string(s.ID)].APIAddr,
			OpenFlowAddress: regs[string(s.ID)].OpenFlowAddr, Suffrage: "voter", State: "follower", Unreachable: regs[string(s.ID)].Unreachable}
		if s.Suffrage != raft.Voter {
			m.Suffrage = "nonvoter"
		}
		if s.ID == leader {
			m.State = "leader"
		}
		if s.ID == raft.ServerID(c.cfg.NodeID) {
			m.State = strings.ToLower(c.raft.State().String())
		}
		st.Members = append(st.Members, m)
	}
	sort.Slice(st.Members, func(i, j int) bool { return st.Members[i].ID < st.Members[j].ID })
	return st, nil
}
