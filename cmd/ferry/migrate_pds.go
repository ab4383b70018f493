package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/fedi-ferry/ferry/journal"
	"github.com/fedi-ferry/ferry/migrate/move"
	"github.com/fedi-ferry/ferry/migrate/pdsmove"
	"github.com/fedi-ferry/ferry/state"
)

// pdsMoveOptions are the flags of a move of a Bluesky account to another
// PDS (`ferry migrate … --to https://new-pds`).
type pdsMoveOptions struct {
	PLCTokenFile string
	NewCode      bool
	Handle       string
	Email        string
	InviteCode   string
}

// pdsMoveFlags are the flags only a PDS move reads.
func pdsMoveFlags(o *pdsMoveOptions, run bool) []cli.Flag {
	fl := []cli.Flag{
		&cli.StringFlag{Name: "handle", Usage: "Bluesky move: the handle on the new PDS (default: the current one)", Destination: &o.Handle},
		&cli.StringFlag{Name: "invite-code", Usage: "Bluesky move: the new PDS's invite code, if it asks for one", Destination: &o.InviteCode},
	}
	if run {
		fl = append(fl,
			&cli.StringFlag{Name: "plc-token-file", Usage: "Bluesky move: read the code the old PDS emailed from `FILE` (else asked on the terminal, or read from standard input)", Destination: &o.PLCTokenFile},
			&cli.BoolFlag{Name: "new-code", Usage: "Bluesky move: have the old PDS email a new code", Destination: &o.NewCode},
			&cli.StringFlag{Name: "email", Usage: "Bluesky move: the new account's email address (default: the current one)", Destination: &o.Email},
		)
	}
	return fl
}

// isPDSURL reports whether --to names a server (a Bluesky PDS) rather
// than a stored account.
func isPDSURL(to string) bool {
	return strings.HasPrefix(to, "https://") || strings.HasPrefix(to, "http://")
}

// pdsMover is a session that can move its account to another PDS
// (platform/bluesky).
type pdsMover interface {
	PDSMoveOptions() pdsmove.Options
}

// pdsMove opens the old account and fills the move's options from the
// flags. The caller closes nothing: the store is closed before returning.
func pdsMove(ctx context.Context, g *globalOptions, o migrateOptions, cmd string) (pdsmove.Options, error) {
	if o.From == "" || o.FromArchive != "" {
		return pdsmove.Options{}, usagef("migrate %s: a move to another PDS needs --from ACCOUNT (a Bluesky account logged in with its password) and --to https://NEW-PDS", cmd)
	}
	st, acct, sess, err := g.openAccount(ctx, o.From)
	if err != nil {
		return pdsmove.Options{}, err
	}
	mv, ok := sess.(pdsMover)
	if !ok {
		st.Close()
		return pdsmove.Options{}, usagef("migrate %s: --to %s is a server: only Bluesky accounts move to another PDS; %s is a %s account (give --to NEW-ACCOUNT)", cmd, o.To, acct.Handle, acct.Platform)
	}
	po := mv.PDSMoveOptions()
	po.NewPDS, po.Handle, po.Email, po.InviteCode, po.NewCode = o.To, o.pds.Handle, o.pds.Email, o.pds.InviteCode, o.pds.NewCode
	po.Journal = st
	po.Out = g.stderr
	po.Command = fmt.Sprintf("ferry migrate run --from %s --to %s", o.From, o.To)
	po.Password = func(context.Context) (string, error) { return newAccountPassword(g, o.PasswordFile, o.To) }
	po.Code = func(context.Context) (string, error) { return plcCode(g, o.pds.PLCTokenFile, po.Old.PDS()) }
	return po, nil
}

// newAccountPassword reads the new account's password: --password-file,
// FERRY_PASSWORD, or the terminal without echo.
func newAccountPassword(g *globalOptions, file, pds string) (string, error) {
	pw, err := readPassword(g, file, fmt.Sprintf("Password for the account on %s (not stored): ", pds))
	if errors.Is(err, errNoTerminal) {
		return "", usagef("migrate: the new account's password: give --password-file FILE or FERRY_PASSWORD (no terminal to ask on)")
	}
	return pw, err
}

// plcCode reads the code the old PDS emailed: --plc-token-file, the
// terminal, or the first line of standard input when it is not a terminal.
func plcCode(g *globalOptions, file, oldPDS string) (string, error) {
	code, err := readCode(g, file, "", fmt.Sprintf("Code from the email %s sent to the account's address: ", hostOf(oldPDS)),
		"reading the code the old PDS emailed from standard input")
	if errors.Is(err, errNoCode) {
		return "", pdsmove.ErrNoCode
	}
	return code, err
}

func hostOf(u string) string {
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://"), "/")
}

