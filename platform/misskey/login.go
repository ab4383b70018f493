package misskey

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	mk "github.com/fedi-ferry/ferry/misskey"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/state"
)

// requestTimeout bounds one API call made on the person's behalf.
const requestTimeout = 60 * time.Second

// Login authorizes ferry for an account with MiAuth, or checks req.Token,
// and returns the account. MiAuth: ferry makes a session ID and shows the
// server's /miauth/<session> page, where the signed-in person allows the
// permissions ferry needs (misskey.Permissions); the browser then returns
// to a one-shot listener on 127.0.0.1 (or, with req.OOB or when the
// browser is elsewhere, the person pastes the address it ended on, or
// anything, once they have allowed), and ferry fetches the token with
// POST /api/miauth/<session>/check. MiAuth has no app registration: apps
// is unused.
func (p *Platform) Login(ctx context.Context, req platform.LoginRequest) (state.Account, error) {
	anon, err := p.client(req.Server, "")
	if err != nil {
		return state.Account{}, err
	}
	token := strings.TrimSpace(req.Token)
	if token == "" {
		if token, err = p.miauth(ctx, anon, req); err != nil {
			return state.Account{}, err
		}
	}
	c, err := p.client(req.Server, token)
	if err != nil {
		return state.Account{}, err
	}
	vctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	me, err := c.I(vctx)
	if err != nil {
		if mk.IsUnauthorized(err) {
			return state.Account{}, fmt.Errorf("the server does not accept this token (%w); check it, or log in without --token", err)
		}
		return state.Account{}, err
	}
	return state.Account{
		Handle: me.Username + "@" + c.Base().Host, Server: c.Base().String(), AccountID: me.ID, Username: me.Username,
		Token: token, Scopes: strings.Join(mk.Permissions, ","), Platform: Name,
	}, nil
}

// miauth runs the interactive MiAuth flow and returns the token.
func (p *Platform) miauth(ctx context.Context, anon *mk.Client, req platform.LoginRequest) (string, error) {
	if req.Prompt == nil {
		return "", errors.New("a Misskey login needs a browser (MiAuth) or --token-file")
	}
	session := mk.NewSession()
	callback := ""
	var redirected func(context.Context) (string, error)
	if !req.OOB {
		cb, err := listen(req.CallbackPort, session)
		if err != nil && req.CallbackPort != 0 {
			cb, err = listen(0, session)
		}
		if err != nil {
			return "", err
		}
		defer cb.close()
		callback, redirected = cb.uri, cb.wait
	}
	page := mk.MiAuthURL(anon.Base(), session, "ferry", callback, mk.Permissions)
	answer, err := req.Prompt.Authorize(ctx, page, redirected)
	if err != nil {
		return "", err
	}
	if strings.Contains(answer, "session=") {
		if u, err := url.Parse(answer); err == nil && u.Query().Get("session") != "" && u.Query().Get("session") != session {
			return "", errors.New("the pasted address belongs to another login attempt (session does not match)")
		}
	}
	// The person may answer a moment before the server has recorded the
	// permission: ask a few times.
	for try := 0; ; try++ {
		cctx, cancel := context.WithTimeout(ctx, requestTimeout)
		token, _, ok, err := anon.CheckMiAuth(cctx, session)
		cancel()
		if err != nil {
			return "", fmt.Errorf("MiAuth check: %w", err)
		}
		if ok {
			return token, nil
		}
		if try == 4 {
			return "", errors.New("the server says ferry was not allowed (MiAuth session not approved); open the address, press Allow, and run the command again")
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// callback is the loopback listener MiAuth returns the browser to.
type callback struct {
	uri     string
	session string
	srv     *http.Server
	done    chan struct{}
}

func listen(port int, session string) (*callback, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("listen for the MiAuth callback: %w", err)
	}
	cb := &callback{uri: fmt.Sprintf("http://%s/callback", ln.Addr()), session: session, done: make(chan struct{})}
	var once sync.Once
	mux := http.NewServeMux()
	mux.HandleFunc("/callback", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("session") != session {
			http.Error(w, "unexpected session", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!DOCTYPE html><p>ferry is now authorized. You can close this tab.</p>")
		once.Do(func() { close(cb.done) })
	})
	cb.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = cb.srv.Serve(ln) }()
	return cb, nil
}

func (cb *callback) wait(ctx context.Context) (string, error) {
	select {
	case <-cb.done:
		return cb.session, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (cb *callback) close() { _ = cb.srv.Close() }
