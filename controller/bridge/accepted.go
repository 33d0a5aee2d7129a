package bridge

import (
	"time"

	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

// The reactive flows the switch accepted a moment ago (loop.accepted):
// a punt for their destination soon after gets its reply without the
// flow being added again.

// acceptedFlow is a reactive flow the switch accepted, and when it was
// sent.
type acceptedFlow struct {
	flow of.Flow
	at   time.Time
}

// acceptedFor is how long a reactive flow the switch accepted spares the
// punts for its destination a new add: a second, or half the flows'
// idle timeout if that is shorter, so that no flow can have idled out
// of the switch while it counts as in. (A flow deleted behind the
// controller's back, by hand, comes back with the first punt after.)
func (l *loop) acceptedFor() time.Duration {
	return min(time.Second, time.Duration(l.m.cfg.IdleTimeout)*time.Second/2)
}

// accept records the adds of a bundle the switch committed, sent at at.
func (l *loop) accept(adds []of.FlowMod, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range adds {
		l.accepted[m.Flow.Key()] = acceptedFlow{m.Flow, at}
	}
}

// acceptedAt reports whether the switch accepted f, as a punt installs
// it (reactive), under key k within acceptedFor of now. l.mu is held.
func (l *loop) acceptedAt(k of.FlowKey, f of.Flow, now time.Time) bool {
	a, ok := l.accepted[k]
	return ok && l.stillAccepted(a, f, now)
}

// stillAccepted reports whether a, the accepted flow with f's key, is f
// and was accepted within acceptedFor of now.
func (l *loop) stillAccepted(a acceptedFlow, f of.Flow, now time.Time) bool {
	return now.Sub(a.at) < l.acceptedFor() && a.flow.SameContent(f)
}

// forgetAccepted drops the accepted flows older than acceptedFor.
func (l *loop) forgetAccepted(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, a := range l.accepted {
		if now.Sub(a.at) >= l.acceptedFor() {
			delete(l.accepted, k)
		}
	}
}

// notAccepted are the answers with a flow the switch has not accepted
// within acceptedFor; the others are done (counted here). (Should the
// loop move on meanwhile, it has forgotten what was accepted, and the
// flows are added again: one add too many, never one too few.)
func (l *loop) notAccepted(reqs []*puntRequest) []*puntRequest {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var install []*puntRequest
	for _, r := range reqs {
		if l.allAccepted(r.answer.Flows, now) {
			l.m.stats.count(r.answer.Outcome)
		} else {
			install = append(install, r)
		}
	}
	return install
}

// allAccepted reports whether the switch accepted every one of flows, as
// a punt installs them, within acceptedFor of now. l.mu is held.
func (l *loop) allAccepted(flows []of.Flow, now time.Time) bool {
	var buf [256]byte
	for _, f := range flows {
		f = l.reactive(f)
		// The key looked up without allocating: the conversion is in the
		// index expression itself.
		a, ok := l.accepted[of.FlowKey(f.AppendKey(buf[:0]))]
		if !ok || !l.stillAccepted(a, f, now) {
			return false
		}
	}
	return true
}
