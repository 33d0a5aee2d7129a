package ofctl

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

// bundleChunk bounds how much of a bundle is buffered before writing.
const bundleChunk = 1 << 20

// Bundle applies the flow-mods atomically and in order: all of them or
// none (Apply without meters).
func (s *Switch) Bundle(ctx context.Context, mods []of.FlowMod) error { return s.Apply(ctx, nil, mods) }

// Apply makes meters exist with their bands, then applies the flow-mods
// atomically and in order: all of them or none. A meter-mod cannot be
// bundled, but the switch handles a connection's messages in order, so
// the meter-mods go on the wire just ahead of the bundle and its flows
// find them. Open, meter-mods, adds and a barrier are one write; the
// barrier's reply comes after every error they caused, and a flow the
// switch rejects discards the bundle (an *OpenFlowError names it);
// otherwise the commit is a second round trip. A meter is added, or, if
// it exists already (every meter, in a replay after a restart), modified
// with the others that do in one more round trip.
//
// Packet-outs in then go on the wire right behind the commit request, so
// the switch sends them through the flows the bundle installed without a
// round trip to wait for the commit's reply. They are sent once the
// bundle's adds are accepted (never for a discarded bundle); should the
// commit itself fail, they meet the flows as they were.
func (s *Switch) Apply(ctx context.Context, meters []Meter, mods []of.FlowMod, then ...PacketOut) error {
	for _, m := range meters {
		if m.ID == 0 || m.ID > MeterMax {
			return fmt.Errorf("ofctl: meter id %d is outside 1..%d", m.ID, MeterMax)
		}
	}
	if len(mods) == 0 {
		for _, m := range meters {
			if err := s.SetMeter(ctx, m); err != nil {
				return err
			}
		}
		return s.PacketOuts(ctx, then...)
	}
	var outs []byte
	if len(then) > 0 {
		x := s.nextXids(uint32(len(then)))
		for i, po := range then {
			var err error
			if outs, err = appendPacketOut(outs, x+uint32(i), po); err != nil {
				return fmt.Errorf("ofctl: switch %s: %w", s, err)
			}
		}
	}
	n, nm := uint32(len(mods)), uint32(len(meters))
	s.bundles.Add(1)
	defer s.bundles.Add(-1)
	base := s.nextXids(nm + n + 3)
	meterX, openX := base, base+nm
	addX := openX + 1
	barrierX, commitX := addX+n, addX+n+1
	bid := s.bundleID.Add(1)
	flags := uint16(bundleAtomic | bundleOrdered)

	meterSink := &errorSink{errs: make(chan []byte)} // none when there are no meters
	if nm > 0 {
		meterSink = s.addSinkAll(meterX, meterX+nm-1)
		defer s.removeSink(meterSink)
	}
	sink := s.addSink(addX, addX+n-1)
	defer s.removeSink(sink)
	opened := s.register(openX)
	defer s.unregister(openX, opened)

	discard := func() {
		x := s.nextXids(1)
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = s.roundTrip(dctx, x, bundleCtrlMsg(x, bid, bundleDiscardRequest, flags), "bundle discard", isType(typeBundleControl))
	}
	buf := make([]byte, 0, min(bundleChunk+4096, 128*len(mods)+64*len(meters)+64))
	for i, m := range meters {
		buf = append(buf, meterModMsg(meterX+uint32(i), meterAdd, m)...)
	}
	buf = append(buf, bundleCtrlMsg(openX, bid, bundleOpenRequest, flags)...)
	written := false // the bundle is open on the switch
	for i, fm := range mods {
		var err error
		buf, err = appendBundleAdd(buf, addX+uint32(i), bid, flags, fm)
		if err != nil {
			if written {
				discard()
			}
			return fmt.Errorf("ofctl: switch %s: %w", s, err)
		}
		if len(buf) >= bundleChunk {
			if err := s.write(ctx, buf); err != nil {
				return err
			}
			buf, written = buf[:0], true
		}
	}
	// Adds are validated as they arrive; the barrier reply comes after
	// every error they caused, and after the open's reply.
	buf = append(buf, simpleMsg(typeBarrierReq, barrierX)...)
	if _, err := s.roundTrip(ctx, barrierX, buf, "bundle barrier", isType(typeBarrierReply)); err != nil {
		if !errors.Is(err, ErrDisconnected) {
			discard()
		}
		return err
	}
	if err := s.openReply(opened, "bundle open"); err != nil {
		return err // nothing was added to a bundle that never opened
	}
	redo, err := s.meterErrors(meterSink, meterX, meters)
	if err == nil {
		err = s.bundleErrors(sink, addX, mods)
	}
	if err != nil {
		discard()
		return err
	}
	if err := s.modifyMeters(ctx, redo); err != nil {
		discard()
		return err
	}
	commit := append(bundleCtrlMsg(commitX, bid, bundleCommitRequest, flags), outs...)
	_, err = s.roundTrip(ctx, commitX, commit, "bundle commit", isType(typeBundleControl))
	if err != nil {
		// A failed commit is discarded by the switch; the failing
		// flow's own error came first.
		if ferr := s.bundleErrors(sink, addX, mods); ferr != nil {
			return errors.Join(ferr, err)
		}
		return err
	}
	return nil
}

