// Package policy is the one place that decides what a user may do in their
// account: Enforcer.May answers for GraphQL and SFTP alike.
//
// The decision is Casbin's, with the embedded model in model.conf (RBAC with
// domains; the domain is the account ID), but for single project folders:
// an account's shares, most of its policy, are kept as sets of rights by
// subject and folder rather than as Casbin lines (see rules), and a folder
// decision is the model's answer worked out from them (snapshot.folderRights). The policy is not written by Casbin:
// it is derived from the tenant tables it describes (users' roles and groups,
// groups' permissions, project folder shares), which keep their foreign keys,
// checks and row-level security and change in the same transaction as their
// audit record. Casbin's adapters (a casbin_rule table written through
// Casbin) would give up all of that, so this package has a small read-only
// loader of its own instead (store.go).
//
// Each account gets its own synced enforcer, loaded on first use: Casbin
// scans every policy line on each decision, so one enforcer per account keeps
// a decision's cost to that account's lines. Triggers on those tables notify
// PostgreSQL channel "skiff_policy" with the account ID at commit; Listen
// forwards the notifications, and the next decision for that account reads
// its policy again. Without a notification connection the enforcer reads an
// account again when its copy is older than Options.MaxAge (a second).
package policy

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/google/uuid"
	"github.com/skiffhq/skiff/tenant"
)

//go:embed model.conf
var modelText string

// Channel is the PostgreSQL notification channel the policy's tables notify.
const Channel = "skiff_policy"

// Defaults of Options.
const (
	DefaultMaxAge          = time.Second
	DefaultListeningMaxAge = 10 * time.Minute
)

const (
	// unknownUserReload: a decision about a user the loaded policy does not
	// know (most likely created a moment ago, before the notification came)
	// reads the account again, but not more often than this.
	unknownUserReload = 50 * time.Millisecond
	// idleAfter: accounts nobody asked about for this long are dropped from
	// memory, checked at most every sweepEvery.
	idleAfter  = 30 * time.Minute
	sweepEvery = time.Minute
)

// Options tune an Enforcer; the zero value gives the defaults.
type Options struct {
	// MaxAge is how long an account's policy is trusted while nothing can
	// tell the enforcer that it changed: before Listen connects, and while
	// its connection is down. DefaultMaxAge when zero.
	MaxAge time.Duration
	// ListeningMaxAge bounds the same while Listen is connected, as a safety
	// net: notifications make it matter only if one is lost.
	// DefaultListeningMaxAge when zero.
	ListeningMaxAge time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger receives connection changes of Listen; slog.Default when nil.
	Logger *slog.Logger
}

// Enforcer answers permission questions for every account of the
// deployment. It is safe for concurrent use.
type Enforcer struct {
	db        *tenant.DB
	model     model.Model
	opts      Options
	log       *slog.Logger
	listening atomic.Bool
	loads     atomic.Int64 // accounts read, for tests

	mu        sync.Mutex
	accounts  map[string]*account
	lastSweep time.Time

	// changed are told of every invalidation (OnChange); copy on write.
	changed atomic.Pointer[[]func(accountID string)]
}

// account is one account's loaded policy.
type account struct {
	load sync.Mutex    // one load at a time
	gen  atomic.Uint64 // bumped by every invalidation
	snap atomic.Pointer[snapshot]
	used atomic.Int64 // UnixNano of the last decision, for the idle sweep
}

// snapshot is an account's policy as read at one moment. It is never changed
// after it is built; a newer one replaces it.
type snapshot struct {
	ce      *casbin.SyncedEnforcer
	users   map[string]bool
	folders map[string]bool // live project folders, by ID
	// The rules by subject: p lines, the roles of g lines, and the rights
	// granted by folder shares, by folder ID.
	lines  map[string][][]string
	roles  map[string][]string
	shares map[string]map[string]rightSet
	gen    uint64 // the account's gen when the read started
	at     time.Time
}

