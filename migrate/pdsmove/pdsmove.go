// Package pdsmove moves a Bluesky account (an AT Protocol identity) from
// one PDS to another, keeping its DID: what Bluesky's own low-level tool
// (goat account migrate) does, as one journaled command.
//
// The steps, each a journal item (package journal), in order:
//
//  1. create-account: a service-auth token from the old PDS
//     (com.atproto.server.getServiceAuth, aud = the new PDS's DID,
//     lxm = com.atproto.server.createAccount) lets the new PDS create an
//     account with the same DID (createAccount with did); it starts
//     deactivated.
//  2. import-repo: the repository as a CAR file (com.atproto.sync.getRepo)
//     into the new PDS (com.atproto.repo.importRepo).
//  3. blobs: every blob the new PDS lists as missing
//     (com.atproto.repo.listMissingBlobs) fetched from the old one
//     (sync.getBlob) and uploaded (repo.uploadBlob).
//  4. preferences: app.bsky.actor.getPreferences → putPreferences.
//  5. request-plc-code: the old PDS emails a code to the account's address
//     (identity.requestPlcOperationSignature).
//  6. sign-plc: with that code, the old PDS signs a PLC operation naming the
//     new PDS's keys and endpoint (identity.getRecommendedDidCredentials on
//     the new PDS, identity.signPlcOperation on the old).
//  7. submit-plc: the new PDS submits it to the PLC directory
//     (identity.submitPlcOperation). From here the account's identity
//     points at the new PDS.
//  8. activate-new: server.activateAccount on the new PDS.
//  9. deactivate-old: server.deactivateAccount on the old PDS.
//
// A step is begun in the journal before it acts and finished after; a step
// found begun but not finished after a crash checks the servers before
// acting again (the account exists on the new PDS; the new repository is
// at the old one's revision; the DID document names the new PDS; the new
// account is active), so a kill at any point resumes without doing a done
// step twice. The signed PLC operation is kept in the journal between
// signing and submitting.
package pdsmove

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/journal"
)

// JobKind is the journal kind of PDS moves.
const JobKind = "pds-move"

// The steps, in order.
const (
	StepCreateAccount  = "create-account"
	StepImportRepo     = "import-repo"
	StepBlobs          = "blobs"
	StepPreferences    = "preferences"
	StepRequestPLCCode = "request-plc-code"
	StepSignPLC        = "sign-plc"
	StepSubmitPLC      = "submit-plc"
	StepActivateNew    = "activate-new"
	StepDeactivateOld  = "deactivate-old"
)

// Steps lists the steps in the order they run.
func Steps() []string {
	return []string{StepCreateAccount, StepImportRepo, StepBlobs, StepPreferences, StepRequestPLCCode,
		StepSignPLC, StepSubmitPLC, StepActivateNew, StepDeactivateOld}
}

// Journal is what a move keeps in ferry's journal (state.Store implements
// it).
type Journal interface {
	CreateJob(ctx context.Context, j journal.Job) (journal.Job, bool, error)
	// Job returns the job (kind, key), or an error wrapping
	// journal.ErrNotFound.
	Job(ctx context.Context, kind, key string) (journal.Job, error)
	UpdateJob(ctx context.Context, id int64, status, params string) error
	FreezePlan(ctx context.Context, jobID int64, items []journal.Item) error
	Items(ctx context.Context, jobID int64, f journal.ItemFilter) ([]journal.Item, error)
	Item(ctx context.Context, jobID int64, step, key string) (journal.Item, error)
	BeginItem(ctx context.Context, jobID int64, step, key string) (int, error)
	FinishItem(ctx context.Context, it journal.Item) error
}

// ErrNoCode is returned by Options.Code when no code can be had (no
// terminal, no file, nothing on standard input).
var ErrNoCode = errors.New("no PLC code given")

// Options describe one move.
type Options struct {
	// Old is the account's client on its current PDS, logged in with the
	// account's password (an app password cannot sign PLC operations).
	Old *atproto.Client
	// NewPDS is the new PDS's base URL (https, or http on loopback).
	NewPDS string
	// Handle is the handle on the new PDS; "" keeps the current one.
	Handle string
	// Email is the new account's email address; "" uses the old one's.
	Email string
	// InviteCode is for a new PDS that requires one.
	InviteCode string
	// Password returns the new account's password (a file,
	// FERRY_PASSWORD or a prompt); it is asked once per run.
	Password func(ctx context.Context) (string, error)
	// Code returns the code the old PDS emailed for the PLC operation
	// (a file, the terminal, or standard input); ErrNoCode when there is
	// none to read.
	Code func(ctx context.Context) (string, error)
	// NewCode asks the old PDS to email a new code although one was
	// requested before (the first expired or was lost).
	NewCode bool
	// Journal keeps the steps.
	Journal Journal
	// HTTP carries the calls to the new PDS and the PLC directory; nil
	// means http.DefaultClient.
	HTTP *http.Client
	// UserAgent is sent to the new PDS.
	UserAgent string
	// PLCURL is the PLC directory ("" is atproto.DefaultPLCURL).
	PLCURL string
	// Command is the command line that continues the move, for messages.
	Command string
	// Out receives one line per step; nil discards.
	Out io.Writer
	Log *slog.Logger
}

func (o *Options) defaults() {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.HTTP == nil {
		o.HTTP = http.DefaultClient
	}
	if o.Command == "" {
		o.Command = "ferry migrate run"
	}
}

// StepError is a step that failed: what happened, where the account
// stands, and what to run next.
type StepError struct {
	Step  string
	Err   error
	State string
	Next  string
}

func (e *StepError) Error() string {
	return fmt.Sprintf("step %s: %v\n  the account: %s\n  next: %s", e.Step, e.Err, e.State, e.Next)
}
func (e *StepError) Unwrap() error { return e.Err }

// stateAt says where the account stands when step has not completed.
func stateAt(step, oldPDS, newPDS string) string {
	switch step {
	case "", StepCreateAccount:
		return fmt.Sprintf("nothing has changed: it lives on %s and is active there", oldPDS)
	case StepImportRepo, StepBlobs, StepPreferences, StepRequestPLCCode, StepSignPLC, StepSubmitPLC:
		return fmt.Sprintf("it still lives on %s and is active there; %s holds an inactive copy that nobody sees (the DID document has not changed)", oldPDS, newPDS)
	case StepActivateNew:
		return fmt.Sprintf("its DID document names %s now (the identity has moved), but %s has not activated it yet", newPDS, newPDS)
	case StepDeactivateOld:
		return fmt.Sprintf("it lives on %s and is active there; %s still holds an active copy (not deactivated yet)", newPDS, oldPDS)
	}
	return "unknown"
}

// hostOf is a URL's host, for messages.
func hostOf(u string) string {
	u = strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
	return strings.TrimSuffix(u, "/")
}
