package graph

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/vikstrous/dataloadgen"

	"github.com/skiffhq/skiff/graph/model"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/domain"
	"github.com/skiffhq/skiff/tenant/people"
)

// Facts admin screens need (issue #18 item 7): users' last logins, the
// enums of audit and notification kinds, API sessions and refresh tokens.

// newLoginTimesLoader batches User.lastLoginAt (and its API and SFTP parts)
// of a page of users into one statement per account.
func newLoginTimesLoader(svc *domain.Domain) *dataloadgen.Loader[userRef, *people.LoginTimes] {
	return dataloadgen.NewMappedLoader(func(ctx context.Context, refs []userRef) (map[userRef]*people.LoginTimes, error) {
		return byAccount(ctx, refs, svc.People.LoginTimesOfUsers)
	}, dataloadgen.WithWait(batchWait))
}

// loginTimes is the user's login times: a FORBIDDEN error for a caller who
// may not see them (a member of a folder looking at another member).
func (r *Resolver) loginTimes(ctx context.Context, u *tenant.User) (*people.LoginTimes, error) {
	if !r.mayManage(ctx, u) {
		return nil, errNotYours("login times")
	}
	return r.loaders(ctx).loginTimes.Load(ctx, userRef{u.AccountID, u.ID})
}

// auditEventKind is the enum value of a stored audit kind ("user.created"
// is USER_CREATED), or OTHER for a kind this version does not know.
func auditEventKind(kind string) model.AuditEventKind {
	k := model.AuditEventKind(strings.ToUpper(strings.ReplaceAll(kind, ".", "_")))
	if k == model.AuditEventKindOther || !k.IsValid() {
		return model.AuditEventKindOther
	}
	return k
}

// notificationKind is the enum value of a stored email kind
// ("sftp_enabled" is SFTP_ENABLED), or OTHER.
func notificationKind(kind string) model.NotificationKind {
	k := model.NotificationKind(strings.ToUpper(kind))
	if k == model.NotificationKindOther || !k.IsValid() {
		return model.NotificationKindOther
	}
	return k
}

type userAgentKey struct{}

// withUserAgent records the client's User-Agent, which a login keeps in
// its session (viewer.apiSessions).
func withUserAgent(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		next.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), userAgentKey{}, req.UserAgent())))
	})
}

// loginOptions are what a login or refresh remembers of the request.
func loginOptions(ctx context.Context, kind *people.TokenKind) people.LoginOptions {
	ua, _ := ctx.Value(userAgentKey{}).(string)
	opt := people.LoginOptions{Remote: remoteAddr(ctx), UserAgent: ua}
	if kind != nil {
		opt.Kind = *kind
	}
	return opt
}

// loginErrors are the user errors of a failed login or refresh: a refused
// credential is an UNAUTHENTICATED user error (on its field, field when the
// error names none; TOTP_REQUIRED when only the code is missing), anything
// else as userErrors makes it.
func loginErrors(err error, field string) ([]*model.UserError, error) {
	if tenant.ErrorCode(err) != tenant.EUnauthenticated {
		return userErrors(err)
	}
	uc := model.UserErrorCodeUnauthenticated
	if ef := tenant.ErrorField(err); ef != "" {
		field = ef
	}
	if errors.Is(err, people.ErrTotpRequired) {
		uc = model.UserErrorCodeTotpRequired
	}
	return []*model.UserError{{Field: &field, Code: uc, Message: tenant.ErrorMessage(err)}}, nil
}

// optionalString is s, or nil when empty.
func optionalString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