// New returns an enforcer that reads policies through db, which must reach
// Skiff's migrated database as a role that may become skiff_app. It reads
// nothing yet: each account is read on its first decision.
func New(db *tenant.DB, opts Options) (*Enforcer, error) {
	if db == nil {
		return nil, errors.New("policy: no database")
	}
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, fmt.Errorf("policy: model: %w", err)
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.ListeningMaxAge <= 0 {
		opts.ListeningMaxAge = DefaultListeningMaxAge
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Enforcer{db: db, model: m, opts: opts, log: log, accounts: map[string]*account{}}, nil
}

// May reports whether the user may do action on object in the account:
// May(ctx, userID, accountID, AccountObject, string(SFTPMyFiles)),
// May(ctx, userID, accountID, FolderObject(id), string(Download)),
// May(ctx, userID, accountID, GroupsObject, ManageGroups). A user of another
// account, a deleted user and malformed IDs may do nothing. An error means
// the policy could not be read; callers must then refuse.
func (e *Enforcer) May(ctx context.Context, userID, accountID, object, action string) (bool, error) {
	if !isUUID(userID) || !isUUID(accountID) || !validObject(object) {
		return false, nil
	}
	s, err := e.current(ctx, accountID, userID)
	if err != nil {
		return false, err
	}
	if id, ok := folderID(object); ok {
		return s.folderRights(userID, id)&bitOf(Right(action)) != 0, nil
	}
	ok, err := s.ce.Enforce(userPrefix+userID, accountID, object, action)
	if err != nil {
		return false, fmt.Errorf("policy: enforce: %w", err)
	}
	return ok, nil
}

// FolderRights returns the project folders shared with the user, directly or
// through their group, and the user's rights in each (in the order of
// Rights), by folder ID. Folders an owner or administrator may only manage
// through their role are not in it: they were not shared with them.
//
// It reads the user's lines once instead of asking May for every folder and
// right, since Casbin scans the account's lines on each decision; the result
// is May's (role rules on "folders" apply to every listed folder, as g2
// makes them), which TestFolderRightsAgreeWithMay checks.
func (e *Enforcer) FolderRights(ctx context.Context, userID, accountID string) (map[string][]Right, error) {
	if !isUUID(userID) || !isUUID(accountID) {
		return map[string][]Right{}, nil
	}
	g, err := e.grants(ctx, userID, accountID)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]Right, len(g.folders))
	for id := range g.folders {
		out[id] = g.in(id, true)
	}
	return out, nil
}

// RightsIn returns the user's rights in one project folder, in the order of
// Rights; none if the folder is not theirs to see.
func (e *Enforcer) RightsIn(ctx context.Context, userID, accountID, folderID string) ([]Right, error) {
	if !isUUID(userID) || !isUUID(accountID) || !isUUID(folderID) {
		return nil, nil
	}
	s, err := e.current(ctx, accountID, userID)
	if err != nil {
		return nil, err
	}
	return rightLists[s.folderRights(userID, folderID)], nil
}

// RightsInFolders is RightsIn for many folders at once, by folder ID (a
// folder the user has no right in maps to none): a page of folders asks the
// policy once, not eight decisions per folder, each scanning the account's
// lines. TestRightsInFoldersAgreeWithRightsIn checks it answers as RightsIn.
func (e *Enforcer) RightsInFolders(ctx context.Context, userID, accountID string, folderIDs []string) (map[string][]Right, error) {
	out := make(map[string][]Right, len(folderIDs))
	if !isUUID(userID) || !isUUID(accountID) {
		return out, nil
	}
	g, err := e.grants(ctx, userID, accountID)
	if err != nil {
		return nil, err
	}
	for _, id := range folderIDs {
		if isUUID(id) {
			out[id] = g.in(id, g.live[id])
		}
	}
	return out, nil
}

// grants is what a user's lines in one snapshot grant on folders, as sets
// of rights (bit i is Rights()[i]).
type grants struct {
	folders    map[string]rightSet // granted on one folder, by folder ID
	everywhere rightSet            // granted on "folders": every live folder
	live       map[string]bool     // the account's live folders (g2)
}

// rightSet is a set of rights: bit i is allRights[i].
type rightSet uint16

var allRights = Rights()

func bitOf(r Right) rightSet {
	for i, x := range allRights {
		if x == r {
			return 1 << i
		}
	}
	return 0
}

