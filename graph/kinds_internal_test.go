package graph

import (
	"testing"

	"github.com/skiffhq/skiff/graph/model"
	"github.com/skiffhq/skiff/tenant/audit"
	"github.com/skiffhq/skiff/tenant/outbox"
)

// Every audit kind the code records (audit.Kinds, which audit.Record
// enforces) has its own AuditEventKind value, and every value but OTHER
// names a kind: no event reaches the API as OTHER, or as an error.
func TestAuditEventKindsMapToEnum(t *testing.T) {
	seen := map[model.AuditEventKind]string{}
	for _, k := range audit.Kinds {
		v := auditEventKind(k)
		if v == model.AuditEventKindOther {
			t.Errorf("audit kind %q has no AuditEventKind value (add %s to graph/schema/kinds.graphqls)", k, v)
			continue
		}
		if prev, dup := seen[v]; dup {
			t.Errorf("audit kinds %q and %q both map to %s", prev, k, v)
		}
		seen[v] = k
	}
	for _, v := range model.AllAuditEventKind {
		if _, ok := seen[v]; !ok && v != model.AuditEventKindOther {
			t.Errorf("AuditEventKind %s names no kind in audit.Kinds", v)
		}
	}
	if auditEventKind("user.created") != model.AuditEventKindUserCreated || auditEventKind("something.new") != model.AuditEventKindOther ||
		auditEventKind("other") != model.AuditEventKindOther {
		t.Error("auditEventKind maps by name, unknown kinds to OTHER")
	}
}

// The same for the emails of the outbox and NotificationKind.
func TestNotificationKindsMapToEnum(t *testing.T) {
	seen := map[model.NotificationKind]bool{}
	for _, k := range outbox.EmailKinds() {
		v := notificationKind(string(k))
		if v == model.NotificationKindOther {
			t.Errorf("email kind %q has no NotificationKind value (add it to graph/schema/kinds.graphqls)", k)
		}
		seen[v] = true
	}
	for _, v := range model.AllNotificationKind {
		if !seen[v] && v != model.NotificationKindOther {
			t.Errorf("NotificationKind %s names no kind in outbox.EmailKinds", v)
		}
	}
	if notificationKind("carrier_pigeon") != model.NotificationKindOther {
		t.Error("an unknown email kind is OTHER")
	}
}
