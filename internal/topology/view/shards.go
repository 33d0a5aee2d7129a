package view

import (
	"iter"
	"maps"
)

// shardCount is how many shards an index keyed by network or chassis
// has: a view patched for one bind copies one shard of each (a 64th of
// the networks) instead of the whole map.
const shardCount = 64

// shardedMap is an index by string key (a network's id, a chassis'
// name) that views share copy-on-write, shard by shard: a derived map
// shares every shard of its parent and copies one on its first write.
// Shared shards are never written.
type shardedMap[V any] struct {
	shards *[shardCount]map[string]V
	owned  uint64 // a bit for each shard this map has copied (may write)
	n      int
}

func newShardedMap[V any]() shardedMap[V] {
	return shardedMap[V]{shards: new([shardCount]map[string]V), owned: ^uint64(0)}
}

// derive is a map with the same entries that shares m's shards, which
// it copies before writing. m itself is not written again: a view's
// indexes are written only while it is built, before any view derives
// from it (and views derive concurrently, so derive changes nothing).
func (m shardedMap[V]) derive() shardedMap[V] {
	s := *m.shards
	return shardedMap[V]{shards: &s, n: m.n}
}

// shardOf is a key's shard: FNV-1a, folded.
func shardOf(k string) int {
	h := fnv1a(k)
	return int((h ^ h>>16) % shardCount)
}

func (m shardedMap[V]) get(k string) V { return m.shards[shardOf(k)][k] }

func (m shardedMap[V]) lookup(k string) (V, bool) {
	v, ok := m.shards[shardOf(k)][k]
	return v, ok
}

// writable is k's shard, copied first if m shares it.
func (m *shardedMap[V]) writable(k string) map[string]V {
	i := shardOf(k)
	if m.owned&(1<<i) == 0 {
		m.shards[i] = maps.Clone(m.shards[i])
		m.owned |= 1 << i
	}
	if m.shards[i] == nil {
		m.shards[i] = map[string]V{}
	}
	return m.shards[i]
}

func (m *shardedMap[V]) set(k string, v V) {
	s := m.writable(k)
	if _, ok := s[k]; !ok {
		m.n++
	}
	s[k] = v
}

func (m *shardedMap[V]) del(k string) {
	if _, ok := m.lookup(k); !ok {
		return
	}
	delete(m.writable(k), k)
	m.n--
}

func (m shardedMap[V]) len() int { return m.n }

// all are the entries, in no order.
func (m shardedMap[V]) all() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		for _, s := range m.shards {
			for k, v := range s {
				if !yield(k, v) {
					return
				}
			}
		}
	}
}

// toMap is a plain copy, for comparing views (Diff).
func (m shardedMap[V]) toMap() map[string]V {
	out := make(map[string]V, m.n)
	for k, v := range m.all() {
		out[k] = v
	}
	return out
}
