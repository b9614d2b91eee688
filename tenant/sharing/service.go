package sharing

import (
	"sync"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/purge"
)

// Service applies the rules of groups, project folders and shares, and
// answers, through the policy, what a user may do in their account.
type Service struct {
	*tenant.Base
	// Policy answers "may this user do this?" (a *policy.Enforcer). Set it
	// before first use; left nil, the service makes a non-listening one.
	Policy Policy
	// Files schedules the purge of a deleted project folder's files.
	Files      *purge.Service
	policyOnce sync.Once
	policyErr  error
}
