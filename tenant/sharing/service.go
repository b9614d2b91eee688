package sharing

import (
	"sync"

	"github.com/skiffhq/skiff/tenant"
)

// Service applies the rules of groups, project folders and shares, and
// answers, through the policy, what a user may do in their account.
type Service struct {
	*tenant.Base
	// Policy answers "may this user do this?" (a *policy.Enforcer). Set it
	// before first use; left nil, the service makes a non-listening one.
	Policy     Policy
	policyOnce sync.Once
	policyErr  error
}
