package view

import "maps"

// portShards is how many maps hold a view's ports. A view derived from
// another copies the shard array and clones only the shards its changed
// ports fall in, so a bind costs a few hundred map entries, not the
// cloud's ports.
const portShards = 256

// portTable is every port of a view, by id and by key. Its shards are
// shared, read only, by the views derived from one another; a
// portWriter clones a shard before its first write.
type portTable struct {
	byID  [portShards]map[string]*Port
	byKey [portShards]map[uint32]*Port
	n     int
}

// idShard is FNV-1a of the id, folded into a shard number.
func idShard(id string) int { return int(fnv1a(id) % portShards) }

// fnv1a is the 32-bit FNV-1a hash of s, without hash/fnv's allocation.
func fnv1a(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

func keyShard(key uint32) int { return int(key % portShards) }

func (t *portTable) get(id string) (*Port, bool) {
	p, ok := t.byID[idShard(id)][id]
	return p, ok
}

func (t *portTable) getKey(key uint32) (*Port, bool) {
	p, ok := t.byKey[keyShard(key)][key]
	return p, ok
}

// each calls fn with every port, in no order.
func (t *portTable) each(fn func(*Port)) {
	for _, m := range t.byID {
		for _, p := range m {
			fn(p)
		}
	}
}

func (t *portTable) len() int { return t.n }

// portWriter changes a table whose shards may be shared with another
// view's: each shard is cloned before its first change.
type portWriter struct {
	t             *portTable
	ownID, ownKey [portShards]bool
}

// fresh is a writer of an empty table of its own.
func (w *portWriter) fresh(t *portTable) {
	*t = portTable{}
	w.t = t
	for i := range portShards {
		t.byID[i], t.byKey[i] = map[string]*Port{}, map[uint32]*Port{}
		w.ownID[i], w.ownKey[i] = true, true
	}
}

func (w *portWriter) idMap(s int) map[string]*Port {
	if !w.ownID[s] {
		w.t.byID[s], w.ownID[s] = maps.Clone(w.t.byID[s]), true
	}
	return w.t.byID[s]
}

func (w *portWriter) keyMap(s int) map[uint32]*Port {
	if !w.ownKey[s] {
		w.t.byKey[s], w.ownKey[s] = maps.Clone(w.t.byKey[s]), true
	}
	return w.t.byKey[s]
}

// put adds p, or replaces the port of its id (and that port's key).
func (w *portWriter) put(p *Port) {
	if old, ok := w.t.get(p.ID); ok {
		if old.Key != p.Key {
			delete(w.keyMap(keyShard(old.Key)), old.Key)
		}
	} else {
		w.t.n++
	}
	w.idMap(idShard(p.ID))[p.ID] = p
	w.keyMap(keyShard(p.Key))[p.Key] = p
}

// remove takes the port of id out, with its key.
func (w *portWriter) remove(id string) {
	old, ok := w.t.get(id)
	if !ok {
		return
	}
	delete(w.idMap(idShard(id)), id)
	if cur, ok := w.t.getKey(old.Key); ok && cur == old {
		delete(w.keyMap(keyShard(old.Key)), old.Key)
	}
	w.t.n--
}
