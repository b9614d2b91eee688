// Package domain wires the domain's rooms into the one set of services a
// process uses: serve, the admin commands, the benchmarks and the tests of
// the transports. The rooms share one tenant.Base: one store, one clock and
// one way to end SFTP sessions.
package domain

import (
	"time"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/account"
	"github.com/skiffhq/skiff/tenant/activity"
	"github.com/skiffhq/skiff/tenant/audit"
	"github.com/skiffhq/skiff/tenant/outbox"
	"github.com/skiffhq/skiff/tenant/people"
	"github.com/skiffhq/skiff/tenant/purge"
	"github.com/skiffhq/skiff/tenant/sftpaccess"
	"github.com/skiffhq/skiff/tenant/sftplogin"
	"github.com/skiffhq/skiff/tenant/sftpsessions"
	"github.com/skiffhq/skiff/tenant/sharing"
	"github.com/skiffhq/skiff/tenant/storageuse"
)

// Domain is every room's service, sharing Base. Set Base's Now and Sessions,
// and the rooms' own settings (SFTP.Config, DedicatedIPs.Config,
// Sharing.Policy, People.TokenTTL, Files.Grace and Files.Files), before first use.
type Domain struct {
	*tenant.Base

	Accounts     *account.Service      // accounts and support staff
	People       *people.Service       // users, contacts, invitations, API logins
	SFTP         *sftpaccess.Service   // the SFTP module, licences, access, credentials, keys
	DedicatedIPs *sftplogin.Service    // dedicated IPs, provisioned by staff
	Sharing      *sharing.Service      // groups, project folders, shares, permissions
	Audit        *audit.Service        // the audit trail
	Outbox       *outbox.Service       // emails and their delivery status
	Files        *purge.Service        // deleted files: their grace period and their purge
	Storage      *storageuse.Service   // storage quotas, usage and its reconcile pass
	Activity     *activity.Service     // the SFTP activity log and the folders' upload digests
	LiveSessions *sftpsessions.Service // live SFTP sessions on every node, and ending one
}

// New returns the domain on db with the product's defaults.
func New(db *tenant.DB) *Domain {
	base := &tenant.Base{DB: db, Now: time.Now}
	d := &Domain{
		Base:         base,
		SFTP:         &sftpaccess.Service{Base: base, Config: sftpaccess.DefaultConfig},
		DedicatedIPs: &sftplogin.Service{Base: base},
		Sharing:      &sharing.Service{Base: base},
		Audit:        &audit.Service{Base: base},
		Outbox:       &outbox.Service{Base: base},
		Files:        &purge.Service{Base: base, Grace: purge.DefaultGrace},
		Storage:      &storageuse.Service{Base: base},
		LiveSessions: &sftpsessions.Service{Base: base, Events: &sftpsessions.Events{}},
	}
	d.Sharing.Files = d.Files
	d.Activity = &activity.Service{Base: base, Folders: d.Sharing}
	d.People = &people.Service{Base: base, TokenTTL: people.DefaultTokenTTL, SFTP: d.SFTP, Sharing: d.Sharing, Files: d.Files}
	d.Accounts = &account.Service{Base: base, People: d.People}
	return d
}