// rightLists holds every set of rights as a list in the order of Rights,
// for grants.in to hand out instead of building one per folder (a page of
// 200 users' shared folders asked for a thousand). Each list's capacity is
// its length, so appending to one copies it; nobody changes one in place.
var rightLists = func() [][]Right {
	lists := make([][]Right, 1<<len(allRights))
	for set := range lists {
		for i, r := range allRights {
			if set&(1<<i) != 0 {
				lists[set] = append(lists[set], r)
			}
		}
		lists[set] = slices.Clip(lists[set])
	}
	return lists
}()

// in returns the rights granted in one folder, in the order of Rights; live
// says whether the role rules on "folders" reach it.
func (g *grants) in(folderID string, live bool) []Right {
	set := g.folders[folderID]
	if live {
		set |= g.everywhere
	}
	return rightLists[set] // nil when none
}

// grants collects what the user holds on folders, directly or through their
// group and role, from the account's current policy: Casbin's implicit
// permissions, read from the snapshot's indexes by subject instead of a
// scan of every line of the account (which is what makes a page of users'
// shared folders cost the same per user in an account of a thousand
// folders as in one of ten).
func (e *Enforcer) grants(ctx context.Context, userID, accountID string) (*grants, error) {
	s, err := e.current(ctx, accountID, userID)
	if err != nil {
		return nil, err
	}
	g := &grants{folders: map[string]rightSet{}, live: s.folders}
	for _, sub := range s.subjects(userID) {
		for id, set := range s.shares[sub] {
			g.folders[id] |= set
		}
		g.everywhere |= s.everywhere(sub)
	}
	return g, nil
}

// subjects returns the user's subject and their roles, transitively as the
// model's g is (within the account: every g line of a snapshot is in its
// account's domain).
func (s *snapshot) subjects(userID string) []string {
	subjects := []string{userPrefix + userID}
	for i := 0; i < len(subjects); i++ {
		for _, role := range s.roles[subjects[i]] {
			if !slices.Contains(subjects, role) {
				subjects = append(subjects, role)
			}
		}
	}
	return subjects
}

// everywhere returns the rights the subject's own lines grant on
// "folders", which g2 extends to every live folder.
func (s *snapshot) everywhere(sub string) rightSet {
	var set rightSet
	for _, l := range s.lines[sub] {
		if l[2] == FoldersObject {
			set |= bitOf(Right(l[3]))
		}
	}
	return set
}

// folderRights is what the model answers for the user on one folder: the
// rights the shares of the folder grant the user or one of their roles, and
// if the folder is live, what those grant on "folders". (Only live folders'
// shares are read: a deleted folder grants nothing.)
func (s *snapshot) folderRights(userID, folderID string) rightSet {
	var set rightSet
	for _, sub := range s.subjects(userID) {
		set |= s.shares[sub][folderID]
		if s.folders[folderID] {
			set |= s.everywhere(sub)
		}
	}
	return set
}

// Listening reports whether Listen is connected, so that changes from other
// nodes arrive within moments rather than within Options.MaxAge.
func (e *Enforcer) Listening() bool { return e.listening.Load() }

// Invalidate makes the next decision about the account read its policy
// again. Services call it after committing a change, so the node that made
// the change sees it at once; Listen calls it for every other node.
func (e *Enforcer) Invalidate(accountID string) {
	e.mu.Lock()
	a := e.accounts[accountID]
	e.mu.Unlock()
	if a != nil {
		a.gen.Add(1)
	}
	e.tell(accountID)
}

// InvalidateAll makes every account's next decision read its policy again.
func (e *Enforcer) InvalidateAll() {
	e.mu.Lock()
	for _, a := range e.accounts {
		a.gen.Add(1)
	}
	e.mu.Unlock()
	e.tell("")
}

// OnChange has f told of every change to an account's policy that the
// enforcer learns of (Invalidate: a service's commit on this node, or a
// notification from any node), with the account's ID, or "" when every
// account may have changed (InvalidateAll: notifications may have been
// missed). f runs after the enforcer dropped its copy, so what f's callers
// ask the enforcer next reads the new policy: copies of what the policy
// grants, such as SFTP sessions' shared folders, are dropped by f. f runs
// on the caller's goroutine (Listen's for notifications) and must not
// block.
func (e *Enforcer) OnChange(f func(accountID string)) {
	for {
		old := e.changed.Load()
		var fs []func(string)
		if old != nil {
			fs = append(fs, *old...)
		}
		fs = append(fs, f)
		if e.changed.CompareAndSwap(old, &fs) {
			return
		}
	}
}

