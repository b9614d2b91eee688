package tenant

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// MaxIPAllowlist bounds an IP allowlist (the account's or a user's); the
// database checks it too.
const MaxIPAllowlist = 100

// ErrAddressNotAllowed is the refusal of a login or request from an address
// outside the account's or the user's IP allowlist.
var ErrAddressNotAllowed = &Error{Code: EUnauthenticated, Message: "your address is not allowed for this account"}

// ParseIPAllowlist validates an IP allowlist given as field: IPv4 and IPv6
// CIDRs, or single addresses (kept as /32 or /128). It returns them
// normalised (host bits cleared, as PostgreSQL's cidr would refuse them),
// without duplicates, in the order given. An empty list is valid: it
// restricts nothing. Every bad entry is reported at once, each on
// field.i (i its index from 0), as errors joined with errors.Join.
func ParseIPAllowlist(field string, cidrs []string) ([]string, error) {
	if len(cidrs) > MaxIPAllowlist {
		return nil, &Error{Code: ELimit, Field: field, Message: "an IP allowlist holds at most 100 entries"}
	}
	out := make([]string, 0, len(cidrs))
	var bad []error
	for i, c := range cidrs {
		p, err := parseCIDR(strings.TrimSpace(c))
		if err != nil {
			bad = append(bad, Invalid(fmt.Sprintf("%s.%d", field, i),
				"%q is not an IPv4 or IPv6 address or CIDR (like 203.0.113.0/24 or 2001:db8::/32)", clip(c)))
			continue
		}
		if s := p.String(); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if len(bad) > 0 {
		return nil, errors.Join(bad...)
	}
	return out, nil
}

func parseCIDR(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, errBadCIDR
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 { // ::ffff:a.b.c.d/n is the IPv4 a.b.c.d/(n-96)
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

var errBadCIDR = Errorf(EInvalid, "not a CIDR")

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// IPAllowed reports whether addr is in the allowlist: always when the list
// is empty, never for an unknown address otherwise. Entries are as
// ParseIPAllowlist stores them; one that does not parse allows nothing.
func IPAllowed(list []string, addr netip.Addr) bool {
	if len(list) == 0 {
		return true
	}
	addr = addr.Unmap()
	if !addr.IsValid() {
		return false
	}
	for _, c := range list {
		if p, err := netip.ParsePrefix(c); err == nil && p.Contains(addr.WithZone("")) {
			return true
		}
	}
	return false
}

// IPAllowedBoth reports whether addr is in both the account's and the
// user's allowlist: the rule for every login and request of a user.
func IPAllowedBoth(accountList, userList []string, addr netip.Addr) bool {
	return IPAllowed(accountList, addr) && IPAllowed(userList, addr)
}
