package graph

import (
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// clientAddrs finds a request's client address: the TCP peer, unless the
// peer is one of the trusted proxies, in which case the address that proxy
// reports in X-Forwarded-For (or, without one, in Forwarded's "for="),
// walking back through any further trusted proxies. IP allowlists, login
// throttling and the per-address request cap all use it.
type clientAddrs struct {
	trusted []netip.Prefix
}

func (c clientAddrs) isTrusted(a netip.Addr) bool {
	return slices.ContainsFunc(c.trusted, func(p netip.Prefix) bool { return p.Contains(a) })
}

// of returns the request's client address; the zero Addr when the peer's
// address cannot be read, or a trusted proxy reports one that cannot be
// parsed (which then matches no IP allowlist).
func (c clientAddrs) of(req *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	addr := peer.Unmap().WithZone("")
	if len(c.trusted) == 0 || !c.isTrusted(addr) {
		return addr
	}
	hops := forwardedFor(req.Header)
	// From the nearest hop back: each trusted proxy vouches for the one
	// before it; the first address not of a trusted proxy is the client.
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			return netip.Addr{}
		}
		addr = a
		if !c.isTrusted(a) {
			break
		}
	}
	return addr
}

// forwardedFor lists the addresses of X-Forwarded-For, in order, or when
// there is none, the for= parameters of Forwarded (RFC 7239).
func forwardedFor(h http.Header) []string {
	var hops []string
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		for _, v := range xff {
			for _, hop := range strings.Split(v, ",") {
				hops = append(hops, strings.TrimSpace(hop))
			}
		}
		return hops
	}
	for _, v := range h.Values("Forwarded") {
		for _, elem := range strings.Split(v, ",") {
			for _, pair := range strings.Split(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(k, "for") {
					hops = append(hops, strings.Trim(val, `"`))
				}
			}
		}
	}
	return hops
}

// parseHop reads one forwarded address: 192.0.2.1, 2001:db8::1, and with
// a port 192.0.2.1:443 or [2001:db8::1]:443.
func parseHop(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}
