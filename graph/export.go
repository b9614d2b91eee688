package graph

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/activity"
)

// ActivityExportPath is where the activity log is exported as CSV.
const ActivityExportPath = "/export/activity.csv"

// activityCSVHeader names the export's columns.
var activityCSVHeader = []string{"at", "action", "outcome", "user_id", "login", "client_address", "path",
	"target_path", "bytes", "duration_ms", "reason", "node"}

// exportWriteWindow is how long the client has to take each page of the
// export: the server's write timeout is pushed back by this much per page,
// so a long export is not cut by it while a stalled client still is.
const exportWriteWindow = time.Minute

// exportActivity serves GET /export/activity.csv: the SFTP activity log
// matching the query's filter (userId, pathPrefix, actions as a
// comma-separated list, from, to as RFC 3339 times; accountId for support
// staff), newest first, as CSV streamed in pages, to those who may see it
// (see activity.Service.Export). The caller authenticates with the bearer
// token as for /graphql; an enrol-only token is FORBIDDEN (403), as its
// queries are. Cells a spreadsheet would read as a formula are
// escaped (tenant.CSVCell).
func (r *Resolver) exportActivity(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx := req.Context()
		p := tenant.PrincipalFrom(ctx)
		if p == nil {
			writeAuthError(w, "log in first: send the Authorization header as for /graphql")
			return
		}
		if p.EnrolOnly { // as enrolOnlyGate refuses it every query
			writeExportError(w, log, req, tenant.Errorf(tenant.EForbidden, enrolFirst))
			return
		}
		accountID, f, err := exportFilter(p, req)
		if err == nil {
			err = activity.RequireReader(ctx, accountID, f.UserID)
		}
		if err != nil {
			writeExportError(w, log, req, err)
			return
		}
		rc := http.NewResponseController(w)
		cw := csv.NewWriter(w) // buffered: nothing reaches w before the first rows
		_ = cw.Write(activityCSVHeader)
		row := make([]string, len(activityCSVHeader))
		n := 0
		err = r.Tenant.Activity.Export(ctx, accountID, f, func(e *activity.Event) error {
			if n == 0 {
				w.Header().Set("Content-Type", "text/csv; charset=utf-8")
				w.Header().Set("Content-Disposition", `attachment; filename="sftp-activity.csv"`)
				w.Header().Set("Cache-Control", "no-store")
			}
			activityRow(row, e)
			if err := cw.Write(row); err != nil {
				return err
			}
			if n++; n%1000 == 0 {
				cw.Flush()
				_ = rc.SetWriteDeadline(time.Now().Add(exportWriteWindow))
				if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
					return err
				}
			}
			return cw.Error()
		})
		if err == nil && n == 0 { // no rows: the header line alone
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", `attachment; filename="sftp-activity.csv"`)
		}
		if err == nil {
			cw.Flush()
			err = cw.Error()
		}
		if err != nil {
			if n == 0 { // nothing sent yet (the first page failed)
				writeExportError(w, log, req, err)
				return
			}
			// Part of the file is sent: end the response abruptly, so the
			// client sees a failed download rather than a short file.
			log.Warn("activity export cut", "request_id", RequestIDFrom(ctx), "rows", n, "err", err)
			panic(http.ErrAbortHandler)
		}
	})
}

// exportFilter reads the export's account and filter from the query.
func exportFilter(p *tenant.Principal, req *http.Request) (string, activity.Filter, error) {
	q := req.URL.Query()
	var f activity.Filter
	accountID := p.AccountID
	if gid := q.Get("accountId"); gid != "" {
		id, err := parseID(gid, "Account")
		if err != nil {
			return "", f, err
		}
		if !p.IsStaff() && id != p.AccountID {
			// As account(id:) answers for another account: never the
			// caller's own log under another account's name.
			return "", f, tenant.NotFound("account")
		}
		accountID = id
	}
	if accountID == "" {
		return "", f, tenant.Invalid("accountId", "support staff name the account: accountId")
	}
	if gid := q.Get("userId"); gid != "" {
		id, err := parseID(gid, "User")
		if err != nil {
			return "", f, err
		}
		f.UserID = id
	} else if p.Kind == tenant.KindUser && !p.IsAdmin(accountID) {
		f.UserID = p.ID // a user exports their own activity
	}
	f.PathPrefix = q.Get("pathPrefix")
	for _, a := range strings.Split(q.Get("actions"), ",") {
		if a = strings.TrimSpace(a); a != "" {
			f.Actions = append(f.Actions, activity.Action(strings.ToUpper(a)))
		}
	}
	for _, b := range []struct {
		name string
		t    **time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(b.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return "", f, tenant.Invalid(b.name, "%s must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z", b.name)
			}
			*b.t = &t
		}
	}
	return accountID, f, nil
}

// activityRow fills row with e's cells.
func activityRow(row []string, e *activity.Event) {
	num := func(p *int64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatInt(*p, 10)
	}
	row[0] = e.At.UTC().Format(time.RFC3339Nano)
	row[1], row[2] = string(e.Action), string(e.Outcome)
	row[3], row[4], row[5] = globalID("User", e.UserID), tenant.CSVCell(e.Login), tenant.CSVCell(e.ClientAddr)
	row[6], row[7] = tenant.CSVCell(e.Path), tenant.CSVCell(e.TargetPath)
	row[8], row[9] = num(e.Bytes), num(e.DurationMS)
	row[10], row[11] = tenant.CSVCell(e.Reason), tenant.CSVCell(e.Node)
}

// writeExportError answers a refused or failed export as /graphql would,
// with its code, and the matching HTTP status.
func writeExportError(w http.ResponseWriter, log *slog.Logger, req *http.Request, err error) {
	code := tenant.ErrorCode(err)
	status := map[tenant.Code]int{
		tenant.EUnauthenticated: http.StatusUnauthorized, tenant.EForbidden: http.StatusForbidden,
		tenant.ENotFound: http.StatusNotFound, tenant.EInvalid: http.StatusBadRequest,
	}[code]
	if status == 0 {
		writeInternalError(req.Context(), w, log, "activity export", err)
		return
	}
	ext := map[string]any{"code": string(code)}
	if code == tenant.EInvalid { // a bad parameter, coded as /graphql codes a bad argument
		ext["code"] = "BAD_USER_INPUT"
		if te := (*tenant.Error)(nil); errors.As(err, &te) && te.Field != "" {
			ext["field"] = te.Field
		}
	}
	body, _ := json.Marshal(map[string]any{"errors": []any{map[string]any{
		"message": tenant.ErrorMessage(err), "extensions": ext}}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
