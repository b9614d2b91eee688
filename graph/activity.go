package graph

import (
	"github.com/skiffhq/skiff/graph/model"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/activity"
)

// activityFilter reads the GraphQL filter of the activity log.
func activityFilter(in *model.SftpActivityFilter) (activity.Filter, error) {
	var f activity.Filter
	if in == nil {
		return f, nil
	}
	f = activity.Filter{Actions: in.Actions, From: in.From, To: in.To}
	if in.PathPrefix != nil {
		f.PathPrefix = *in.PathPrefix
	}
	if in.UserID != nil {
		id, err := parseID(*in.UserID, "User")
		if err != nil {
			return f, err
		}
		f.UserID = id
	}
	return f, nil
}

func activityConnection(c *tenant.Connection[*activity.Event], err error) (*model.SftpActivityConnection, error) {
	if err != nil {
		return nil, err
	}
	out := &model.SftpActivityConnection{PageInfo: pageInfo(c), TotalCount: c.Total, Edges: make([]*model.SftpActivityEdge, len(c.Items))}
	for i, ev := range c.Items {
		out.Edges[i] = &model.SftpActivityEdge{Cursor: c.Cursors[i], Node: ev}
	}
	return out, nil
}

// activityOrder is the service's order for sftpActivity's orderBy.
func activityOrder(o *model.SftpActivityOrder) tenant.Order {
	if o == nil {
		return tenant.Order{}
	}
	return order(o.Field, o.Direction)
}

// nonEmpty is s, or nil when empty.
func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
