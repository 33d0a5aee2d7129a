package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// Group commit. Creates proposed at once on the leader — its own API's
// and those its followers forward — are committed together as one raft
// entry, a CmdBatch (groupable says which commands), while the entries before them are being committed:
// one log entry, one encoding, one replication and one FSM step for
// many writes, where each used to take its own. Apply applies each
// command of a batch exactly as it would have applied it alone, in
// order, and returns each its own result or business error: a command
// a batch holds is refused or committed by itself, never by its
// neighbours.
//
// A CmdBatch entry is, after its type byte, each command as it would
// have been its own entry (type byte, then JSON), each preceded by its
// length as a uvarint: nothing is encoded twice, and a command is the
// same bytes in a batch or alone.

const (
	// groupInFlight is how many of the leader's batches may wait for
	// their commit at once, forwardInFlight how many of a follower's
	// for their answer; commands proposed meanwhile wait to go in the
	// next one. Measured with 32 clients over three nodes on two cores
	// (BenchmarkConcurrentPortCreate), one entry in flight at a time
	// (each carrying ~10 writes) took the least CPU a write and the most
	// writes a second; a follower with two batches out keeps the
	// leader's next batch filling while its last one commits.
	groupInFlight   = 1
	forwardInFlight = 2
	// batchMaxCommands and batchMaxBytes bound one batch.
	batchMaxCommands = 256
	batchMaxBytes    = 256 << 10
	// batchAloneBytes: a command this large (a bulk create) goes in an
	// entry of its own; raft's AppendEntries of MaxAppendEntries entries
	// is sized for those.
	batchAloneBytes = 32 << 10
)

// groupable says which commands the group commit puts together: creates
// of networks, subnets and ports, which make objects and change none
// (a port create may make its project's default security group, once).
// An object's revision_number is the raft index of its last change, so
// two changes of one object in one entry would share a revision, and an
// If-Match could not tell them apart; a batch of these creates holds at
// most one change of any object. Every other command takes an entry of
// its own, pipelined by raft as before.
func groupable(t CommandType) bool {
	switch t {
	case CmdNetworksCreate, CmdSubnetsCreate, CmdPortsCreate:
		return true
	}
	return false
}

// errNestedBatch: a batch is made by the group commit, never proposed,
// and holds no batch.
var errNestedBatch = errors.New("cluster: a batch is made by the leader's group commit, not proposed")

func init() { handlers[CmdBatch] = applyBatch }

// encodeBatch frames commands (each an encoded command) as one CmdBatch
// entry.
func encodeBatch(cmds [][]byte) []byte {
	n := 1
	for _, c := range cmds {
		n += binary.MaxVarintLen64 + len(c)
	}
	b := make([]byte, 1, n)
	b[0] = byte(CmdBatch)
	for _, c := range cmds {
		b = binary.AppendUvarint(b, uint64(len(c)))
		b = append(b, c...)
	}
	return b
}

// splitBatch is encodeBatch's inverse, on the entry after its type byte.
func splitBatch(d []byte) ([][]byte, error) {
	var out [][]byte
	for len(d) > 0 {
		n, k := binary.Uvarint(d)
		if k <= 0 || n > uint64(len(d)-k) {
			return nil, errors.New("fsm: a batch's command overruns it")
		}
		out = append(out, d[k:k+int(n)])
		d = d[k+int(n):]
	}
	if len(out) == 0 {
		return nil, errors.New("fsm: an empty batch")
	}
	return out, nil
}

// applyBatch applies each command of a batch as if it were alone at
// this index, and returns their results in order ([]applyResult) and the
// changes of those that were not refused. A command that does not decode
// stops the node, as it would alone.
func applyBatch(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
	cmds, err := splitBatch(d)
	if err != nil {
		panic(decodeFailure{err})
	}
	results := make([]applyResult, len(cmds))
	var ch []topology.Change
	for k, c := range cmds {
		if len(c) > 0 && CommandType(c[0]) == CmdBatch {
			panic(decodeFailure{errNestedBatch})
		}
		out, decodeErr := applyCommand(s, i, c)
		if decodeErr != nil {
			panic(decodeFailure{fmt.Errorf("batch command %d: %w", k, decodeErr)})
		}
		if out.err != nil {
			results[k] = applyResult{Err: out.err}
			continue
		}
		results[k] = applyResult{Value: out.value}
		ch = append(ch, out.changes...)
	}
	return results, ch, nil
}

// pending is one command waiting for its batch to be answered.
type pending struct {
	ctx context.Context
	cmd []byte // type byte, then JSON
	// Set before done is closed: the raft index, and the result (the
	// leader's value, or its JSON from the leader) or the error (the
	// store's *topology.Error, or the cluster's).
	done  chan struct{}
	index uint64
	value any
	raw   []byte
	err   error
}

func newPending(ctx context.Context, cmd []byte) *pending {
	return &pending{ctx: ctx, cmd: cmd, done: make(chan struct{})}
}

