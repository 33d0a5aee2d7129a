package cluster

import "testing"

// TestRankAmong: the follower whose log goes furthest stands last, so
// that it is the one the others, having stood and lost their leader,
// vote for; equal logs, and followers that did not say, go in id order.
func TestRankAmong(t *testing.T) {
	at := func(term, index uint64) *logPosition { return &logPosition{Term: term, Index: index} }
	for _, tc := range []struct {
		name   string
		self   string
		mine   logPosition
		others map[string]*logPosition
		want   int
	}{
		{"equal logs: id order, first", "n2", *at(3, 100), map[string]*logPosition{"n3": at(3, 100)}, 0},
		{"equal logs: id order, second", "n3", *at(3, 100), map[string]*logPosition{"n2": at(3, 100)}, 1},
		// The case the id order lost: the dead leader's last entry
		// reached n2 and not n3. n3 stands first and is refused by n2,
		// which still has its leader and is ahead; n2 stands next, and
		// n3, now without a leader, grants it.
		{"ahead stands last though first by id", "n2", *at(3, 1726), map[string]*logPosition{"n3": at(3, 1725)}, 1},
		{"behind stands first though last by id", "n3", *at(3, 1725), map[string]*logPosition{"n2": at(3, 1726)}, 0},
		// Raft compares terms before indexes.
		{"a later term is ahead of a longer log", "n2", *at(4, 10), map[string]*logPosition{"n3": at(3, 50)}, 1},
		{"an earlier term is behind a shorter log", "n3", *at(3, 50), map[string]*logPosition{"n2": at(4, 10)}, 0},
		{"no answer: id order", "n3", *at(3, 100), map[string]*logPosition{"n2": nil}, 1},
		{"no answer: id order, first", "n2", *at(3, 100), map[string]*logPosition{"n3": nil}, 0},
		{"five voters", "n3", *at(3, 100), map[string]*logPosition{"n1": at(3, 101), "n4": at(3, 99), "n5": at(3, 100)}, 1},
		{"alone", "n2", *at(3, 100), map[string]*logPosition{}, 0},
	} {
		if got := rankAmong(tc.self, tc.mine, tc.others); got != tc.want {
			t.Errorf("%s: rank %d, want %d", tc.name, got, tc.want)
		}
	}
	// Every follower computing its own rank from the same positions
	// gives each place once.
	pos := map[string]*logPosition{"n1": at(3, 101), "n2": at(3, 99), "n4": at(3, 100), "n5": at(3, 100)}
	seen := map[int]string{}
	for self, mine := range pos {
		others := map[string]*logPosition{}
		for id, p := range pos {
			if id != self {
				others[id] = p
			}
		}
		r := rankAmong(self, *mine, others)
		if prev, dup := seen[r]; dup {
			t.Errorf("%s and %s both stand at place %d", prev, self, r)
		}
		seen[r] = self
	}
	if seen[3] != "n1" || seen[0] != "n2" {
		t.Errorf("places %v: want n2 (behind) first, n1 (ahead) last", seen)
	}
}
