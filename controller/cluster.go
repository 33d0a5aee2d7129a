package controller

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// Suffrage choices for --voter.
const (
	VoterAuto  = "auto"
	VoterTrue  = "true"
	VoterFalse = "false"
)

// autoVoters is how many voters --voter=auto fills before joining nodes
// become non-voters.
const autoVoters = 3

var (
	// ErrNoLeader means the cluster has no leader this node can reach.
	ErrNoLeader = errors.New("no cluster leader")
	// errNotLeader is returned by leader-only operations on a follower.
	errNotLeader = errors.New("this node is not the leader")
)

// zapWriter turns hclog's lines into zap entries.
type zapWriter struct{ log *zap.Logger }

func (w zapWriter) Write(p []byte) (int, error) {
	sc := bufio.NewScanner(bytes.NewReader(p))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, "[ERROR]"):
			w.log.Error(line)
		case strings.Contains(line, "[WARN]"):
			w.log.Warn(line)
		default:
			w.log.Info(line)
		}
	}
	return len(p), nil
}

// openRaft starts raft over TCP with boltdb log and stable stores and file
// snapshots under dir.
func openRaft(cfg NodeConfig, fsm *FSM, log *zap.Logger) (*raft.Raft, raft.Transport, bool, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, nil, false, err
	}
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: zapWriter{log.Named("raft")}})
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = hl
	rc.HeartbeatTimeout = 500 * time.Millisecond
	rc.ElectionTimeout = 500 * time.Millisecond
	rc.LeaderLeaseTimeout = 250 * time.Millisecond
	rc.CommitTimeout = 5 * time.Millisecond
	rc.SnapshotThreshold = 8192
	rc.SnapshotInterval = 30 * time.Second
	rc.TrailingLogs = 10240

	addr, err := net.ResolveTCPAddr("tcp", cfg.RaftAddr)
	if err != nil {
		return nil, nil, false, fmt.Errorf("raft address %s: %w", cfg.RaftAddr, err)
	}
	trans, err := raft.NewTCPTransportWithLogger(cfg.RaftAddr, addr, 4, 10*time.Second, hl)
	if err != nil {
		return nil, nil, false, fmt.Errorf("raft transport on %s: %w", cfg.RaftAddr, err)
	}
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, "raft.db")})
	if err != nil {
		_ = trans.Close()
		return nil, nil, false, fmt.Errorf("raft log in %s: %w", cfg.DataDir, err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, hl)
	if err != nil {
		_ = trans.Close()
		return nil, nil, false, err
	}
	existing, err := raft.HasExistingState(bolt, bolt, snaps)
	if err != nil {
		_ = trans.Close()
		return nil, nil, false, err
	}
	r, err := raft.NewRaft(rc, fsm, bolt, bolt, snaps, trans)
	if err != nil {
		_ = trans.Close()
		return nil, nil, false, err
	}
	return r, trans, existing, nil
}

// joinRequest is what a joining node sends to any member.
type joinRequest struct {
	ID           string `json:"id"`
	RaftAddress  string `json:"raft_address"`
	APIAddress   string `json:"api_address"`
	OpenFlowAddr string `json:"openflow_address"`
	Voter        string `json:"voter"`
}

// joinReply tells the joiner how far it must apply before it is ready.
type joinReply struct {
	Suffrage    string `json:"suffrage"`
	CommitIndex uint64 `json:"commit_index"`
}

// addMember runs on the leader: add the node to the raft configuration
// with the suffrage asked for, then record its addresses in the FSM.
func (n *Node) addMember(ctx context.Context, req joinRequest) (joinReply, error) {
	if n.raft.State() != raft.Leader {
		return joinReply{}, errNotLeader
	}
	if req.ID == "" || req.RaftAddress == "" || req.APIAddress == "" {
		return joinReply{}, &topology.Error{Kind: topology.KindInvalid, Type: "InvalidInput", Message: "join needs id, raft_address and api_address"}
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return joinReply{}, err
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
	var f raft.IndexFuture
	if voter {
		f = n.raft.AddVoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddress), 0, 10*time.Second)
	} else {
		f = n.raft.AddNonvoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddress), 0, 10*time.Second)
	}
	if err := f.Error(); err != nil {
		return joinReply{}, fmt.Errorf("adding %s to raft: %w", req.ID, err)
	}
	m := topology.Member{ID: req.ID, RaftAddr: req.RaftAddress, APIAddr: req.APIAddress, OpenFlowAddr: req.OpenFlowAddr}
	if _, err := n.propose(ctx, cmdMemberRegister, memberReg{Member: m}); err != nil {
		return joinReply{}, err
	}
	suffrage := "nonvoter"
	if voter {
		suffrage = "voter"
	}
	n.log.Info("member joined", zap.String("member", req.ID), zap.String("suffrage", suffrage))
	return joinReply{Suffrage: suffrage, CommitIndex: n.raft.CommitIndex()}, nil
}

