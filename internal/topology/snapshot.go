package topology

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
)

// A snapshot is a stream of type-tagged records, one JSON object a line:
// {"type":"network","record":{...}}. Readers skip types they do not know,
// so a newer node's snapshot restores on an older one as far as it can.
type record struct {
	Type   string          `json:"type"`
	Record json.RawMessage `json:"record"`
}

// quotaRecord is one project's limits.
type quotaRecord struct {
	Project string         `json:"project_id"`
	Limits  map[string]int `json:"limits"`
}

// allocState is what the allocators need beyond the objects themselves.
type allocState struct {
	Index    uint64            `json:"index"`
	Counters Counters          `json:"counters"`
	IPHints  map[string]string `json:"ip_hints"`
}

// SnapshotSizeHint is about how many bytes WriteSnapshot writes, from
// the count of records: a port, most of them, takes about 600 bytes.
func (s *Store) SnapshotSizeHint() int {
	n := len(s.networks) + len(s.subnets) + len(s.ports) + len(s.routers) + len(s.chassis) +
		len(s.members) + len(s.fips) + len(s.sgs) + len(s.subnetPools)
	return n * 640
}

// WriteSnapshot streams the whole store, in a deterministic order.
func (s *Store) WriteSnapshot(w io.Writer) error {
	bw := bufio.NewWriter(w)
	// Each line as json.Encoder writes a record, without its second pass
	// over the record (it compacts a RawMessage again): about a third of
	// the time the FSM is held up while raft takes a snapshot
	// (BenchmarkWriteSnapshot).
	put := func(typ string, v any) error {
		raw, err := json.Marshal(v)
		if err != nil {
			return err
		}
		bw.WriteString(`{"type":"`)
		bw.WriteString(typ)
		bw.WriteString(`","record":`)
		bw.Write(raw)
		_, err = bw.WriteString("}\n")
		return err
	}
	hints := map[string]string{}
	for k, v := range s.ipHint {
		hints[k] = v.String()
	}
	if err := put("alloc", allocState{Index: s.index, Counters: s.seq, IPHints: hints}); err != nil {
		return err
	}
	for _, id := range sortedKeys(s.members) {
		if err := put("member", s.members[id]); err != nil {
			return err
		}
	}
	for _, id := range sortedKeys(s.chassis) {
		if err := put("chassis", s.chassis[id]); err != nil {
			return err
		}
	}
	for _, id := range sortedKeys(s.networks) {
		if err := put("network", s.networks[id]); err != nil {
			return err
		}
	}
	for _, id := range sortedKeys(s.subnets) {
		if err := put("subnet", s.subnets[id]); err != nil {
			return err
		}
	}
	for _, id := range sortedKeys(s.routers) {
		if err := put("router", s.routers[id]); err != nil {
			return err
		}
	}
	for _, id := range sortedKeys(s.sgs) {
		if err := put("securitygroup", s.sgs[id]); err != nil {
			return err
		}
	}
	for _, id := range sortedKeys(s.ports) {
		if err := put("port", s.ports[id]); err != nil {
			return err
		}
	}
	for _, id := range sortedKeys(s.fips) {
		if err := put("floatingip", s.fips[id]); err != nil {
			return err
		}
	}
	for _, id := range sortedKeys(s.subnetPools) {
		if err := put("subnetpool", s.subnetPools[id]); err != nil {
			return err
		}
	}
	for _, project := range sortedKeys(s.quotas) {
		if err := put("quota", quotaRecord{Project: project, Limits: s.quotas[project]}); err != nil {
			return err
		}
	}
	var nbErr error
	s.EachNeighbour(func(nb Neighbour) {
		if nbErr == nil {
			nbErr = put("neighbour", nb)
		}
	})
	if nbErr != nil {
		return nbErr
	}
	for _, r := range s.vipRecords() {
		if err := put("vip", r); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// ReadSnapshot builds a fresh store from a snapshot stream.
func ReadSnapshot(r io.Reader) (*Store, error) {
	s := New()
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var rec record
		if err := dec.Decode(&rec); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("topology snapshot: %w", err)
		}
		if err := s.restoreRecord(rec); err != nil {
			return nil, fmt.Errorf("topology snapshot: %s record: %w", rec.Type, err)
		}
	}
	return s, nil
}

func (s *Store) restoreRecord(rec record) error {
	switch rec.Type {
	case "alloc":
		var a allocState
		if err := json.Unmarshal(rec.Record, &a); err != nil {
			return err
		}
		s.seq, s.index = a.Counters, a.Index
		if s.seq.SegID == nil {
			s.seq.SegID = map[string]uint32{}
		}
		for k, v := range a.IPHints {
			addr, err := netip.ParseAddr(v)
			if err != nil {
				return err
			}
			s.ipHint[k] = addr
		}
	case "floatingip":
		return s.restoreFloatingIP(rec.Record)
	case "neighbour":
		return s.restoreNeighbour(rec.Record)
	case "securitygroup":
		var g SecurityGroup
		if err := json.Unmarshal(rec.Record, &g); err != nil {
			return err
		}
		s.restoreSecurityGroup(&g)
	case "subnetpool":
		var p SubnetPool
		if err := json.Unmarshal(rec.Record, &p); err != nil {
			return err
		}
		s.subnetPools[p.ID] = &p
	case "quota":
		var q quotaRecord
		if err := json.Unmarshal(rec.Record, &q); err != nil {
			return err
		}
		s.quotas[q.Project] = q.Limits
	case "member":
		var m Member
		if err := json.Unmarshal(rec.Record, &m); err != nil {
			return err
		}
		s.members[m.ID] = &m
	case "chassis":
		var c Chassis
		if err := json.Unmarshal(rec.Record, &c); err != nil {
			return err
		}
		s.chassis[c.Name] = &c
	case "network":
		var n Network
		if err := json.Unmarshal(rec.Record, &n); err != nil {
			return err
		}
		n.Subnets = nil
		s.networks[n.ID] = &n
		s.indexNetwork(&n)
	case "subnet":
		var sn Subnet
		if err := json.Unmarshal(rec.Record, &sn); err != nil {
			return err
		}
		s.subnets[sn.ID] = &sn
		s.ips[sn.ID] = map[netip.Addr]string{}
	case "router":
		var r Router
		if err := json.Unmarshal(rec.Record, &r); err != nil {
			return err
		}
		s.routers[r.ID] = &r
	case "port":
		var p Port
		if err := json.Unmarshal(rec.Record, &p); err != nil {
			return err
		}
		if s.networks[p.NetworkID] == nil {
			return fmt.Errorf("port %s on unknown network %s", p.ID, p.NetworkID)
		}
		for _, f := range p.FixedIPs {
			if s.ips[f.SubnetID] == nil {
				return fmt.Errorf("port %s has an address in unknown subnet %s", p.ID, f.SubnetID)
			}
			if _, err := netip.ParseAddr(f.IPAddress); err != nil {
				return err
			}
		}
		s.ports[p.ID] = &p
		s.indexPort(&p)
	case "vip":
		var r vipRecord
		if err := json.Unmarshal(rec.Record, &r); err != nil {
			return err
		}
		ip, err := netip.ParseAddr(r.IP)
		if err != nil {
			return err
		}
		if s.vipOwners[r.Network] == nil {
			s.vipOwners[r.Network] = map[netip.Addr]string{}
		}
		s.vipOwners[r.Network][ip] = r.Port
	}
	return nil
}
