package move

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/state"
)

// stubSide is a side of another platform (SideAPI) in memory: its Move is
// what move says.
type stubSide struct {
	mu        sync.Mutex
	base      *url.URL
	acct      fedi.Account
	aliases   []string
	movedTo   *fedi.Account
	moveCalls int
	move      func(s *stubSide, sec Secrets) error
}

func (s *stubSide) Base() *url.URL { return s.base }
func (s *stubSide) Me(ctx context.Context) (fedi.Account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.acct
	a.Moved = s.movedTo
	return a, nil
}
func (s *stubSide) Aliases(ctx context.Context) ([]string, error) { return s.aliases, nil }
func (s *stubSide) AddAlias(ctx context.Context, oldURI, oldHandle string) error {
	s.aliases = append(s.aliases, oldURI)
	return nil
}
func (s *stubSide) MoveAccount(ctx context.Context, newURI, newHandle string, sec Secrets) error {
	s.mu.Lock()
	s.moveCalls++
	s.mu.Unlock()
	return s.move(s, sec)
}
func (s *stubSide) Refresh(ctx context.Context, uri string) error { return nil }
func (s *stubSide) Followers(ctx context.Context, id string) (map[string]bool, error) {
	return map[string]bool{}, nil
}
func (s *stubSide) setMoved(to fedi.Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.movedTo = &to
}

// misskeyRunner is a migration between two stub Misskey sides.
func misskeyRunner(t *testing.T, move func(s *stubSide, sec Secrets) error, out *syncBuffer) (*Runner, *stubSide) {
	base, _ := url.Parse("https://mk.example")
	oldAcct := fedi.Account{ID: "o1", Acct: "old", URI: "https://mk.example/users/o1"}
	newAcct := fedi.Account{ID: "n1", Acct: "new", URI: "https://mk.example/users/n1"}
	old := &stubSide{base: base, acct: oldAcct, move: move}
	neu := &stubSide{base: base, acct: newAcct}
	sw := fedi.Software{Name: "misskey", Version: "2025.4.1"}
	r := &Runner{
		Old: &Side{Handle: "old@mk.example", API: old, Software: sw, Account: oldAcct, URI: oldAcct.URI},
		New: &Side{Handle: "new@mk.example", API: neu, Software: sw, Account: newAcct, URI: newAcct.URI},
		Dir: t.TempDir(), Journal: state.TestStore(t), Out: out,
		Poll: 20 * time.Millisecond, VerifyWindow: 50 * time.Millisecond, AliasWait: 5 * time.Second, MoveWait: 5 * time.Second,
		Password: func() (string, error) { return "pw", nil },
		Code:     func() (string, error) { return "123456", nil },
		Steps: Steps{
			Lifeboat: func(ctx context.Context, dir string) (string, error) {
				if err := os.MkdirAll(filepath.Join(dir, "graph"), 0o700); err != nil {
					return "", err
				}
				return "exported", os.WriteFile(filepath.Join(dir, FollowersFile), nil, 0o600)
			},
			Replay: func(ctx context.Context, dir string) (string, error) { return "replayed", nil },
		},
	}
	return r, old
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
	on func(string)
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.b.Write(p)
	on := s.on
	s.mu.Unlock()
	if on != nil {
		on(string(p))
	}
	return len(p), nil
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// A Move sent through the API whose answer is lost: the run looks at the
// old account, finds the Move made, and goes on without sending another;
// a second run sends nothing either.
func TestAPIMoveLostAnswerIsNotSentTwice(t *testing.T) {
	out := &syncBuffer{}
	r, old := misskeyRunner(t, func(s *stubSide, sec Secrets) error {
		if pw, err := sec.Password(); err != nil || pw != "pw" {
			return fmt.Errorf("password %q, %v", pw, err)
		}
		s.setMoved(fedi.Account{ID: "n1", Acct: "new", URI: "https://mk.example/users/n1"})
		return fmt.Errorf("%w: connection reset", fedi.ErrAmbiguous)
	}, out)
	res, err := r.Run(t.Context())
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if old.moveCalls != 1 || !strings.Contains(res.Steps[StepMove], "moved to new@mk.example") {
		t.Fatalf("Move sent %d times; steps %v", old.moveCalls, res.Steps)
	}
	if _, err := r.Run(t.Context()); err != nil || old.moveCalls != 1 {
		t.Fatalf("second run: %v, Move sent %d times", err, old.moveCalls)
	}
}

// A lost answer of a Move that did not happen stops the run (nothing is
// resent blindly); the next run looks first and sends it once.
func TestAPIMoveLostBeforeActingIsSentOnTheNextRun(t *testing.T) {
	out := &syncBuffer{}
	lose := true
	r, old := misskeyRunner(t, func(s *stubSide, sec Secrets) error {
		if lose {
			lose = false
			return fmt.Errorf("%w: connection refused", fedi.ErrAmbiguous)
		}
		s.setMoved(fedi.Account{ID: "n1", Acct: "new", URI: "https://mk.example/users/n1"})
		return nil
	}, out)
	if _, err := r.Run(t.Context()); err == nil || old.moveCalls != 1 {
		t.Fatalf("first run: %v, Move sent %d times", err, old.moveCalls)
	}
	if _, err := r.Run(t.Context()); err != nil || old.moveCalls != 2 {
		t.Fatalf("second run: %v, Move sent %d times", err, old.moveCalls)
	}
}

// When the side cannot send the Move after all (a captcha at sign-in), the
// run says why, shows the web page, and waits for the person's Move.
func TestAPIMoveFallsBackToTheWebPage(t *testing.T) {
	out := &syncBuffer{}
	r, old := misskeyRunner(t, func(s *stubSide, sec Secrets) error {
		return &GuidedError{Reason: "mk.example asks for a captcha (hcaptcha)"}
	}, out)
	out.on = func(p string) {
		if strings.Contains(p, "https://mk.example/settings/migration") {
			go func() {
				time.Sleep(50 * time.Millisecond) // ferry must wait
				old.setMoved(fedi.Account{ID: "n1", Acct: "new", URI: "https://mk.example/users/n1"})
			}()
		}
	}
	res, err := r.Run(t.Context())
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	g := out.String()
	for _, want := range []string{"captcha (hcaptcha)", "https://mk.example/settings/migration", "new@mk.example"} {
		if !strings.Contains(g, want) {
			t.Errorf("guidance lacks %q:\n%s", want, g)
		}
	}
	if old.moveCalls != 1 || !strings.Contains(res.Steps[StepMove], "moved to") {
		t.Fatalf("Move calls %d, steps %v", old.moveCalls, res.Steps)
	}
}
