package graph_test

import (
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The module from an owner's and support's point of view, through GraphQL:
// trial, SFTP for users, the licence limit under concurrency, activation.
func TestSftpModuleThroughGraphQL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	accountID, owner := e.account("Acme", "owner@acme.example")
	_, admin := e.user(owner, "admin@acme.example", "ADMIN")
	staff := e.staff("support@skiff.example")

	// Before a trial, SFTP cannot be turned on.
	userID, _ := e.user(owner, "u0@acme.example", "USER")
	var sa struct {
		SetSftpAccess struct {
			User       *struct{ ID string }
			UserErrors []userError
		}
	}
	setAccess := `mutation($u: ID!, $on: Boolean!) { setSftpAccess(input: {userId: $u, enabled: $on}) { user { id } userErrors { field code message } } }`
	e.mustDo(owner, setAccess, vars{"u": userID, "on": true}, &sa)
	if sa.SetSftpAccess.User != nil || len(sa.SetSftpAccess.UserErrors) != 1 {
		t.Fatalf("enabling without a module: %+v", sa)
	}

	// Only the owner starts the trial, once.
	e.mustFail(admin, `mutation { startSftpTrial { account { id } } }`, nil, "FORBIDDEN")
	var trial struct {
		StartSftpTrial struct {
			Account struct {
				SftpModule   struct{ Status string }
				SftpLicences struct{ Purchased, Used, Available int }
			}
		}
	}
	e.mustDo(owner, `mutation { startSftpTrial { account { sftpModule { status } sftpLicences { purchased used available } } userErrors { message } } }`, nil, &trial)
	// The owner who started it took one licence for their own SFTP.
	if l := trial.StartSftpTrial.Account.SftpLicences; trial.StartSftpTrial.Account.SftpModule.Status != "TRIAL" || l.Purchased != 5 || l.Used != 1 || l.Available != 4 {
		t.Fatalf("trial: %+v", trial)
	}
	var again struct {
		StartSftpTrial struct{ UserErrors []userError }
	}
	e.mustDo(owner, `mutation { startSftpTrial { userErrors { code message } } }`, nil, &again)
	if len(again.StartSftpTrial.UserErrors) != 1 {
		t.Fatalf("second trial: %+v", again)
	}

	// Three users take three licences (the fifth is the owner's); the owner sees the credentials.
	for i := 1; i <= 3; i++ {
		id, _ := e.user(owner, "u"+string(rune('0'+i))+"@acme.example", "USER")
		e.mustDo(owner, setAccess, vars{"u": id, "on": true}, nil)
	}
	var creds struct {
		Node struct {
			Sftp struct {
				Enabled     bool
				Credentials struct {
					Login               string
					HostKeyFingerprints []struct{ Fingerprint string }
				}
			}
		}
	}
	e.mustDo(owner, `mutation($u: ID!) { setSftpAccess(input: {userId: $u, enabled: false}) { userErrors { message } } }`, vars{"u": userID}, nil)

	// One licence left, twenty users racing for it: exactly one wins.
	var racers []string
	for i := range 20 {
		id, _ := e.user(owner, "racer"+strconv.Itoa(i)+"@acme.example", "USER")
		racers = append(racers, id)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, refused := 0, 0
	for _, id := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out struct {
				SetSftpAccess struct {
					User       *struct{ ID string }
					UserErrors []userError
				}
			}
			r := e.do(owner, setAccess, vars{"u": id, "on": true})
			if len(r.Errors) > 0 {
				t.Errorf("racer: %+v", r.Errors)
				return
			}
			if err := jsonUnmarshal(r.Data, &out); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case out.SetSftpAccess.User != nil:
				won++
			case len(out.SetSftpAccess.UserErrors) == 1 && out.SetSftpAccess.UserErrors[0].Code == "LIMIT" &&
				strings.Contains(out.SetSftpAccess.UserErrors[0].Message, "5 of 5"):
				refused++
			default:
				t.Errorf("racer got %+v", out)
			}
		}()
	}
	wg.Wait()
	if won != 1 || refused != 19 {
		t.Fatalf("licence race: %d won, %d refused; want 1 and 19", won, refused)
	}

	// The winner sees their own credentials; another user does not.
	var winner string
	var lic struct {
		Account struct {
			SftpLicences struct{ Purchased, Used, Available int }
			Users        struct {
				Edges []struct {
					Node struct {
						ID   string
						Sftp struct{ Enabled bool }
					}
				}
			}
		}
	}
	e.mustDo(owner, `{ account { sftpLicences { purchased used available } users(first: 100) { edges { node { id sftp { enabled } } } } } }`, nil, &lic)
	if l := lic.Account.SftpLicences; l.Purchased != 5 || l.Used != 5 || l.Available != 0 {
		t.Fatalf("licences after the race: %+v", l)
	}
	for _, ed := range lic.Account.Users.Edges {
		for _, r := range racers {
			if ed.Node.ID == r && ed.Node.Sftp.Enabled {
				winner = r
			}
		}
	}
	e.mustDo(owner, `query($id: ID!) { node(id: $id) { ... on User { sftp { enabled credentials { login hostKeyFingerprints { fingerprint } } } } } }`, vars{"id": winner}, &creds)
	if !creds.Node.Sftp.Enabled || creds.Node.Sftp.Credentials.Login == "" || len(creds.Node.Sftp.Credentials.HostKeyFingerprints) != 3 {
		t.Fatalf("winner's credentials: %+v", creds)
	}

	// Support: owners cannot activate; staff can, and can lower licences with a warning.
	activate := `mutation($a: ID!, $n: Int!) { activateSftpModule(input: {accountId: $a, licences: $n}) { account { sftpModule { status } } licences { purchased used available } warning userErrors { message } } }`
	e.mustFail(owner, activate, vars{"a": globalID("Account", accountID), "n": 10}, "FORBIDDEN")
	e.mustFail(staff, activate, vars{"a": globalID("Account", "6b1d2f0e-0000-4000-8000-000000000000"), "n": 10}, "NOT_FOUND")
	var act struct {
		ActivateSftpModule struct {
			Account  struct{ SftpModule struct{ Status string } }
			Licences struct{ Purchased, Used, Available int }
		}
	}
	e.mustDo(staff, activate, vars{"a": globalID("Account", accountID), "n": 10}, &act)
	if act.ActivateSftpModule.Account.SftpModule.Status != "ACTIVE" || act.ActivateSftpModule.Licences.Available != 5 {
		t.Fatalf("activate: %+v", act)
	}
	var lower struct {
		SetSftpLicences struct {
			Warning  *string
			Licences struct{ Purchased, Used, Available int }
		}
	}
	e.mustDo(staff, `mutation($a: ID!) { setSftpLicences(input: {accountId: $a, licences: 3}) { warning licences { purchased used available } } }`,
		vars{"a": globalID("Account", accountID)}, &lower)
	if lower.SetSftpLicences.Warning == nil || lower.SetSftpLicences.Licences.Available != 0 {
		t.Fatalf("lowering below use: %+v", lower)
	}
	e.mustDo(owner, setAccess, vars{"u": userID, "on": true}, &sa)
	if sa.SetSftpAccess.User != nil || len(sa.SetSftpAccess.UserErrors) != 1 || sa.SetSftpAccess.UserErrors[0].Code != "LIMIT" {
		t.Fatalf("enabling over the lowered licences: %+v", sa)
	}

	// The emails went out in the same transactions: the admins can see them.
	var notes struct {
		Account struct {
			Notifications struct {
				Edges []struct {
					Node struct{ Kind, Recipient string }
				}
			}
		}
	}
	e.mustDo(admin, `{ account { notifications(first: 200) { edges { node { kind: kindName recipient } } } } }`, nil, &notes)
	kinds := map[string]int{}
	for _, ed := range notes.Account.Notifications.Edges {
		kinds[ed.Node.Kind]++
	}
	// Four sftp_enabled: the owner's credentials came in module_trial_started.
	if kinds["sftp_enabled"] != 4 || kinds["module_trial_started"] != 1 || kinds["module_activated"] != 1 {
		t.Fatalf("emails: %v", kinds)
	}
	// And the audit trail has every change.
	var audit struct {
		Account struct {
			AuditEvents struct {
				Edges []struct {
					Node struct{ Kind, ActorKind string }
				}
			}
		}
	}
	e.mustDo(owner, `{ account { auditEvents(filter: {kinds: ["sftp_module.*"]}) { edges { node { kind: kindName actorKind } } } } }`, nil, &audit)
	if len(audit.Account.AuditEvents.Edges) != 3 || audit.Account.AuditEvents.Edges[0].Node.ActorKind != "STAFF" {
		t.Fatalf("module audit trail: %+v", audit)
	}
}
