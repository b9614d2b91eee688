package sftplogin

import "github.com/skiffhq/skiff/tenant"

// Service provisions and releases accounts' dedicated IPs for support staff.
// The SFTP listener's side of this room (resolving logins, host keys, the
// routes by destination address) is the Directory.
type Service struct {
	*tenant.Base
	// DedicatedIPs is the deployment's pool of dedicated IPs; see dedicatedip.go.
	Config DedicatedIPConfig
	// HostKeyCipher encrypts the host keys of new dedicated IPs; the
	// Directory's Cipher must be the same.
	HostKeyCipher *HostKeyCipher
}
