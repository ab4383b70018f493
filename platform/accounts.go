package platform

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/fedi-ferry/ferry/config"
	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/state"
)

// AccountLookup finds stored accounts by handle or name (state.Store
// implements it); a missing one is an error wrapping state.ErrNotFound.
type AccountLookup interface {
	Account(ctx context.Context, ref string) (state.Account, error)
}

// ConfigAccounts checks that every account cfg names is one ferry knows
// and returns their stored records by the reference the file uses. Every
// unknown account is reported (config.Errors), on the line that names it.
func ConfigAccounts(ctx context.Context, st AccountLookup, cfg *config.Config) (map[string]state.Account, error) {
	out := map[string]state.Account{}
	err := cfg.CheckAccounts(func(ref string) (bool, error) {
		a, err := st.Account(ctx, ref)
		if errors.Is(err, state.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("load account %q: %w", ref, err)
		}
		out[ref] = a
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// LookupAccount loads the stored account ref (a handle or a name), with
// an error that tells the person what to do when there is none.
func LookupAccount(ctx context.Context, st AccountLookup, ref string) (state.Account, error) {
	a, err := st.Account(ctx, ref)
	if errors.Is(err, state.ErrNotFound) {
		return state.Account{}, fmt.Errorf("no account %q: run `ferry accounts` to list accounts or `ferry login SERVER` to add one", ref)
	}
	if err != nil {
		return state.Account{}, fmt.Errorf("load account %q: %w", ref, err)
	}
	return a, nil
}

// PublicClient returns a new paced HTTP client for public documents
// (actors, WebFinger) on any server: no account's token, the registry's
// certificates and User-Agent.
func (r *Registry) PublicClient() *http.Client {
	hc, _ := fedi.NewHTTPClient(fedi.HTTPOptions{Roots: r.env.Roots,
		Transport: fedi.TransportOptions{UserAgent: r.env.UserAgent, Logger: r.env.Logger}})
	return hc
}