// modifyMeters modifies meters that exist, in one write and one barrier.
func (s *Switch) modifyMeters(ctx context.Context, meters []Meter) error {
	if len(meters) == 0 {
		return nil
	}
	n := uint32(len(meters))
	base := s.nextXids(n + 1)
	sink := s.addSinkAll(base, base+n-1)
	defer s.removeSink(sink)
	var buf []byte
	for i, m := range meters {
		buf = append(buf, meterModMsg(base+uint32(i), meterModify, m)...)
	}
	buf = append(buf, simpleMsg(typeBarrierReq, base+n)...)
	if _, err := s.roundTrip(ctx, base+n, buf, "meter barrier", isType(typeBarrierReply)); err != nil {
		return err
	}
	_, err := s.meterErrors(sink, base, meters)
	return err
}

// openReply reads the reply to a request written ahead of a barrier whose
// reply has come: it is there already (the switch answers in order).
func (s *Switch) openReply(p *pending, what string) error {
	select {
	case msg := <-p.ch:
		if msg[1] == typeError {
			e, err := parseError(msg)
			if err != nil {
				return fmt.Errorf("ofctl: %s: malformed error reply: %w", what, err)
			}
			return &OpenFlowError{DPID: s.dpid, Type: e.Type, Code: e.Code, Request: what}
		}
		return nil
	default:
		return fmt.Errorf("ofctl: switch %s: no reply to %s before the barrier's", s, what)
	}
}

// meterErrors sorts the errors of meter adds sent ahead of a bundle: a
// meter that exists already is returned, to be modified; any other error
// is the error.
func (s *Switch) meterErrors(sink *errorSink, meterX uint32, meters []Meter) (exists []Meter, err error) {
	var errs []error
	for {
		select {
		case msg := <-sink.errs:
			h, _ := parseHeader(msg)
			e, perr := parseError(msg)
			i := int(h.Xid - meterX)
			switch {
			case perr != nil:
				errs = append(errs, fmt.Errorf("ofctl: switch %s: malformed error: %w", s, perr))
			case i < 0 || i >= len(meters):
				errs = append(errs, &OpenFlowError{DPID: s.dpid, Type: e.Type, Code: e.Code, Request: "meter"})
			case e.Type == errMeterModFailed && e.Code == errMeterExists:
				exists = append(exists, meters[i])
			default:
				errs = append(errs, &OpenFlowError{DPID: s.dpid, Type: e.Type, Code: e.Code, Request: fmt.Sprintf("meter %d", meters[i].ID)})
			}
		default:
			return exists, errors.Join(errs...)
		}
	}
}

// bundleErrors turns the errors collected for a bundle's adds into one
// error naming the failing flows.
func (s *Switch) bundleErrors(sink *errorSink, addX uint32, mods []of.FlowMod) error {
	var errs []error
	for {
		select {
		case msg := <-sink.errs:
			h, _ := parseHeader(msg)
			e, err := parseError(msg)
			if err != nil {
				errs = append(errs, fmt.Errorf("ofctl: switch %s: malformed error: %w", s, err))
				continue
			}
			oe := &OpenFlowError{DPID: s.dpid, Type: e.Type, Code: e.Code, Request: "bundle add"}
			if i := int(h.Xid - addX); i >= 0 && i < len(mods) {
				f := mods[i].Flow
				oe.Flow = &f
			}
			errs = append(errs, oe)
		default:
			return errors.Join(errs...)
		}
	}
}
