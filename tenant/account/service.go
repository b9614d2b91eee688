package account

import (
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/people"
)

// Service applies the rules of customer accounts (created by support staff
// with their first owner) and of support staff themselves.
type Service struct {
	*tenant.Base
	// People creates an account's first owner.
	People *people.Service
}
