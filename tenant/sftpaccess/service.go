package sftpaccess

import "github.com/skiffhq/skiff/tenant"

// Service applies the rules of an account's SFTP module and licences and of
// its users' SFTP access: turning it on and off, lasting credentials,
// custom logins and SSH keys.
type Service struct {
	*tenant.Base
	// SFTP describes the deployment's SFTP endpoint and module defaults.
	Config Config
}

// Config is what the service needs to know about the SFTP endpoint and
// the module's commercial defaults.
type Config struct {
	Host          string // public host name users connect to
	Port          int
	TrialDays     int // length of a trial; 14 by default
	TrialLicences int // licences during a trial
}

// DefaultConfig is the product's defaults, for a local endpoint.
var DefaultConfig = Config{Host: "localhost", Port: 2022, TrialDays: 14, TrialLicences: 5}
