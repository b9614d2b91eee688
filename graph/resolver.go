// Package graph is the GraphQL adapter: schema, thin resolvers that call the
// tenant services, dataloaders and the error presenter.
package graph

import "github.com/skiffhq/skiff/tenant/domain"

//go:generate ../scripts/gqlgen

// Resolver is the root resolver; it holds the services resolvers call.
type Resolver struct {
	Tenant *domain.Domain
}
