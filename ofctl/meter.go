package ofctl

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

// Meter is an OpenFlow meter with one drop band counted in packets per
// second: what exceeds Rate, beyond a burst of Burst packets, is dropped
// in the datapath.
type Meter struct {
	ID    uint32
	Rate  uint32 // packets per second
	Burst uint32 // packets
}

// MeterStats are a meter's counters.
type MeterStats struct {
	ID      uint32
	Packets uint64 // packets that reached it
	Dropped uint64 // packets its band dropped
}

// OpenFlow meter messages (OF1.3 and later).
const (
	typeMeterMod = 29

	multipartMeterStats = 9

	meterAdd    = 0
	meterModify = 1
	meterDelete = 2

	meterFlagPktps = 2
	meterFlagBurst = 4
	meterFlagStats = 8

	meterBandDrop = 1

	// MeterAll selects every meter (OFPM_ALL).
	MeterAll uint32 = 0xffffffff
	// MeterMax is the largest meter id a flow may use (OFPM_MAX).
	MeterMax uint32 = 0xffff0000

	errMeterModFailed = 12
	errMeterExists    = 1 // OFPMMFC_METER_EXISTS
	errMeterUnknown   = 3 // OFPMMFC_UNKNOWN_METER
)

func meterModMsg(xid uint32, command uint16, m Meter) []byte {
	b := appendHeader(nil, typeMeterMod, xid)
	b = be16(b, command)
	if command == meterDelete {
		b = be16(b, 0)
		b = be32(b, m.ID)
		return finish(b, 0)
	}
	b = be16(b, meterFlagPktps|meterFlagBurst|meterFlagStats)
	b = be32(b, m.ID)
	b = be16(b, meterBandDrop)
	b = be16(b, 16)
	b = be32(b, m.Rate)
	b = be32(b, m.Burst)
	b = append(b, 0, 0, 0, 0)
	return finish(b, 0)
}

// SetMeter makes the meter exist with this band: it modifies the meter,
// and adds it when the switch does not have it.
func (s *Switch) SetMeter(ctx context.Context, m Meter) error {
	if m.ID == 0 || m.ID > MeterMax {
		return fmt.Errorf("ofctl: meter id %d is outside 1..%d", m.ID, MeterMax)
	}
	err := s.meterMod(ctx, meterModify, m)
	var oe *OpenFlowError
	if errors.As(err, &oe) && oe.Type == errMeterModFailed && oe.Code == errMeterUnknown {
		err = s.meterMod(ctx, meterAdd, m)
	}
	return err
}

// DeleteMeter removes a meter. Open vSwitch keeps flows whose
// controller(meter_id=...) action names it (it removes only flows with a
// meter instruction), so remove those flows first.
func (s *Switch) DeleteMeter(ctx context.Context, id uint32) error {
	return s.meterMod(ctx, meterDelete, Meter{ID: id})
}

func (s *Switch) meterMod(ctx context.Context, command uint16, m Meter) error {
	xid := s.nextXids(2)
	sink := s.addSink(xid, xid)
	defer s.removeSink(sink)
	if err := s.write(ctx, meterModMsg(xid, command, m)); err != nil {
		return err
	}
	if _, err := s.roundTrip(ctx, xid+1, simpleMsg(typeBarrierReq, xid+1), "barrier", isType(typeBarrierReply)); err != nil {
		return err
	}
	select {
	case msg := <-sink.errs:
		e, err := parseError(msg)
		if err != nil {
			return fmt.Errorf("ofctl: switch %s: malformed error: %w", s, err)
		}
		return &OpenFlowError{DPID: s.dpid, Type: e.Type, Code: e.Code, Request: fmt.Sprintf("meter %d", m.ID)}
	default:
		return nil
	}
}

// MeterStats reads the counters of every meter, sorted by id.
func (s *Switch) MeterStats(ctx context.Context) ([]MeterStats, error) {
	xid := s.nextXids(1)
	body := be32(nil, MeterAll)
	body = append(body, 0, 0, 0, 0)
	replies, err := s.roundTrip(ctx, xid, multipartMsg(xid, multipartMeterStats, body), "meter stats", multipartDone)
	if err != nil {
		return nil, err
	}
	var out []MeterStats
	for _, msg := range replies {
		typ, _, body, err := parseMultipart(msg)
		if err != nil || typ != multipartMeterStats {
			return nil, fmt.Errorf("ofctl: switch %s: malformed meter stats reply", s)
		}
		stats, err := parseMeterStats(body)
		if err != nil {
			return nil, fmt.Errorf("ofctl: switch %s: %w", s, err)
		}
		out = append(out, stats...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// parseMeterStats reads ofp_meter_stats entries: a 40-byte head and 16
// bytes per band.
func parseMeterStats(body []byte) ([]MeterStats, error) {
	var out []MeterStats
	for len(body) > 0 {
		if len(body) < 40 {
			return nil, of.ErrTruncated
		}
		n := int(binary.BigEndian.Uint16(body[4:]))
		if n < 40 || n > len(body) || (n-40)%16 != 0 {
			return nil, fmt.Errorf("meter stats entry of %d bytes: %w", n, of.ErrTruncated)
		}
		m := MeterStats{ID: binary.BigEndian.Uint32(body), Packets: binary.BigEndian.Uint64(body[16:])}
		for band := body[40:n]; len(band) >= 16; band = band[16:] {
			m.Dropped += binary.BigEndian.Uint64(band)
		}
		out = append(out, m)
		body = body[n:]
	}
	return out, nil
}