func (p *pending) fail(err error) {
	p.err = err
	close(p.done)
}

// result is the command's answer as Propose returns it.
func (p *pending) result() (Result, error) {
	if p.err != nil {
		return Result{Index: p.index}, p.err
	}
	return Result{Index: p.index, value: p.value, raw: p.raw}, nil
}

var errStopped = fmt.Errorf("%w: %v", ErrNoLeader, raft.ErrRaftShutdown)

// batcher gathers the commands submitted while send has its in-flight
// batches out, and hands them to send together: one at a time while
// there is room, as many as waited when there was not. send answers
// every command of its batch.
type batcher struct {
	send  func(batch []*pending)
	queue chan *pending
	slots chan struct{} // one per batch in flight
	stop  chan struct{}
}

func newBatcher(send func([]*pending), inflight int) *batcher {
	b := &batcher{send: send, queue: make(chan *pending, 4*batchMaxCommands),
		slots: make(chan struct{}, inflight), stop: make(chan struct{})}
	go b.run()
	return b
}

// close stops batching; commands still queued are answered ErrNoLeader.
func (b *batcher) close() { close(b.stop) }

// submit queues a command; wait answers it.
func (b *batcher) submit(p *pending) *pending {
	select {
	case b.queue <- p:
	case <-p.ctx.Done():
		p.fail(p.ctx.Err())
	case <-b.stop:
		p.fail(errStopped)
	}
	return p
}

// wait returns once p is answered, or its caller's context ends (the
// command may still commit: as when the leader is lost, the caller
// cannot know).
func (b *batcher) wait(p *pending) (Result, error) {
	select {
	case <-p.done:
	case <-p.ctx.Done():
		select {
		case <-p.done:
		default:
			return Result{}, fmt.Errorf("%w: no answer before the caller gave up: %w", ErrNoLeader, p.ctx.Err())
		}
	case <-b.stop:
		select {
		case <-p.done:
		case <-time.After(10 * time.Second): // its batch outlived raft
			return Result{}, errStopped
		}
	}
	return p.result()
}

func (b *batcher) run() {
	var next *pending // taken from the queue, for the next batch
	for {
		first := next
		next = nil
		if first == nil {
			select {
			case first = <-b.queue:
			case <-b.stop:
				b.drain()
				return
			}
		}
		select {
		case b.slots <- struct{}{}:
		case <-b.stop:
			first.fail(errStopped)
			b.drain()
			return
		}
		batch := []*pending{first}
		size := len(first.cmd)
	fill:
		for size < batchAloneBytes && len(batch) < batchMaxCommands {
			select {
			case p := <-b.queue:
				if len(p.cmd) >= batchAloneBytes || size+len(p.cmd) > batchMaxBytes {
					next = p
					break fill
				}
				batch = append(batch, p)
				size += len(p.cmd)
			default:
				break fill
			}
		}
		go func() {
			defer func() { <-b.slots }()
			b.send(live(batch))
		}()
	}
}

func (b *batcher) drain() {
	for {
		select {
		case p := <-b.queue:
			p.fail(errStopped)
		default:
			return
		}
	}
}

// live answers the commands whose callers are gone (never proposed) and
// returns the others.
func live(batch []*pending) []*pending {
	out := batch[:0]
	for _, p := range batch {
		if err := p.ctx.Err(); err != nil {
			p.fail(err)
			continue
		}
		out = append(out, p)
	}
	return out
}

// commitBatch is the leader's send: the batch's commands as one raft
// entry (a command alone as itself), each answered with its own result.
func commitBatch(apply func(cmd []byte, timeout time.Duration) raft.ApplyFuture, batch []*pending) {
	if len(batch) == 0 {
		return
	}
	cmd := batch[0].cmd
	if len(batch) > 1 {
		cmds := make([][]byte, len(batch))
		for i, p := range batch {
			cmds[i] = p.cmd
		}
		cmd = encodeBatch(cmds)
	}
	f := apply(cmd, 10*time.Second)
	if err := f.Error(); err != nil {
		// ErrLeadershipLost is ambiguous: the entry may still commit.
		// Clients retry with the id they chose (docs/api.md).
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) ||
			errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, raft.ErrEnqueueTimeout) ||
			errors.Is(err, raft.ErrRaftShutdown) {
			err = fmt.Errorf("%w: %v", ErrNoLeader, err)
		}
		for _, p := range batch {
			p.fail(err)
		}
		return
	}
	res, _ := f.Response().(applyResult)
	results := []applyResult{res}
	if len(batch) > 1 {
		var ok bool
		if results, ok = res.Value.([]applyResult); !ok || len(results) != len(batch) {
			err := fmt.Errorf("cluster: a batch of %d commands answered %T", len(batch), res.Value)
			for _, p := range batch {
				p.index = f.Index()
				p.fail(err)
			}
			return
		}
	}
	for i, p := range batch {
		p.index, p.value, p.err = f.Index(), results[i].Value, results[i].Err
		close(p.done)
	}
}
