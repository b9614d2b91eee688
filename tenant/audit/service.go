package audit

import "github.com/skiffhq/skiff/tenant"

// Service reads what the audit room keeps; writes happen inside other rooms'
// transactions (see Record).
type Service struct {
	*tenant.Base
}
