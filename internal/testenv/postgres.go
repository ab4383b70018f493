package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a throwaway PostgreSQL server: a cluster made by initdb in a temporary
// directory, listening only on 127.0.0.1 on a free port, with trust authentication on
// loopback (nothing else can reach it). Start it with StartPostgres or SharedPostgres; give
// each test its own database with NewDatabase or PostgresDB.
//
// initdb refuses to run as root, so when the tests run as root the server runs as the
// "postgres" user Debian's package creates, owning the data directory.
type Postgres struct {
	// BinDir holds initdb and postgres.
	BinDir string
	// Dir is the data directory (and the Unix socket's); Close removes it.
	Dir string
	// Port is the TCP port on 127.0.0.1.
	Port int
	// LogFile receives the server's output.
	LogFile string

	// Settings are extra "name=value" server settings (postgres -c), for a
	// benchmark that loads pg_stat_statements, say.
	Settings []string

	mu   sync.Mutex
	proc *exec.Cmd
	done chan struct{}
	cred *syscall.Credential
}

// sharedPG is the server handed out by SharedPostgres, started once per test binary.
var sharedPG struct {
	mu  sync.Mutex
	pg  *Postgres
	err error
}

// PostgresBinDir finds Debian's PostgreSQL server binaries: $FERRY_PG_BINDIR, else the
// newest /usr/lib/postgresql/N/bin holding initdb (15 on the project's image;
// internal/testenv/install-postgres.sh installs it where missing).
func PostgresBinDir() (string, error) {
	if d := os.Getenv("FERRY_PG_BINDIR"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	if len(dirs) == 0 {
		return "", errors.New("testenv: no PostgreSQL server (/usr/lib/postgresql/*/bin/initdb); " +
			"run internal/testenv/install-postgres.sh or set FERRY_PG_BINDIR")
	}
	return filepath.Dir(dirs[0]), nil
}

func pgMajor(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// StartPostgres makes a new cluster and starts its server, with the extra settings
// ("name=value", as postgres -c takes them). Close stops it and removes its files.
func StartPostgres(ctx context.Context, settings ...string) (*Postgres, error) {
	bin, err := PostgresBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ferry-pg-")
	if err != nil {
		return nil, fmt.Errorf("testenv: postgres: %w", err)
	}
	p := &Postgres{BinDir: bin, Dir: filepath.Join(dir, "data"), LogFile: filepath.Join(dir, "postgres.log"), Settings: settings}
	fail := func(err error) (*Postgres, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if os.Geteuid() == 0 {
		// initdb and postgres refuse root: run them as the package's user, which must
		// be able to reach the temporary directory and own the data directory.
		u, err := user.Lookup("postgres")
		if err != nil {
			return fail(fmt.Errorf("testenv: running as root and there is no postgres user to run the server as: %w", err))
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return fail(fmt.Errorf("testenv: postgres: %w", err))
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fail(fmt.Errorf("testenv: postgres: %w", err))
	}
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", p.Dir, "-U", "postgres",
		"--auth=trust", "--no-locale", "--encoding=UTF8", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("testenv: initdb: %w\n%s", err, out))
	}
	if p.Port, err = freePort(); err != nil {
		return fail(err)
	}
	if err := p.Restart(ctx); err != nil {
		return fail(err)
	}
	return p, nil
}

// Restart starts the server again after Stop (StartPostgres starts it the first time),
// on the same port and data.
func (p *Postgres) Restart(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil {
		return errors.New("testenv: postgres is running")
	}
	logf, err := os.OpenFile(p.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("testenv: postgres: %w", err)
	}
	// Only loopback TCP, the socket in the data directory, and durability traded for
	// speed: the cluster is thrown away.
	args := []string{"-D", p.Dir, "-p", strconv.Itoa(p.Port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + p.Dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300"}
	for _, kv := range p.Settings {
		args = append(args, "-c", kv)
	}
	cmd := exec.Command(filepath.Join(p.BinDir, "postgres"), args...)
	attr := sysProcAttr()
	attr.Credential = p.cred
	cmd.SysProcAttr = attr
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("testenv: start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	p.proc, p.done = cmd, done
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := pgx.Connect(ctx, p.URL("postgres"))
		if err == nil {
			c.Close(ctx)
			return nil
		}
		select {
		case <-done:
			p.proc = nil
			log, _ := os.ReadFile(p.LogFile)
			return fmt.Errorf("testenv: postgres exited at start: %s", tail(log, 20))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stopLocked()
			return fmt.Errorf("testenv: postgres did not answer: %w", err)
		}
	}
}

// Stop shuts the server down at once (fast shutdown: connections are closed), keeping
// its data, so that a test can see how ferry copes with a lost database and then
// Restart it.
func (p *Postgres) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopLocked()
}

func (p *Postgres) stopLocked() {
	if p.proc == nil {
		return
	}
	// SIGINT is PostgreSQL's fast shutdown.
	_ = p.proc.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.proc.Process.Kill()
		<-p.done
	}
	p.proc = nil
}

// Close stops the server and removes its files.
func (p *Postgres) Close() error {
	p.Stop()
	return os.RemoveAll(filepath.Dir(p.Dir))
}

// URL is the connection string of database db as the superuser.
func (p *Postgres) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, db)
}

// NewDatabase creates a database with a fresh random name and returns its URL.
func (p *Postgres) NewDatabase(ctx context.Context) (string, error) {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "ferry_" + hex.EncodeToString(b)
	c, err := pgx.Connect(ctx, p.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("testenv: postgres: %w", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("testenv: create database: %w", err)
	}
	return p.URL(name), nil
}

// RequirePostgres skips t under -short, and returns PostgresBinDir; without a PostgreSQL
// server t fails when CI=true or FERRY_E2E=1 and is skipped otherwise.
func RequirePostgres(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping PostgreSQL test in -short mode")
	}
	if _, err := PostgresBinDir(); err != nil {
		unavailable(t, err)
	}
}

// SharedPostgres returns the server shared by every test of the test binary, started on
// first use and stopped by Main. Tests must not Stop it; one that needs to lose its
// database starts its own with StartPostgres.
func SharedPostgres(t testing.TB) *Postgres {
	t.Helper()
	RequirePostgres(t)
	sharedPG.mu.Lock()
	defer sharedPG.mu.Unlock()
	if sharedPG.pg != nil {
		return sharedPG.pg
	}
	if sharedPG.err != nil {
		unavailable(t, sharedPG.err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, err := StartPostgres(ctx)
	if err != nil {
		sharedPG.err = err
		unavailable(t, err)
	}
	sharedPG.pg = pg
	return pg
}

// PostgresDB returns the URL of a new, empty database of the shared server for t: each
// test gets its own, so tests are independent.
func PostgresDB(t testing.TB) string {
	t.Helper()
	pg := SharedPostgres(t)
	u, err := pg.NewDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// closeSharedPG stops the shared server, if one was started.
func closeSharedPG() error {
	sharedPG.mu.Lock()
	defer sharedPG.mu.Unlock()
	if sharedPG.pg == nil {
		return nil
	}
	err := sharedPG.pg.Close()
	sharedPG.pg = nil
	return err
}
