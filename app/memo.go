package app

import "sync"

// Memo remembers what a pure function of its key returned: a punt's
// answer that nothing but the key decides (an ARP answer flow is made of
// the network, the address, the MAC and the port it names, whatever the
// view), so that a bridge asked the same thing again and again — every VM
// of a network asking for its gateway — builds it once. Because the key
// decides the value, nothing ever makes an entry stale, and a topology
// change invalidates nothing.
//
// What it hands out is shared: read-only to whoever gets it. It holds at
// most its limit and, past it, forgets everything and starts over: it
// saves work, it is never the truth. Safe for concurrent use. A nil Memo
// remembers nothing (every Get builds).
type Memo[K comparable, V any] struct {
	limit int
	mu    sync.RWMutex
	m     map[K]V
}

// NewMemo is a memo of at most limit entries.
func NewMemo[K comparable, V any](limit int) *Memo[K, V] {
	return &Memo[K, V]{limit: limit, m: make(map[K]V)}
}

// Get is the value remembered for k, or build's, remembered.
func (m *Memo[K, V]) Get(k K, build func() V) V {
	if m == nil {
		return build()
	}
	m.mu.RLock()
	v, ok := m.m[k]
	m.mu.RUnlock()
	if ok {
		return v
	}
	v = build()
	m.mu.Lock()
	if len(m.m) >= m.limit {
		clear(m.m)
	}
	m.m[k] = v
	m.mu.Unlock()
	return v
}

// Len is how many entries the memo holds.
func (m *Memo[K, V]) Len() int {
	if m == nil {
		return 0
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.m)
}
