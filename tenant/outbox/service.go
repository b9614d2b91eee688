package outbox

import "github.com/skiffhq/skiff/tenant"

// Service reads what the outbox room keeps; writes happen inside other rooms'
// transactions (see Enqueue).
type Service struct {
	*tenant.Base
}
