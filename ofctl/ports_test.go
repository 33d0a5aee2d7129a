package ofctl

import "testing"

// TestParsePortDescsRejectsMalformed: a truncated entry or a length that
// runs past the body is an error, never a panic or a partial port.
func TestParsePortDescsRejectsMalformed(t *testing.T) {
	good := make([]byte, 40)
	good[3] = 5           // port 5
	good[5] = 40          // length
	copy(good[16:], "p5") // name
	ports, err := parsePortDescs(good)
	if err != nil || len(ports) != 1 || ports[0].No != 5 || ports[0].Name != "p5" {
		t.Fatalf("good entry: %+v %v", ports, err)
	}
	long := append([]byte(nil), good...)
	long[5] = 48
	for name, b := range map[string][]byte{"truncated": good[:39], "length past the body": long, "length below 40": func() []byte {
		b := append([]byte(nil), good...)
		b[5] = 8
		return b
	}()} {
		if ports, err := parsePortDescs(b); err == nil {
			t.Errorf("%s: %+v, want an error", name, ports)
		}
	}
}
