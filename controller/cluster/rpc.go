package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// The internal channel: HTTP over the raft address's mux, between nodes
// only. A follower forwards a command to the leader here (at most once: a
// node that is not the leader answers ErrNoLeader rather than forward
// again), asks the leader for its read index, and sends joins and
// removals.

// proposal is a command on the internal channel.
type proposal struct {
	Type    CommandType     `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// outcome is a committed command's result on the internal channel.
type outcome struct {
	Index uint64          `json:"index"`
	Value json.RawMessage `json:"value,omitempty"`
	Error *topology.Error `json:"error,omitempty"`
	// NoLeader: the node asked is not (or no longer) the leader.
	NoLeader string `json:"no_leader,omitempty"`
}

// Result is what a committed command returned: the objects it created or
// changed, as the leader's FSM gave them, and the raft index it took.
type Result struct {
	Index uint64
	value any             // on the leader
	raw   json.RawMessage // from the leader, on a follower
}

// Decode stores the command's value in dst, a pointer to the type its
// store method returns.
func (r Result) Decode(dst any) error {
	if r.value != nil {
		dv := reflect.ValueOf(dst).Elem()
		v := reflect.ValueOf(r.value)
		if !v.Type().AssignableTo(dv.Type()) {
			return fmt.Errorf("cluster: result is a %s, not a %s", v.Type(), dv.Type())
		}
		dv.Set(v)
		return nil
	}
	if len(r.raw) == 0 || string(r.raw) == "null" {
		return nil
	}
	return json.Unmarshal(r.raw, dst)
}

// Propose commits a command and returns its result: through raft on the
// leader, forwarded over the internal channel from a follower. Commands
// proposed at once share a raft entry and a forwarding round trip
// (batch.go, forward.go), each with its own result. A business error
// (the store rejected the command) comes back as *topology.Error; a
// cluster without a reachable leader as ErrNoLeader.
func (c *Cluster) Propose(ctx context.Context, t CommandType, payload any) (res Result, err error) {
	defer func(start time.Time) { c.metrics.observePropose(start, err) }(time.Now())
	if c.raft.State() == raft.Leader {
		return c.apply(ctx, t, payload)
	}
	cmd, err := EncodeCommand(t, payload)
	if err != nil {
		return Result{}, err
	}
	return c.forward.wait(c.forward.submit(newPending(ctx, cmd)))
}

// apply runs a command through raft on the leader, in the group commit.
// A json.RawMessage payload is a forwarded one, already checked
// (checkPayload), and goes as it came.
func (c *Cluster) apply(ctx context.Context, t CommandType, payload any) (Result, error) {
	var cmd []byte
	if raw, ok := payload.(json.RawMessage); ok {
		cmd = append([]byte{byte(t)}, raw...)
	} else {
		var err error
		if cmd, err = EncodeCommand(t, payload); err != nil {
			return Result{}, err
		}
	}
	return c.group.wait(c.commit(newPending(ctx, cmd)))
}

// commit proposes a command on the leader: a create in the group commit,
// any other in an entry of its own at once (groupable).
func (c *Cluster) commit(p *pending) *pending {
	if groupable(CommandType(p.cmd[0])) {
		return c.group.submit(p)
	}
	go commitBatch(c.raft.Apply, []*pending{p})
	return p
}

// Consistent makes a read on this node reflect every write committed
// before it was called: the leader confirms it still leads (and, once a
// term, that it has applied its predecessors' writes); a follower asks
// the leader for that index and waits until its own FSM has applied it.
func (c *Cluster) Consistent(ctx context.Context) error {
	idx, err := c.readIndex(ctx)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.fsm.WaitIndex(wctx, idx); err != nil {
		return fmt.Errorf("%w: applying up to index %d: %v", ErrNotReady, idx, err)
	}
	return nil
}

// readIndex is the leader's applied index, confirmed as current: what a
// reader must have applied to have seen every committed write.
func (c *Cluster) readIndex(ctx context.Context) (uint64, error) {
	if c.raft.State() == raft.Leader {
		return c.leaderReadIndex()
	}
	var out struct {
		Index    uint64 `json:"index"`
		NoLeader string `json:"no_leader,omitempty"`
	}
	if err := c.callLeader(ctx, http.MethodGet, "/internal/read-index", nil, &out); err != nil {
		return 0, err
	}
	if out.NoLeader != "" {
		return 0, fmt.Errorf("%w: %s", ErrNoLeader, out.NoLeader)
	}
	return out.Index, nil
}

func (c *Cluster) leaderReadIndex() (uint64, error) {
	if err := c.raft.VerifyLeader().Error(); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNoLeader, err)
	}
	if term := c.raft.CurrentTerm(); c.barrierTerm.Load() != term {
		if err := c.raft.Barrier(5 * time.Second).Error(); err != nil {
			return 0, fmt.Errorf("%w: %v", ErrNoLeader, err)
		}
		c.barrierTerm.Store(term)
	}
	return c.fsm.Index(), nil
}

// callLeader sends one request to the leader over the internal channel.
func (c *Cluster) callLeader(ctx context.Context, method, path string, body, out any) error {
	addr, err := c.leaderAddr()
	if err != nil {
		return err
	}
	if err := c.client.call(ctx, addr, method, path, body, out); err != nil {
		return fmt.Errorf("%w: leader at %s: %v", ErrNoLeader, addr, err)
	}
	return nil
}

// internalClient speaks the internal channel: HTTP over a connection
// that announces it with its first byte.
type internalClient struct{ http *http.Client }

func newInternalClient(g *guard) *internalClient {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			d, ok := ctx.Deadline()
			timeout := 5 * time.Second
			if ok {
				timeout = min(timeout, time.Until(d))
			}
			return g.dial(addr, protoInternal, timeout)
		},
		// A follower forwards every write its clients make at once, each
		// on a connection of its own: keep them all open, or each write
		// past the few kept dials (and proves itself to) the leader again.
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
	}
	return &internalClient{http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (ic *internalClient) call(ctx context.Context, addr, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, rd)
	if err != nil {
		return err
	}
	resp, err := ic.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// internalServer answers the internal channel.
type internalServer struct {
	c   *Cluster
	srv *http.Server
}

func newInternalServer(c *Cluster) *internalServer {
	s := &internalServer{c: c}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /internal/propose", s.propose)
	mux.HandleFunc("POST "+proposeBatchPath, s.proposeBatch)
	mux.HandleFunc("GET /internal/read-index", s.readIndex)
	mux.HandleFunc("GET "+logPositionPath, s.logPosition)
	mux.HandleFunc("POST /internal/join", s.join)
	mux.HandleFunc("POST /internal/join-request", s.joinRequest)
	mux.HandleFunc("DELETE /internal/members/{id}", s.remove)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: zap.NewStdLog(c.log.Named("internal"))}
	return s
}

func (s *internalServer) serve(ln net.Listener) error {
	err := s.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (s *internalServer) shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *internalServer) propose(w http.ResponseWriter, r *http.Request) {
	var p proposal
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<20)).Decode(&p); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := checkPayload(p.Type, p.Payload); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if s.c.raft.State() != raft.Leader {
		reply(w, outcome{NoLeader: "forwarded to a node that is no longer leader"})
		return
	}
	start := time.Now()
	res, err := s.c.apply(r.Context(), p.Type, p.Payload)
	s.c.metrics.observePropose(start, err) // an agent's (cluster.Remote) command, proposed on this leader
	if ce := s.c.log.Check(zap.DebugLevel, "forwarded command applied"); ce != nil {
		ce.Write(zap.Uint8("type", uint8(p.Type)), zap.Uint64("index", res.Index), zap.Duration("took", time.Since(start)))
	}
	out := outcome{Index: res.Index}
	var te *topology.Error
	switch {
	case errors.As(err, &te):
		out.Error = te
	case errors.Is(err, ErrNoLeader):
		out.NoLeader = err.Error()
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	default:
		if out.Value, err = json.Marshal(res.value); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	reply(w, out)
}

func (s *internalServer) readIndex(w http.ResponseWriter, _ *http.Request) {
	if s.c.raft.State() != raft.Leader {
		reply(w, map[string]string{"no_leader": "not the leader"})
		return
	}
	idx, err := s.c.leaderReadIndex()
	if err != nil {
		reply(w, map[string]string{"no_leader": err.Error()})
		return
	}
	reply(w, map[string]uint64{"index": idx})
}

// logPositionPath is where a member says how far its log goes, for a
// follower deciding when to stand (leaderloss.go).
const logPositionPath = "/internal/log-position"

func (s *internalServer) logPosition(w http.ResponseWriter, _ *http.Request) {
	reply(w, s.c.logPosition())
}

func (s *internalServer) join(w http.ResponseWriter, r *http.Request) {
	var req JoinRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out, err := s.c.addMember(r.Context(), req)
	writeMemberReply(w, out, err)
}

// joinRequest is a joining node's request to any member, which hands it
// to the leader (/internal/join) if it does not lead.
func (s *internalServer) joinRequest(w http.ResponseWriter, r *http.Request) {
	var req JoinRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out, err := s.c.Join(r.Context(), req)
	writeMemberReply(w, out, err)
}

func (s *internalServer) remove(w http.ResponseWriter, r *http.Request) {
	writeMemberReply(w, JoinReply{}, s.c.removeMember(r.Context(), r.PathValue("id")))
}

// memberOutcome carries a membership change's result or error.
type memberOutcome struct {
	Reply    JoinReply       `json:"reply"`
	Error    *topology.Error `json:"error,omitempty"`
	NoLeader string          `json:"no_leader,omitempty"`
}

func writeMemberReply(w http.ResponseWriter, out JoinReply, err error) {
	var te *topology.Error
	switch {
	case errors.As(err, &te):
		reply(w, memberOutcome{Error: te})
	case errors.Is(err, errNotLeader) || errors.Is(err, ErrNoLeader):
		reply(w, memberOutcome{NoLeader: err.Error()})
	case err != nil:
		http.Error(w, strings.TrimSpace(err.Error()), http.StatusInternalServerError)
	default:
		reply(w, memberOutcome{Reply: out})
	}
}
