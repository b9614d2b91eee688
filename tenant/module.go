package tenant

import "time"

// ModuleStatus is the state of an account's SFTP module as users see it.
type ModuleStatus string

const (
	ModuleNone      ModuleStatus = "NONE"
	ModuleTrial     ModuleStatus = "TRIAL"
	ModuleActive    ModuleStatus = "ACTIVE"
	ModuleExpired   ModuleStatus = "EXPIRED"
	ModuleSuspended ModuleStatus = "SUSPENDED"
)

// EffectiveModuleStatus derives the status from the stored one and the clock:
// a trial whose end has passed reads EXPIRED without any job having to run.
func EffectiveModuleStatus(stored string, trialEndsAt *time.Time, now time.Time) ModuleStatus {
	s := ModuleStatus(stored)
	if s == ModuleTrial && trialEndsAt != nil && !now.Before(*trialEndsAt) {
		return ModuleExpired
	}
	return s
}

// AllowsLogin reports whether SFTP logins work in this status.
func (s ModuleStatus) AllowsLogin() bool { return s == ModuleTrial || s == ModuleActive }

// ModuleStatus returns the account's SFTP module status at now.
func (a *Account) ModuleStatus(now time.Time) ModuleStatus {
	return EffectiveModuleStatus(a.SFTPStatus, a.SFTPTrialEndsAt, now)
}

// SFTPModuleStatus returns the account's SFTP module status by the service's
// clock: what clients should show, since EXPIRED is never stored.
func (s *Service) SFTPModuleStatus(a *Account) ModuleStatus { return a.ModuleStatus(s.now()) }
