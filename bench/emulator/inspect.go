package emulator

import (
	"context"
	"fmt"
	"time"

	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// What a benchmark reads of an emulated switch: its flow table, its
// meters, and when a flow it waits for arrived.

// Flows returns a copy of the flow table.
func (s *Switch) Flows() []of.Flow {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]of.Flow, 0, len(s.flows))
	for _, f := range s.flows {
		out = append(out, f)
	}
	return out
}

// FlowCount is the number of flows in the table.
func (s *Switch) FlowCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.flows)
}

// Meters is the number of meters the switch holds.
func (s *Switch) Meters() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.meters)
}

// waiter waits for a flow to be added.
type waiter struct {
	match func(of.Flow) bool
	at    chan time.Time
}

// Watch starts watching for a flow match accepts: it looks through the
// table now and then sees every flow added, so that the look through the
// table is not part of what Wait times (at a thousand switches of
// thousands of flows it costs the cores being measured).
func (s *Switch) Watch(match func(of.Flow) bool) *Watch {
	w := &Watch{s: s, w: &waiter{match: match, at: make(chan time.Time, 1)}}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.flows {
		if match(f) {
			w.w.at <- time.Now()
			return w
		}
	}
	s.waiters = append(s.waiters, w.w)
	return w
}

// Watch is a wait for a flow (Switch.Watch).
type Watch struct {
	s *Switch
	w *waiter
}

// Wait returns when a flow the watch matches is in the table: at once if
// one was, else when one was added (the time it was applied).
func (w *Watch) Wait(ctx context.Context) (time.Time, error) {
	s := w.s
	select {
	case t := <-w.w.at:
		return t, nil
	case <-ctx.Done():
		s.mu.Lock()
		for i, x := range s.waiters {
			if x == w.w {
				s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
				break
			}
		}
		s.mu.Unlock()
		select {
		case t := <-w.w.at:
			return t, nil
		default:
		}
		return time.Time{}, ctx.Err()
	case <-s.done:
		return time.Time{}, fmt.Errorf("emulator: switch %016x: %w", s.cfg.DPID, s.err)
	}
}

// WaitFlow returns when a flow match accepts is in the table: at once if
// one is already, else when one is added (the time it was applied).
func (s *Switch) WaitFlow(ctx context.Context, match func(of.Flow) bool) (time.Time, error) {
	return s.Watch(match).Wait(ctx)
}

// LearnPorts reads from the switch's own table what the pipeline's
// classifier sets on each port's packets — reg6 (the port's key) and the
// metadata (its network's key) — into the switch's ports, as its punt
// flows would carry them. It returns how many ports the controller has
// programmed so far.
func (s *Switch) LearnPorts() int {
	table := pipeline.Table(pipeline.Classifier)
	s.mu.Lock()
	defer s.mu.Unlock()
	byPort := map[uint32]of.Flow{}
	for _, f := range s.flows {
		if f.Table != table {
			continue
		}
		if in, ok := f.Match.Get(of.FieldInPort); ok {
			if _, tun := f.Match.Get(of.FieldTunID); !tun {
				byPort[uint32(in.Value)] = f
			}
		}
	}
	n := 0
	for i, p := range s.cfg.Ports {
		f, ok := byPort[p.OFPort]
		if !ok {
			continue
		}
		var key, network uint64
		var haveKey, haveNet bool
		for _, a := range f.Actions {
			switch a := a.(type) {
			case of.SetField:
				if a.Field == of.FieldReg6 {
					key, haveKey = a.Value, true
				}
			case of.WriteMetadata:
				network, haveNet = a.Value, true
			}
		}
		if haveKey && haveNet {
			s.cfg.Ports[i].Key, s.cfg.Ports[i].NetworkKey = uint32(key), network
			n++
		}
	}
	return n
}