func runPDSMovePlan(ctx context.Context, g *globalOptions, o migrateOptions) error {
	po, err := pdsMove(ctx, g, o, "plan")
	if err != nil {
		return err
	}
	defer po.Journal.(interface{ Close() error }).Close()
	p, err := pdsmove.Preflight(ctx, po)
	if err != nil {
		return fmt.Errorf("migrate plan: %w", err)
	}
	if g.JSON {
		if err := printJSON(g.stdout, p); err != nil {
			return err
		}
	} else {
		w := g.stdout
		fmt.Fprintf(w, "Move %s (%s) from %s to %s\n\nChecks:\n", p.Handle, p.DID, hostOf(p.OldPDS), hostOf(p.NewPDS))
		for _, c := range p.Checks {
			fmt.Fprintf(w, "  [%s] %s\n", checkMark(c.OK, c.Blocking), c.Detail)
		}
		fmt.Fprintln(w, "\nSteps of `ferry migrate run`:")
		done := map[string]bool{}
		for _, s := range p.Done {
			done[s] = true
		}
		for i, s := range p.Steps {
			mark := ""
			if done[s] {
				mark = " (done)"
			}
			fmt.Fprintf(w, "  %d. %s%s\n", i+1, s, mark)
		}
		fmt.Fprintf(w, "\n%s\n", p.Irreversible)
	}
	if p.Blocked() {
		return fmt.Errorf("the move of %s cannot proceed: %s", p.Handle, strings.Join(p.Blockers(), "; "))
	}
	return nil
}

func runPDSMove(ctx context.Context, g *globalOptions, o migrateOptions) error {
	po, err := pdsMove(ctx, g, o, "run")
	if err != nil {
		return err
	}
	st := po.Journal.(*state.Store)
	defer st.Close()
	release, err := hold(ctx, st, "pdsmove/"+po.Old.DID(), "moving "+o.From+" to another PDS")
	if err != nil {
		return err
	}
	defer release()
	res, err := pdsmove.Run(ctx, po)
	if g.JSON {
		out := struct {
			pdsmove.Result
			Error string `json:"error,omitempty"`
		}{Result: res}
		if err != nil {
			out.Error = err.Error()
		}
		if perr := printJSON(g.stdout, out); perr != nil {
			return errors.Join(err, perr)
		}
	}
	if err != nil {
		var se *pdsmove.StepError
		if errors.As(err, &se) {
			return fmt.Errorf("migrate %s to %s: %w", o.From, o.To, err)
		}
		return fmt.Errorf("migrate %s to %s: %w\n  run the same command again to continue where it stopped", o.From, o.To, err)
	}
	if !g.JSON {
		fmt.Fprintf(g.stdout, "moved %s to %s (job %d): steps done now: %s\n", res.DID, hostOf(res.NewPDS), res.JobID, strings.Join(res.Done, ", "))
		for _, n := range res.Notes {
			fmt.Fprintln(g.stdout, "note:", n)
		}
		fmt.Fprintf(g.stdout, "log in to the account where it lives now: ferry login %s --handle HANDLE\n", res.NewPDS)
	}
	return nil
}

func runPDSMoveVerify(ctx context.Context, g *globalOptions, o migrateOptions) error {
	po, err := pdsMove(ctx, g, o, "verify")
	if err != nil {
		return err
	}
	defer po.Journal.(interface{ Close() error }).Close()
	v, err := pdsmove.Verify(ctx, po)
	if err != nil {
		return fmt.Errorf("migrate verify: %w", err)
	}
	if g.JSON {
		if err := printJSON(g.stdout, v); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(g.stdout, v.Summary())
	}
	if !v.OK() {
		return partialError{"the move is not complete"}
	}
	return nil
}

// pdsMoveStatus lists the Bluesky accounts' moves to another PDS as
// `ferry migrate status` lists migrations: each step's status and, for a
// step that failed or was checked rather than done, why (never the signed
// PLC operation the journal keeps).
func pdsMoveStatus(ctx context.Context, st *state.Store) ([]move.MigrationStatus, error) {
	jobs, err := st.Jobs(ctx, pdsmove.JobKind)
	if err != nil {
		return nil, err
	}
	var out []move.MigrationStatus
	for _, job := range jobs {
		items, err := st.Items(ctx, job.ID, journal.ItemFilter{})
		if err != nil {
			return nil, err
		}
		ms := move.MigrationStatus{ID: job.ID, Key: "Bluesky move " + job.Key, Status: job.Status, Updated: job.UpdatedAt}
		for _, it := range items {
			outcome := it.Error
			if it.Status == journal.ItemPending && it.Attempts > 0 {
				outcome = fmt.Sprintf("begun %d times, not finished", it.Attempts)
			}
			ms.Steps = append(ms.Steps, move.StepStatus{Step: it.Step, Status: string(it.Status), Outcome: outcome})
		}
		out = append(out, ms)
	}
	return out, nil
}
