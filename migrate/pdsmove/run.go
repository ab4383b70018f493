package pdsmove

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/bluesky-social/indigo/xrpc"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/journal"
)

// Check is one preflight check.
type Check struct {
	OK       bool   `json:"ok"`
	Blocking bool   `json:"blocking,omitempty"`
	Detail   string `json:"detail"`
}

// Plan is what a move will do, as the preflight found it.
type Plan struct {
	DID       string   `json:"did"`
	Handle    string   `json:"handle"`
	OldPDS    string   `json:"old_pds"`
	NewPDS    string   `json:"new_pds"`
	NewPDSDID string   `json:"new_pds_did"`
	Checks    []Check  `json:"checks"`
	Steps     []string `json:"steps"`
	// Done lists the steps an earlier run finished.
	Done []string `json:"done,omitempty"`
	// Irreversible says what cannot be undone.
	Irreversible string `json:"irreversible"`
}

// Blocked reports whether a check stops the move.
func (p Plan) Blocked() bool { return len(p.Blockers()) > 0 }

// Blockers are the details of the blocking checks.
func (p Plan) Blockers() []string {
	var out []string
	for _, c := range p.Checks {
		if !c.OK && c.Blocking {
			out = append(out, c.Detail)
		}
	}
	return out
}

// Irreversible is what the README and the plan say cannot be undone.
const Irreversible = "Once the PLC operation is submitted (step 7), the account's identity points at the new PDS: " +
	"going back is another move (from the new PDS to the old), which needs the old PDS to accept the account again. " +
	"The old PDS keeps a deactivated copy of the repository until it is deleted there."

// newXRPC is an XRPC client of the new PDS, with token as its bearer token
// ("" for none).
func newXRPC(o *Options, base, token string) *xrpc.Client {
	x := &xrpc.Client{Client: o.HTTP, Host: base, UserAgent: &o.UserAgent}
	if token != "" {
		x.Auth = &xrpc.AuthInfo{AccessJwt: token}
	}
	return x
}

// target describes the new PDS.
type target struct {
	base, did  string
	domains    []string
	inviteOnly bool
}