// removeMember runs on the leader. The member record goes first: removing
// the leader itself from raft makes it step down, and nothing after that
// could be committed by it.
func (n *Node) removeMember(ctx context.Context, id string) error {
	if n.raft.State() != raft.Leader {
		return errNotLeader
	}
	if _, err := n.propose(ctx, cmdMemberRemove, byID{ID: id}); err != nil {
		var te *topology.Error
		if !errors.As(err, &te) || te.Kind != topology.KindNotFound {
			return err
		}
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, 10*time.Second).Error(); err != nil {
		return fmt.Errorf("removing %s from raft: %w", id, err)
	}
	return nil
}

// leaderCaughtUp makes a consistent read safe on this leader: it is still
// the leader, and (once per term) a barrier has applied everything the
// previous leaders committed.
func (n *Node) leaderCaughtUp() error {
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return fmt.Errorf("%w: %v", ErrNoLeader, err)
	}
	term := n.raft.CurrentTerm()
	if n.barrierTerm.Load() == term {
		return nil
	}
	if err := n.raft.Barrier(5 * time.Second).Error(); err != nil {
		return fmt.Errorf("%w: %v", ErrNoLeader, err)
	}
	n.barrierTerm.Store(term)
	return nil
}

// join asks the members listed in --join, in turn, until one adds us.
func (n *Node) join(ctx context.Context) (joinReply, error) {
	req := joinRequest{ID: n.cfg.NodeID, RaftAddress: n.cfg.RaftAddr, APIAddress: n.cfg.APIAddr,
		OpenFlowAddr: n.cfg.OpenFlowAddr, Voter: n.cfg.Voter}
	body, _ := json.Marshal(req)
	delay := 200 * time.Millisecond
	for {
		for _, base := range n.cfg.Join {
			url := strings.TrimRight(base, "/") + "/v2.0/cluster/members"
			rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			hreq, _ := http.NewRequestWithContext(rctx, http.MethodPost, url, bytes.NewReader(body))
			hreq.Header.Set("Content-Type", "application/json")
			resp, err := n.client.Do(hreq)
			if err == nil {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				resp.Body.Close()
				cancel()
				if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated {
					var out struct {
						Member joinReply `json:"member"`
					}
					if err := json.Unmarshal(b, &out); err != nil {
						return joinReply{}, fmt.Errorf("join reply from %s: %w", base, err)
					}
					return out.Member, nil
				}
				n.log.Info("join refused; retrying", zap.String("via", base), zap.Int("status", resp.StatusCode), zap.ByteString("body", b))
			} else {
				cancel()
				n.log.Info("join attempt failed; retrying", zap.String("via", base), zap.Error(err))
			}
		}
		select {
		case <-ctx.Done():
			return joinReply{}, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// leaderAPI returns the API address of the current leader.
func (n *Node) leaderAPI() (string, error) {
	_, id := n.raft.LeaderWithID()
	if id == "" {
		return "", ErrNoLeader
	}
	var addr string
	n.fsm.Read(func(s *topology.Store) {
		if m, ok := s.Member(string(id)); ok {
			addr = m.APIAddr
		}
	})
	if addr == "" {
		return "", fmt.Errorf("%w: leader %s has not registered its API address yet", ErrNoLeader, id)
	}
	return addr, nil
}

// propose applies a command through raft on the leader and returns the
// FSM's result. A business error comes back as *topology.Error.
func (n *Node) propose(ctx context.Context, t CommandType, payload any) (any, error) {
	cmd, err := encodeCommand(t, payload)
	if err != nil {
		return nil, err
	}
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	f := n.raft.Apply(cmd, timeout)
	if err := f.Error(); err != nil {
		// ErrLeadershipLost is ambiguous: the entry may still commit.
		// Clients retry with the id they chose (docs/api.md).
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
			errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, raft.ErrEnqueueTimeout) ||
			errors.Is(err, raft.ErrRaftShutdown) {
			return nil, fmt.Errorf("%w: %v", ErrNoLeader, err)
		}
		return nil, err
	}
	res, _ := f.Response().(applyResult)
	return res.Value, res.Err
}

// waitReady marks the node ready once it has applied the log up to the
// leader's commit index at the time it joined (or, for a node that
// restarts or bootstraps, at the time a leader first answered).
func (n *Node) waitReady(ctx context.Context, target uint64) {
	for ctx.Err() == nil {
		if target == 0 {
			target = n.leaderCommitIndex(ctx)
		}
		if target > 0 && n.raft.AppliedIndex() >= target {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// leaderCommitIndex asks the leader (or ourselves, when leading) how far
// the log is committed; 0 when no leader answers.
func (n *Node) leaderCommitIndex(ctx context.Context) uint64 {
	if n.raft.State() == raft.Leader {
		if n.raft.Barrier(5*time.Second).Error() != nil {
			return 0
		}
		return n.raft.CommitIndex()
	}
	addr, err := n.leaderAPI()
	if err != nil {
		return 0
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodGet, "http://"+addr+"/v2.0/cluster", nil)
	resp, err := n.client.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var out struct {
		Cluster struct {
			CommitIndex uint64 `json:"commit_index"`
		} `json:"cluster"`
	}
	if json.NewDecoder(resp.Body).Decode(&out) != nil {
		return 0
	}
	return out.Cluster.CommitIndex
}
