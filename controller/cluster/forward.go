package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// Forwarding in batches. A follower sends the commands its clients
// propose at once to the leader in one request on the internal channel
// (POST /internal/propose-batch), where they join the leader's group
// commit, and gets each its own outcome back in one answer: one round
// trip for many writes, each still answered on its own.
//
// The request is, for each command, its type byte, the length of its
// JSON payload as a uvarint, and the payload. The answer is, for each
// command in the same order, its raft index (uvarint), an outcome byte,
// the length of its body (uvarint) and the body: the result's JSON, the
// store's error as JSON, or the reason.

const proposeBatchPath = "/internal/propose-batch"

// Outcomes of a forwarded command.
const (
	forwardCommitted byte = iota // body: the result as JSON
	forwardRefused               // body: the *topology.Error as JSON
	forwardNoLeader              // body: why
	forwardFailed                // body: why (a malformed command, an internal error)
)

// errTruncated: a batch's framing ends inside an item.
var errTruncated = errors.New("cluster: a forwarded batch ends inside an item")

// appendFrame appends a uvarint length and b.
func appendFrame(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// readFrame reads a uvarint-length-prefixed frame off d.
func readFrame(d []byte) (frame, rest []byte, err error) {
	n, k := binary.Uvarint(d)
	if k <= 0 || n > uint64(len(d)-k) {
		return nil, nil, errTruncated
	}
	return d[k : k+int(n)], d[k+int(n):], nil
}

// forwardBatch is a follower's send: the batch to the leader in one
// request.
func (c *Cluster) forwardBatch(batch []*pending) {
	if len(batch) == 0 {
		return
	}
	addr, err := c.leaderAddr()
	if err != nil {
		failAll(batch, err)
		return
	}
	var body []byte
	for _, p := range batch {
		body = append(body, p.cmd[0])
		body = appendFrame(body, p.cmd[1:])
	}
	// Not any one caller's context: the batch is theirs together.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	answer, status, err := c.client.post(ctx, addr, proposeBatchPath, body)
	if err == nil && status == http.StatusNotFound {
		// A leader of a release before batches: one request each.
		c.forwardEach(ctx, addr, batch)
		return
	}
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("POST %s: %d %s", proposeBatchPath, status, bytes.TrimSpace(answer))
	}
	if err != nil {
		failAll(batch, fmt.Errorf("%w: leader at %s: %v", ErrNoLeader, addr, err))
		return
	}
	if err := readOutcomes(answer, batch); err != nil {
		failAll(batch, fmt.Errorf("%w: leader at %s: %v", ErrNoLeader, addr, err))
	}
}

// forwardEach forwards a batch's commands one request each, at once.
func (c *Cluster) forwardEach(ctx context.Context, addr string, batch []*pending) {
	var wg sync.WaitGroup
	for _, p := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out outcome
			err := c.client.call(ctx, addr, http.MethodPost, "/internal/propose", proposal{Type: CommandType(p.cmd[0]), Payload: p.cmd[1:]}, &out)
			switch {
			case err != nil:
				p.fail(fmt.Errorf("%w: leader at %s: %v", ErrNoLeader, addr, err))
			case out.NoLeader != "":
				p.fail(fmt.Errorf("%w: %s", ErrNoLeader, out.NoLeader))
			case out.Error != nil:
				p.index = out.Index
				p.fail(out.Error)
			default:
				p.index, p.raw = out.Index, out.Value
				close(p.done)
			}
		}()
	}
	wg.Wait()
}

func failAll(batch []*pending, err error) {
	for _, p := range batch {
		p.fail(err)
	}
}

// readOutcomes answers each command of a batch from the leader's answer.
// The answer is checked whole before any command is answered.
func readOutcomes(d []byte, batch []*pending) error {
	type item struct {
		index uint64
		kind  byte
		body  []byte
	}
	items := make([]item, 0, len(batch))
	for len(d) > 0 {
		index, k := binary.Uvarint(d)
		if k <= 0 || len(d) < k+1 {
			return errTruncated
		}
		kind := d[k]
		body, rest, err := readFrame(d[k+1:])
		if err != nil {
			return err
		}
		items = append(items, item{index, kind, body})
		d = rest
	}
	if len(items) != len(batch) {
		return fmt.Errorf("cluster: the leader answered %d of %d commands", len(items), len(batch))
	}
	for i, it := range items {
		p := batch[i]
		p.index = it.index
		switch it.kind {
		case forwardCommitted:
			p.raw = it.body
			close(p.done)
		case forwardRefused:
			te := new(topology.Error)
			if err := json.Unmarshal(it.body, te); err != nil {
				p.fail(fmt.Errorf("cluster: the leader's error: %w", err))
				continue
			}
			p.fail(te)
		case forwardNoLeader:
			p.fail(fmt.Errorf("%w: %s", ErrNoLeader, it.body))
		default:
			p.fail(fmt.Errorf("cluster: the leader: %s", it.body))
		}
	}
	return nil
}

// proposeBatch is the leader's end of forwarding in batches: each
// command checked as /internal/propose checks it, all proposed at once
// (the creates in the group commit), each answered on its own.
func (s *internalServer) proposeBatch(w http.ResponseWriter, r *http.Request) {
	d, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var cmds [][]byte
	for len(d) > 0 {
		t := d[0]
		payload, rest, err := readFrame(d[1:])
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		cmds = append(cmds, append([]byte{t}, payload...))
		d = rest
	}
	ps := make([]*pending, len(cmds))
	for i, cmd := range cmds {
		p := newPending(r.Context(), cmd)
		ps[i] = p
		if err := checkPayload(CommandType(cmd[0]), cmd[1:]); err != nil {
			p.fail(err)
			continue
		}
		s.c.commit(p)
	}
	var out []byte
	for _, p := range ps {
		res, err := s.c.group.wait(p)
		out = binary.AppendUvarint(out, res.Index)
		var te *topology.Error
		switch {
		case errors.As(err, &te):
			b, _ := json.Marshal(te)
			out = append(out, forwardRefused)
			out = appendFrame(out, b)
		case errors.Is(err, ErrNoLeader):
			out = append(out, forwardNoLeader)
			out = appendFrame(out, []byte(err.Error()))
		case err != nil:
			out = append(out, forwardFailed)
			out = appendFrame(out, []byte(err.Error()))
		default:
			b, err := json.Marshal(res.value)
			if err != nil {
				out = append(out, forwardFailed)
				out = appendFrame(out, []byte(err.Error()))
				continue
			}
			out = append(out, forwardCommitted)
			out = appendFrame(out, b)
		}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(out)
}

// post sends one request with a body on the internal channel and returns
// the answer's body and status.
func (ic *internalClient) post(ctx context.Context, addr, path string, body []byte) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := ic.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, 0, err
	}
	return b, resp.StatusCode, nil
}
