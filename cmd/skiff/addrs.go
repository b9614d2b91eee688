package main

import (
	"errors"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/skiffhq/skiff/sftp"
)

// checkAddresses checks serve's listen addresses, networks and ciphers
// without binding anything: each must at least read as what its flag takes.
func (c *ServeCmd) checkAddresses() error {
	if err := checkListenAddr("--http-addr", c.HTTP.Addr); err != nil {
		return err
	}
	addrs := splitList(c.SFTP.Addrs)
	if len(addrs) == 0 {
		return flagError("--sftp-addr", "give at least one address")
	}
	for _, a := range addrs {
		if err := checkListenAddr("--sftp-addr", a); err != nil {
			return err
		}
	}
	if c.Metrics.Addr != "" {
		if err := checkListenAddr("--metrics-addr", c.Metrics.Addr); err != nil {
			return err
		}
	}
	if c.SFTP.Port < 0 || c.SFTP.Port > 65535 {
		return flagError("--sftp-port", "%d is not a port (1-65535; 0: the first --sftp-addr's)", c.SFTP.Port)
	}
	allowed := sftp.AllowedCiphers()
	for _, cipher := range splitList(c.SFTP.Ciphers) {
		if !slices.Contains(allowed, cipher) {
			return flagError("--sftp-ciphers", "%q is not a cipher Skiff offers (%s)", cipher, strings.Join(allowed, ", "))
		}
	}
	if _, err := parsePrefixes("--http-trusted-proxies", splitList(c.HTTP.TrustedProxies)); err != nil {
		return err
	}
	if _, err := parsePrefixes("--proxy-trusted", splitList(c.SFTP.ProxyTrusted)); err != nil {
		return err
	}
	_, err := c.DedicatedIPs.config()
	return err
}

// checkListenAddr refuses an address net.Listen could not take: not
// host:port, or a port that is no number (nor a service name).
func checkListenAddr(flag, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			err = errors.New(ae.Err)
		}
		return flagError(flag, "%q is not host:port (%v), e.g. 127.0.0.1:8080 or 0.0.0.0:22", addr, err)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return flagError(flag, "%q: %q is not a port", addr, port)
	}
	return nil
}

// probeListeners binds every address serve will listen on, before the
// database is started or touched: an address in use, or one that is not
// this machine's, ends start-up at once (exit 78) rather than after
// migrations and demo data. It holds them until release, which serve calls
// just before its own listeners bind: meanwhile the private PostgreSQL,
// which picks a free port as it starts, cannot take one of them. A real
// listener that finds its address taken in the moment between reports the
// same way.
func (c *ServeCmd) probeListeners() (release func(), err error) {
	var held []net.Listener
	release = sync.OnceFunc(func() {
		for _, ln := range held {
			ln.Close()
		}
	})
	try := func(flag, addr string) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return listenError(flag, addr, err)
		}
		held = append(held, ln)
		return nil
	}
	addrs := []struct{ flag, addr string }{{"--http-addr", c.HTTP.Addr}}
	for _, a := range splitList(c.SFTP.Addrs) {
		addrs = append(addrs, struct{ flag, addr string }{"--sftp-addr", a})
	}
	if c.Metrics.Addr != "" {
		addrs = append(addrs, struct{ flag, addr string }{"--metrics-addr", c.Metrics.Addr})
	}
	for _, a := range addrs {
		if err := try(a.flag, a.addr); err != nil {
			release()
			return nil, err
		}
	}
	return release, nil
}

// listenError is a listen address serve cannot listen on: a setting to
// change (exit 78), named like the other invalid settings.
func listenError(flag, addr string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Addr != nil {
		addr = oe.Addr.String()
	}
	return flagError(flag, "cannot listen on %s: %s", addr, rootCause(err))
}
