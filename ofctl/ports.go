package ofctl

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
)

// multipartPortDesc is OFPMP_PORT_DESC.
const multipartPortDesc = 13

// PortDesc is one port of a switch as it describes itself.
type PortDesc struct {
	No     uint32
	Name   string
	HWAddr net.HardwareAddr
}

// Ports asks the switch for its ports: how a controller learns a bridge's
// tunnel and patch ports by name without OVSDB (a bridge whose chassis
// runs no wyvernd).
func (s *Switch) Ports(ctx context.Context) ([]PortDesc, error) {
	xid := s.nextXids(1)
	body := be32(nil, 0xffffffff) // OFPP_ANY
	body = append(body, 0, 0, 0, 0)
	replies, err := s.roundTrip(ctx, xid, multipartMsg(xid, multipartPortDesc, body), "port description", multipartDone)
	if err != nil {
		return nil, err
	}
	var out []PortDesc
	for _, msg := range replies {
		typ, _, body, err := parseMultipart(msg)
		if err != nil || typ != multipartPortDesc {
			return nil, fmt.Errorf("ofctl: switch %s: malformed port description reply", s)
		}
		ports, err := parsePortDescs(body)
		if err != nil {
			return nil, fmt.Errorf("ofctl: switch %s: %w", s, err)
		}
		out = append(out, ports...)
	}
	return out, nil
}

// parsePortDescs reads OpenFlow 1.5 ofp_port structures: port_no, length,
// pad, hw_addr, pad, name[16], config, state, then properties.
func parsePortDescs(body []byte) ([]PortDesc, error) {
	var out []PortDesc
	for len(body) > 0 {
		if len(body) < 40 {
			return nil, fmt.Errorf("port description of %d bytes", len(body))
		}
		n := int(binary.BigEndian.Uint16(body[4:]))
		if n < 40 || n > len(body) {
			return nil, fmt.Errorf("port description length %d of %d bytes", n, len(body))
		}
		name := body[16:32]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		out = append(out, PortDesc{No: binary.BigEndian.Uint32(body), Name: string(name),
			HWAddr: net.HardwareAddr(append([]byte(nil), body[8:14]...))})
		body = body[n:]
	}
	return out, nil
}