func describeNew(ctx context.Context, o *Options) (target, error) {
	base, err := atproto.CheckPDS(o.NewPDS)
	if err != nil {
		return target{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := comatproto.ServerDescribeServer(ctx, newXRPC(o, base, ""))
	if err != nil {
		return target{}, atproto.Wrap("com.atproto.server.describeServer", err)
	}
	if out.Did == "" {
		return target{}, fmt.Errorf("%s answers describeServer without a DID: %w", base, atproto.ErrNotPDS)
	}
	t := target{base: base, did: out.Did, domains: out.AvailableUserDomains}
	if out.InviteCodeRequired != nil {
		t.inviteOnly = *out.InviteCodeRequired
	}
	return t, nil
}

func jobKey(did, newPDSDID string) string { return did + ">" + newPDSDID }

// Preflight checks the account and the new PDS and describes the move
// without changing anything.
func Preflight(ctx context.Context, o Options) (Plan, error) {
	o.defaults()
	sess, err := o.Old.GetSession(ctx)
	if err != nil {
		return Plan{}, fmt.Errorf("the old account: %w", err)
	}
	p := Plan{DID: sess.Did, Handle: sess.Handle, OldPDS: o.Old.PDS(), NewPDS: o.NewPDS, Steps: Steps(), Irreversible: Irreversible}
	if o.Handle != "" {
		p.Handle = o.Handle
	}
	add := func(ok, blocking bool, format string, args ...any) {
		p.Checks = append(p.Checks, Check{OK: ok, Blocking: blocking && !ok, Detail: fmt.Sprintf(format, args...)})
	}
	add(strings.HasPrefix(sess.Did, "did:plc:"), true, "the DID %s is a did:plc (a did:web moves by its owner editing did.json, which ferry cannot do)", sess.Did)
	if sess.Active != nil && !*sess.Active {
		add(false, false, "the account is not active on %s (status %v): a move already under way, or a suspended account", o.Old.PDS(), strOf(sess.Status))
	}
	t, err := describeNew(ctx, &o)
	if err != nil {
		add(false, true, "the new PDS %s does not answer as a PDS: %v", o.NewPDS, err)
		return p, nil
	}
	p.NewPDS, p.NewPDSDID = t.base, t.did
	add(true, true, "the new PDS %s answers (service DID %s)", t.base, t.did)
	if t.base == strings.TrimSuffix(o.Old.PDS(), "/") {
		add(false, true, "the new PDS is the account's current PDS")
	}
	add(!t.inviteOnly || o.InviteCode != "", true, "the new PDS requires an invite code: give --invite-code")
	if sess.Email == nil && o.Email == "" {
		add(false, true, "the old PDS did not give the account's email address (logged in with an app password?): give --email, and log in with the account's password")
	}
	hok, why := handleFits(p.Handle, t.domains, o.Old, ctx)
	add(hok, true, "the handle %s: %s", p.Handle, why)
	if o.Journal != nil {
		// An earlier run's steps; the plan itself writes nothing.
		if job, err := o.Journal.Job(ctx, JobKind, jobKey(p.DID, t.did)); err == nil {
			items, _ := o.Journal.Items(ctx, job.ID, journal.ItemFilter{})
			for _, it := range items {
				if it.Status == journal.ItemDone || it.Status == journal.ItemSkipped {
					p.Done = append(p.Done, it.Step)
				}
			}
		}
	}
	return p, nil
}

// handleFits says whether the new PDS can take handle: one under the new
// PDS's own domains, or a custom domain (which already resolves to the
// DID); a handle under the old PDS's own domains cannot follow.
func handleFits(handle string, domains []string, old *atproto.Client, ctx context.Context) (bool, string) {
	for _, d := range domains {
		if strings.HasSuffix(handle, d) {
			return true, "under the new PDS's domain " + d
		}
	}
	if od, err := old.DescribeServer(ctx); err == nil {
		for _, d := range od.AvailableUserDomains {
			if strings.HasSuffix(handle, d) {
				return false, fmt.Sprintf("it is under the old PDS's domain %s, which the new PDS does not serve (it offers %s): give --handle", d, strings.Join(domains, ", "))
			}
		}
	}
	return true, "a custom domain: it keeps resolving to the DID"
}

func strOf(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Result is what Run did.
type Result struct {
	DID    string   `json:"did"`
	JobID  int64    `json:"job_id"`
	NewPDS string   `json:"new_pds"`
	Done   []string `json:"done"`    // steps this run performed
	Before []string `json:"already"` // steps an earlier run performed
	Blobs  int      `json:"blobs_uploaded"`
	Notes  []string `json:"notes,omitempty"`
}

// runner is one run of a move.
type runner struct {
	o       Options
	t       target
	did     string
	handle  string
	email   string
	job     journal.Job
	newC    *atproto.Client
	pw      string
	res     *Result
	tookPwd bool
}

// Run performs the move, or continues it where an earlier run stopped.
// A step that fails stops the run with a *StepError saying where the
// account stands and what to run next.
func Run(ctx context.Context, o Options) (Result, error) {
	o.defaults()
	// The DID and handle are the stored session's: a run after the PLC
	// step must not need the old PDS until the step that does.
	did, handle := o.Old.DID(), o.Old.Session().Handle
	t, err := describeNew(ctx, &o)
	if err != nil {
		return Result{}, &StepError{Step: "start", Err: fmt.Errorf("the new PDS %s: %w", o.NewPDS, err),
			State: "as the last run left it (`ferry migrate status` lists the steps done)", Next: "check the address of the new PDS, then run `" + o.Command + "` again"}
	}
	r := &runner{o: o, t: t, did: did, handle: handle, email: o.Email, res: &Result{DID: did, NewPDS: t.base}}
	if o.Handle != "" {
		r.handle = o.Handle
	}
	job, created, err := o.Journal.CreateJob(ctx, journal.Job{Kind: JobKind, Key: jobKey(r.did, t.did), Account: r.did})
	if err != nil {
		return *r.res, fmt.Errorf("move %s: %w", r.did, err)
	}
	r.job = job
	r.res.JobID = job.ID
	if created || job.Status == journal.JobPlanning {
		var items []journal.Item
		for _, s := range Steps() {
			items = append(items, journal.Item{Step: s, Key: r.did, Status: journal.ItemPending})
		}
		if err := o.Journal.FreezePlan(ctx, job.ID, items); err != nil {
			return *r.res, fmt.Errorf("move %s: %w", r.did, err)
		}
	}
	items, err := o.Journal.Items(ctx, job.ID, journal.ItemFilter{})
	if err != nil {
		return *r.res, fmt.Errorf("move %s: %w", r.did, err)
	}
	for _, it := range items {
		if it.Status != journal.ItemPending {
			r.res.Before = append(r.res.Before, it.Step)
			continue
		}
		if err := ctx.Err(); err != nil {
			return *r.res, err
		}
		if err := r.step(ctx, it); err != nil {
			var se *StepError
			if !errors.As(err, &se) {
				se = &StepError{Step: it.Step, Err: err}
			}
			if se.State == "" {
				se.State = stateAt(it.Step, hostOf(o.Old.PDS()), hostOf(t.base))
			}
			if se.Next == "" {
				se.Next = "run `" + o.Command + "` again to continue; finished steps are not repeated"
			}
			return *r.res, se
		}
		r.res.Done = append(r.res.Done, it.Step)
	}
	if job.Status != journal.JobDone {
		if err := o.Journal.UpdateJob(ctx, job.ID, journal.JobDone, ""); err != nil {
			return *r.res, fmt.Errorf("move %s: %w", r.did, err)
		}
	}
	return *r.res, nil
}

// password asks for the new account's password once per run.
func (r *runner) password(ctx context.Context) (string, error) {
	if r.tookPwd {
		return r.pw, nil
	}
	if r.o.Password == nil {
		return "", errors.New("no password for the new account")
	}
	pw, err := r.o.Password(ctx)
	if err != nil {
		return "", err
	}
	r.pw, r.tookPwd = pw, true
	return pw, nil
}

// newClient logs in to the new PDS as the account (a deactivated account
// may log in).
func (r *runner) newClient(ctx context.Context) (*atproto.Client, error) {
	if r.newC != nil {
		return r.newC, nil
	}
	pw, err := r.password(ctx)
	if err != nil {
		return nil, err
	}
	c, err := atproto.Login(ctx, r.t.base, r.did, pw, atproto.Options{HTTPClient: r.o.HTTP, UserAgent: r.o.UserAgent, CallTimeout: 10 * time.Minute, AllowInactive: true})
	if err != nil {
		return nil, fmt.Errorf("log in to the new PDS %s: %w", hostOf(r.t.base), err)
	}
	r.newC = c
	return c, nil
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.o.Out, format+"\n", args...)
}

// step runs one pending item: begin, act (checking first when an earlier
// attempt may have acted), finish.
func (r *runner) step(ctx context.Context, it journal.Item) error {
	retry := it.Attempts > 0
	if retry {
		// A request of the killed attempt may still be on its way.
		if w := it.SettleWait(time.Now()); w > 0 {
			select {
			case <-time.After(w):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if it.Step == StepSignPLC {
		// The code is asked before the step begins: a run without one
		// stops here without counting an attempt.
		return r.signPLC(ctx, it)
	}
	if _, err := r.o.Journal.BeginItem(ctx, r.job.ID, it.Step, it.Key); err != nil {
		return err
	}
	remote, note, err := r.act(ctx, it, retry)
	if err != nil {
		return err
	}
	it.Status, it.RemoteID, it.Error = journal.ItemDone, remote, note
	if err := r.o.Journal.FinishItem(ctx, it); err != nil {
		return err
	}
	return nil
}

func (r *runner) act(ctx context.Context, it journal.Item, retry bool) (remote, note string, err error) {
	old := r.o.Old
	switch it.Step {
	case StepCreateAccount:
		return "", "", r.createAccount(ctx, retry)
	case StepImportRepo:
		return r.importRepo(ctx, retry)
	case StepBlobs:
		return r.blobs(ctx)
	case StepPreferences:
		return r.preferences(ctx)
	case StepRequestPLCCode:
		if err := comatproto.IdentityRequestPlcOperationSignature(ctx, old); err != nil {
			return "", "", atproto.Wrap("com.atproto.identity.requestPlcOperationSignature", err)
		}
		r.logf("requested the PLC code: %s emailed it to the account's address", hostOf(old.PDS()))
		return "", "", nil
	case StepSubmitPLC:
		return "", "", r.submitPLC(ctx, retry)
	case StepActivateNew:
		nc, err := r.newClient(ctx)
		if err != nil {
			return "", "", err
		}
		if retry {
			if st, err := comatproto.ServerCheckAccountStatus(ctx, nc); err == nil && st.Activated {
				r.logf("the account was already active on %s", hostOf(r.t.base))
				return "", "found active", nil
			}
		}
		if err := comatproto.ServerActivateAccount(ctx, nc); err != nil {
			return "", "", atproto.Wrap("com.atproto.server.activateAccount", err)
		}
		r.logf("activated the account on %s", hostOf(r.t.base))
		return "", "", nil
	case StepDeactivateOld:
		if err := comatproto.ServerDeactivateAccount(ctx, old, &comatproto.ServerDeactivateAccount_Input{}); err != nil {
			return "", "", &StepError{Step: it.Step, Err: fmt.Errorf("the old PDS %s: %w", hostOf(old.PDS()), atproto.Wrap("com.atproto.server.deactivateAccount", err)),
				Next: fmt.Sprintf("run `%s` again once %s answers, to deactivate the old copy; if that PDS is gone for good there is nothing left to do: the account works on %s",
					r.o.Command, hostOf(old.PDS()), hostOf(r.t.base))}
		}
		r.logf("deactivated the account on %s", hostOf(old.PDS()))
		return "", "", nil
	}
	return "", "", fmt.Errorf("unknown step %q", it.Step)
}

func (r *runner) createAccount(ctx context.Context, retry bool) error {
	if retry {
		if _, err := r.newClient(ctx); err == nil {
			r.logf("the account already exists on %s", hostOf(r.t.base))
			return nil
		}
	}
	auth, err := comatproto.ServerGetServiceAuth(ctx, r.o.Old, r.t.did, time.Now().Add(10*time.Minute).Unix(), "com.atproto.server.createAccount")
	if err != nil {
		return atproto.Wrap("com.atproto.server.getServiceAuth", err)
	}
	pw, err := r.password(ctx)
	if err != nil {
		return err
	}
	if r.email == "" {
		sess, err := r.o.Old.GetSession(ctx)
		if err != nil {
			return fmt.Errorf("the old account's email address: %w", err)
		}
		if sess.Email != nil {
			r.email = *sess.Email
		}
	}
	in := &comatproto.ServerCreateAccount_Input{Did: &r.did, Handle: r.handle, Password: &pw}
	if r.email != "" {
		in.Email = &r.email
	}
	if r.o.InviteCode != "" {
		in.InviteCode = &r.o.InviteCode
	}
	out, err := comatproto.ServerCreateAccount(ctx, newXRPC(&r.o, r.t.base, auth.Token), in)
	if err != nil {
		return &StepError{Step: StepCreateAccount,
			Err:  fmt.Errorf("the new PDS %s refused to create the account: %w", hostOf(r.t.base), atproto.Wrap("com.atproto.server.createAccount", err)),
			Next: "fix what the new PDS objects to (a handle it does not take: --handle; an invite code: --invite-code; the email: --email), then run `" + r.o.Command + "` again"}
	}
	if out.Did != r.did {
		return fmt.Errorf("the new PDS created %s, not %s", out.Did, r.did)
	}
	r.logf("created the account %s (%s) on %s, inactive", r.did, r.handle, hostOf(r.t.base))
	return nil
}

// repoStats is what the import step records of the old repository, for
// verify.
type repoStats struct {
	Rev     string `json:"rev"`
	Records int64  `json:"records"`
	Blobs   int64  `json:"blobs"`
	Bytes   int    `json:"car_bytes"`
}

func (r *runner) importRepo(ctx context.Context, retry bool) (string, string, error) {
	nc, err := r.newClient(ctx)
	if err != nil {
		return "", "", err
	}
	old := r.o.Old
	latest, err := comatproto.SyncGetLatestCommit(ctx, old, r.did)
	if err != nil {
		return "", "", atproto.Wrap("com.atproto.sync.getLatestCommit", err)
	}
	stats := repoStats{Rev: latest.Rev}
	if st, err := comatproto.ServerCheckAccountStatus(ctx, old); err == nil {
		stats.Records, stats.Blobs = st.IndexedRecords, st.ExpectedBlobs
	}
	if retry {
		if st, err := comatproto.ServerCheckAccountStatus(ctx, nc); err == nil && st.RepoRev == latest.Rev {
			r.logf("the repository was already imported on %s (revision %s)", hostOf(r.t.base), latest.Rev)
			b, _ := json.Marshal(stats)
			return string(b), "found imported", nil
		}
	}
	car, err := comatproto.SyncGetRepo(ctx, old, r.did, "")
	if err != nil {
		return "", "", atproto.Wrap("com.atproto.sync.getRepo", err)
	}
	stats.Bytes = len(car)
	if err := comatproto.RepoImportRepo(ctx, nc, bytes.NewReader(car)); err != nil {
		return "", "", atproto.Wrap("com.atproto.repo.importRepo", err)
	}
	r.logf("imported the repository (%d bytes, %d records) on %s", len(car), stats.Records, hostOf(r.t.base))
	b, _ := json.Marshal(stats)
	return string(b), "", nil
}

func (r *runner) blobs(ctx context.Context) (string, string, error) {
	nc, err := r.newClient(ctx)
	if err != nil {
		return "", "", err
	}
	n := 0
	for {
		// Always the first page: uploaded blobs leave the list.
		out, err := comatproto.RepoListMissingBlobs(ctx, nc, "", 500)
		if err != nil {
			return "", "", atproto.Wrap("com.atproto.repo.listMissingBlobs", err)
		}
		if len(out.Blobs) == 0 {
			break
		}
		progress := false
		for _, b := range out.Blobs {
			data, err := comatproto.SyncGetBlob(ctx, r.o.Old, b.Cid, r.did)
			if err != nil {
				return "", "", fmt.Errorf("blob %s of %s: %w", b.Cid, b.RecordUri, atproto.Wrap("com.atproto.sync.getBlob", err))
			}
			ref, err := nc.UploadBlob(ctx, data, http.DetectContentType(data))
			if err != nil {
				return "", "", fmt.Errorf("blob %s: %w", b.Cid, err)
			}
			if ref.Ref.String() != b.Cid {
				return "", "", fmt.Errorf("blob %s came back from the old PDS as %s", b.Cid, ref.Ref.String())
			}
			n++
			progress = true
		}
		if !progress {
			break
		}
	}
	r.res.Blobs += n
	r.logf("uploaded %d blobs to %s", n, hostOf(r.t.base))
	return fmt.Sprint(n), "", nil
}

func (r *runner) preferences(ctx context.Context) (string, string, error) {
	var prefs map[string]json.RawMessage
	if err := r.o.Old.LexDo(ctx, lexutil.Query, "", "app.bsky.actor.getPreferences", nil, nil, &prefs); err != nil {
		note := fmt.Sprintf("preferences not carried: the old PDS did not give them: %v", atproto.Wrap("app.bsky.actor.getPreferences", err))
		r.res.Notes = append(r.res.Notes, note)
		r.logf("%s", note)
		return "", note, nil
	}
	nc, err := r.newClient(ctx)
	if err != nil {
		return "", "", err
	}
	if prefs["preferences"] == nil {
		prefs = map[string]json.RawMessage{"preferences": json.RawMessage("[]")}
	}
	if err := nc.LexDo(ctx, lexutil.Procedure, "application/json", "app.bsky.actor.putPreferences", nil,
		map[string]json.RawMessage{"preferences": prefs["preferences"]}, nil); err != nil {
		return "", "", atproto.Wrap("app.bsky.actor.putPreferences", err)
	}
	r.logf("copied the preferences to %s", hostOf(r.t.base))
	return "", "", nil
}

// signPLC asks for the emailed code, has the old PDS sign the operation
// the new PDS recommends, and keeps it in the journal.
func (r *runner) signPLC(ctx context.Context, it journal.Item) error {
	if r.o.NewCode {
		if err := comatproto.IdentityRequestPlcOperationSignature(ctx, r.o.Old); err != nil {
			return atproto.Wrap("com.atproto.identity.requestPlcOperationSignature", err)
		}
		r.logf("requested a new PLC code: %s emailed it to the account's address", hostOf(r.o.Old.PDS()))
		r.o.NewCode = false
	}
	code, err := r.o.Code(ctx)
	if errors.Is(err, ErrNoCode) {
		return &StepError{Step: it.Step, Err: errors.New("the old PDS emailed a code to the account's address; ferry needs it to sign the PLC operation"),
			Next: "run `" + r.o.Command + " --plc-token-file FILE` with the code in FILE (or type it when asked; --new-code sends a new one)"}
	}
	if err != nil {
		return err
	}
	code = strings.TrimSpace(code)
	nc, err := r.newClient(ctx)
	if err != nil {
		return err
	}
	var creds map[string]json.RawMessage
	if err := nc.LexDo(ctx, lexutil.Query, "", "com.atproto.identity.getRecommendedDidCredentials", nil, nil, &creds); err != nil {
		return atproto.Wrap("com.atproto.identity.getRecommendedDidCredentials", err)
	}
	in := map[string]any{"token": code}
	for _, k := range []string{"rotationKeys", "alsoKnownAs", "verificationMethods", "services"} {
		if v, ok := creds[k]; ok {
			in[k] = v
		}
	}
	if _, err := r.o.Journal.BeginItem(ctx, r.job.ID, it.Step, it.Key); err != nil {
		return err
	}
	var out struct {
		Operation json.RawMessage `json:"operation"`
	}
	if err := r.o.Old.LexDo(ctx, lexutil.Procedure, "application/json", "com.atproto.identity.signPlcOperation", nil, in, &out); err != nil {
		werr := atproto.Wrap("com.atproto.identity.signPlcOperation", err)
		var ae *atproto.Error
		if errors.As(werr, &ae) && (ae.Name == "InvalidToken" || ae.Name == "ExpiredToken" || strings.Contains(strings.ToLower(ae.Message), "token")) {
			return &StepError{Step: it.Step, Err: fmt.Errorf("the old PDS did not accept the code: %w", werr),
				Next: "run `" + r.o.Command + "` again with the code from the latest email (--plc-token-file FILE, or typed); --new-code has a new one sent"}
		}
		return werr
	}
	if len(out.Operation) == 0 {
		return errors.New("signPlcOperation answered without an operation")
	}
	it.Status, it.RemoteID, it.Error = journal.ItemDone, string(out.Operation), ""
	if err := r.o.Journal.FinishItem(ctx, it); err != nil {
		return err
	}
	r.logf("the old PDS signed the PLC operation naming %s", hostOf(r.t.base))
	return nil
}

func (r *runner) submitPLC(ctx context.Context, retry bool) error {
	if retry {
		if ok, _ := r.didPointsAtNew(ctx); ok {
			r.logf("the DID document already names %s", hostOf(r.t.base))
			return nil
		}
	}
	signed, err := r.o.Journal.Item(ctx, r.job.ID, StepSignPLC, r.did)
	if err != nil {
		return err
	}
	if signed.RemoteID == "" {
		return errors.New("the journal has no signed PLC operation")
	}
	nc, err := r.newClient(ctx)
	if err != nil {
		return err
	}
	in := map[string]json.RawMessage{"operation": json.RawMessage(signed.RemoteID)}
	if err := nc.LexDo(ctx, lexutil.Procedure, "application/json", "com.atproto.identity.submitPlcOperation", nil, in, nil); err != nil {
		return atproto.Wrap("com.atproto.identity.submitPlcOperation", err)
	}
	r.logf("submitted the PLC operation: the DID document names %s", hostOf(r.t.base))
	return nil
}

// didPointsAtNew resolves the DID document and compares its PDS with the
// new one by service DID (the address may differ behind a proxy).
func (r *runner) didPointsAtNew(ctx context.Context) (bool, string) {
	return pointsAt(ctx, &r.o, r.did, r.t.did)
}

func pointsAt(ctx context.Context, o *Options, did, newDID string) (bool, string) {
	id, err := atproto.Resolver{PLCURL: o.PLCURL, HTTPClient: o.HTTP}.Resolve(ctx, did)
	if err != nil {
		return false, ""
	}
	info, err := atproto.Describe(ctx, id.PDS, atproto.Options{HTTPClient: o.HTTP, UserAgent: o.UserAgent})
	if err != nil {
		return false, id.PDS
	}
	return info.DID == newDID, id.PDS
}