func (e *Enforcer) tell(accountID string) {
	if fs := e.changed.Load(); fs != nil {
		for _, f := range *fs {
			f(accountID)
		}
	}
}

// current returns the account's policy, reading it first if it is missing,
// invalidated, too old, or does not know userID yet.
func (e *Enforcer) current(ctx context.Context, accountID, userID string) (*snapshot, error) {
	a := e.account(accountID)
	a.used.Store(e.opts.Now().UnixNano())
	if s := a.snap.Load(); e.usable(a, s, userID) {
		return s, nil
	}
	a.load.Lock()
	defer a.load.Unlock()
	if s := a.snap.Load(); e.usable(a, s, userID) {
		return s, nil // read by another decision while this one waited
	}
	// Taken before reading: an invalidation that races with the read leaves
	// this snapshot already stale, so the change is never missed.
	gen := a.gen.Load()
	e.loads.Add(1)
	r, err := loadRules(ctx, e.db, accountID)
	if err != nil {
		return nil, err
	}
	ce, err := e.build(r)
	if err != nil {
		return nil, err
	}
	s := &snapshot{ce: ce, users: r.users, folders: r.folders, gen: gen, at: e.opts.Now(),
		lines: map[string][][]string{}, roles: map[string][]string{}, shares: r.shares}
	for _, l := range r.p {
		s.lines[l[0]] = append(s.lines[l[0]], l)
	}
	for _, l := range r.g {
		s.roles[l[0]] = append(s.roles[l[0]], l[1])
	}
	a.snap.Store(s)
	return s, nil
}

func (e *Enforcer) usable(a *account, s *snapshot, userID string) bool {
	if s == nil || s.gen != a.gen.Load() {
		return false
	}
	maxAge := e.opts.MaxAge
	if e.listening.Load() {
		maxAge = e.opts.ListeningMaxAge
	}
	age := e.opts.Now().Sub(s.at)
	if age >= maxAge || age < 0 {
		return false
	}
	return s.users[userID] || age < unknownUserReload
}

// build makes a synced enforcer holding one account's rules.
func (e *Enforcer) build(r *rules) (*casbin.SyncedEnforcer, error) {
	ce, err := casbin.NewSyncedEnforcer(e.model.Copy())
	if err != nil {
		return nil, fmt.Errorf("policy: enforcer: %w", err)
	}
	if len(r.p) > 0 {
		if _, err := ce.AddPoliciesEx(r.p); err != nil {
			return nil, fmt.Errorf("policy: add rules: %w", err)
		}
	}
	if len(r.g) > 0 {
		if _, err := ce.AddGroupingPoliciesEx(r.g); err != nil {
			return nil, fmt.Errorf("policy: add memberships: %w", err)
		}
	}
	// No g2 lines: Casbin is not asked about single folders, and g2 links
	// nothing else.
	return ce, nil
}

// account returns the account's entry, creating it, and now and then drops
// the entries of accounts nobody asked about for a long time.
func (e *Enforcer) account(accountID string) *account {
	now := e.opts.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if now.Sub(e.lastSweep) >= sweepEvery {
		e.lastSweep = now
		cutoff := now.Add(-idleAfter).UnixNano()
		for id, a := range e.accounts {
			if a.used.Load() < cutoff {
				delete(e.accounts, id)
			}
		}
	}
	a := e.accounts[accountID]
	if a == nil {
		a = &account{}
		e.accounts[accountID] = a
	}
	return a
}

// loadedAccounts lists the accounts held in memory, for tests.
func (e *Enforcer) loadedAccounts() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for id := range e.accounts {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// validObject accepts the objects callers may ask about, not subjects or
// anything else a caller might pass by mistake.
func validObject(object string) bool {
	if id, ok := folderID(object); ok {
		return isUUID(id)
	}
	return object == AccountObject || object == GroupsObject || object == FoldersObject
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}
