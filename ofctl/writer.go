package ofctl

import (
	"context"
	"fmt"
	"time"
)

// A session's writes: every caller queues its bytes, and one flusher
// sends all that is queued in one system call, in the order queued.

// maxQueued bounds the bytes queued for a switch: beyond it a writer
// waits for the flusher, so a switch that stops reading holds up its
// writers, not the controller's memory.
const maxQueued = 4 << 20

// keptBuffer is the largest write buffer a session keeps between writes.
// A replay's bundle grows the buffers to megabytes; kept, they held 146
// MB of a node mastering 334 bridges (the flusher swaps two a switch).
// A flight of punt answers fits well under it.
const keptBuffer = 64 << 10

// writeTimeout bounds one write to the switch; a switch that takes no
// bytes for that long is disconnected.
const writeTimeout = 30 * time.Second

// write queues bytes for the switch, behind everything queued before
// them; the flusher sends them. A nil error means queued, not written:
// a write that fails ends the session, which everyone waiting for a
// reply sees as ErrDisconnected.
func (s *Switch) write(ctx context.Context, b []byte) error {
	return s.queue(ctx, func(out []byte) ([]byte, error) { return append(out, b...), nil })
}

// queue is write for messages encoded straight onto the queue by enc,
// which appends to what it is given; if enc fails, nothing it appended
// is sent, and its error is returned.
func (s *Switch) queue(ctx context.Context, enc func([]byte) ([]byte, error)) error {
	select {
	case <-s.done:
		return ErrDisconnected
	default:
	}
	s.omu.Lock()
	for len(s.out) >= maxQueued {
		if s.drained == nil {
			s.drained = make(chan struct{})
		}
		drained := s.drained
		s.omu.Unlock()
		select {
		case <-drained:
		case <-s.done:
			return ErrDisconnected
		case <-ctx.Done():
			return fmt.Errorf("ofctl: switch %s: waiting to write: %w", s, ctx.Err())
		}
		s.omu.Lock()
	}
	n := len(s.out)
	out, err := enc(s.out)
	if err != nil {
		s.out = out[:n]
		s.omu.Unlock()
		return err
	}
	s.out = out
	s.omu.Unlock()
	select {
	case s.flushCh <- struct{}{}:
	default: // the flusher is signalled already and takes this too
	}
	return nil
}

// flusher writes what is queued, all of it in one write, until the
// session ends.
func (s *Switch) flusher() {
	var buf []byte
	for {
		select {
		case <-s.done:
			return
		case <-s.flushCh:
		}
		s.omu.Lock()
		buf, s.out = s.out, buf[:0]
		if s.drained != nil {
			close(s.drained)
			s.drained = nil
		}
		s.omu.Unlock()
		if len(buf) == 0 {
			continue
		}
		_ = s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := s.conn.Write(buf); err != nil {
			s.end(fmt.Errorf("write: %w", err))
			return
		}
		if cap(buf) > keptBuffer {
			buf = nil // a replay's chunks: do not keep them for the punts
		}
	}
}
