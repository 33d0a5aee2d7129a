package topology

import (
	"strconv"
	"strings"
)

// checkDNSName accepts "" or a host name: labels of letters, digits and
// hyphens, 1..63 long, not starting or ending with a hyphen, at most 253
// characters in all (Neutron's dns_name).
func checkDNSName(name string) error {
	if name == "" {
		return nil
	}
	if err := checkLabels(strings.TrimSuffix(name, ".")); err != nil {
		return invalid("'%s' is not a valid dns_name: %v", name, err)
	}
	return nil
}

// checkDNSDomain accepts "" or a domain name, and stores it with its
// trailing dot, as Neutron does.
func checkDNSDomain(domain string) (string, error) {
	if domain == "" {
		return "", nil
	}
	d := strings.TrimSuffix(domain, ".")
	if err := checkLabels(d); err != nil {
		return "", invalid("'%s' is not a valid dns_domain: %v", domain, err)
	}
	if !strings.Contains(d, ".") {
		return "", invalid("'%s' is not a valid dns_domain: it needs at least two labels", domain)
	}
	return d + ".", nil
}

func checkLabels(name string) error {
	if len(name) > 253 {
		return errString("longer than 253 characters")
	}
	for _, l := range strings.Split(name, ".") {
		if l == "" || len(l) > 63 {
			return errString("every label must have 1 to 63 characters")
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return errString("a label may not start or end with a hyphen")
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return errString("only letters, digits and hyphens are allowed")
			}
		}
	}
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }

// MaxExtraDHCPOpts bounds a port's own DHCP options.
const MaxExtraDHCPOpts = 32

// mergeDHCPOpts applies an update of extra_dhcp_opts as Neutron does: an
// option named again replaces the old one, one with an empty value is
// removed, the others are kept.
func mergeDHCPOpts(have, update []ExtraDHCPOpt) ([]ExtraDHCPOpt, error) {
	out := append([]ExtraDHCPOpt(nil), have...)
	for _, o := range update {
		if o.IPVersion == 0 {
			o.IPVersion = 4
		}
		if o.IPVersion != 4 && o.IPVersion != 6 {
			return nil, invalid("extra_dhcp_opts: ip_version %d is not 4 or 6", o.IPVersion)
		}
		if o.OptName == "" || len(o.OptName) > 64 {
			return nil, invalid("extra_dhcp_opts: opt_name must have 1 to 64 characters")
		}
		if len(o.OptValue) > 255 {
			return nil, invalid("extra_dhcp_opts: the value of %s is longer than 255 characters", o.OptName)
		}
		if n, err := strconv.Atoi(o.OptName); err == nil && (n < 1 || n > 254) {
			return nil, invalid("extra_dhcp_opts: option number %d is not 1..254", n)
		}
		kept := out[:0]
		for _, h := range out {
			if h.OptName != o.OptName || h.IPVersion != o.IPVersion {
				kept = append(kept, h)
			}
		}
		out = kept
		if o.OptValue != "" {
			out = append(out, o)
		}
	}
	if len(out) > MaxExtraDHCPOpts {
		return nil, invalid("a port has at most %d extra_dhcp_opts", MaxExtraDHCPOpts)
	}
	return out, nil
}
