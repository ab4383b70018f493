// Package testenv runs real GoToSocial servers on loopback for ferry's end-to-end tests.
//
// Every instance listens on https://localhost:PORT with one shared self-signed certificate
// (see Env.CAFile), uses its own SQLite database and media directory in a temporary
// directory, and federates with the other instances of the same Env over loopback.
//
// The GoToSocial binary is located through the FERRY_GTS_BIN environment variable, or built
// once by build-gotosocial.sh (next to this file) into ${FERRY_E2E_CACHE:-$HOME/.cache/ferry-e2e}.
// The WebAssembly compilation cache lives in the same cache directory, so only the very first
// server start on a machine pays for compiling the embedded ffmpeg (about 70–90 s on 2 cores).
//
// Typical use in a test package:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		env := testenv.Shared(t, 2)
//		alice, err := env.Instances[0].CreateUser(ctx, "", true)
//		...
//	}
package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configures the instances started by Start.
type Options struct {
	// RateLimitRequests is GoToSocial's advanced-rate-limit-requests: the number of requests
	// per 5 minutes and per client IP that each router group accepts before answering 429.
	// 0 turns the limiter off (the right choice for functional tests).
	RateLimitRequests int
}

// Env is a set of running instances that federate with each other, plus the TLS material
// they share. Create it with Start (or Shared) and release it with Close.
type Env struct {
	// Instances are the running servers, in the order they were requested.
	Instances []*Instance
	// CAFile is the PEM file of the self-signed certificate every instance serves
	// (valid for DNS:localhost, IP:127.0.0.1, IP:::1). Clients must trust it.
	CAFile string
	// Dir is the temporary directory holding the certificate and all instance data.
	// Close removes it.
	Dir string

	caPEM []byte

	transportOnce sync.Once
	transport     *http.Transport

	closeOnce sync.Once
	closeErr  error
}

// Start starts n GoToSocial instances concurrently, each on a free loopback port, and
// returns once every one of them answers GET /api/v1/instance with 200. If any instance
// fails to start, the others are stopped, all temporary files are removed, and the error
// contains the tail of the failing server's log. ctx bounds the whole start (including a
// possible build of the binary); a cold first start on a new machine takes about 1.5 minutes.
func Start(ctx context.Context, n int, opts Options) (*Env, error) {
	if n < 1 {
		return nil, fmt.Errorf("testenv: start %d instances: need at least one", n)
	}
	if opts.RateLimitRequests < 0 {
		return nil, fmt.Errorf("testenv: start: negative RateLimitRequests %d", opts.RateLimitRequests)
	}
	bin, err := Binary(ctx)
	if err != nil {
		return nil, err
	}
	removeStaleDirs()
	dir, err := os.MkdirTemp("", tempPattern)
	if err != nil {
		return nil, fmt.Errorf("testenv: create temp dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testenv: write owner file: %w", err)
	}
	e := &Env{Dir: dir, CAFile: filepath.Join(dir, "localhost.crt")}
	keyFile := filepath.Join(dir, "localhost.key")
	if e.caPEM, err = writeSelfSignedCert(e.CAFile, keyFile); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}

	e.Instances = make([]*Instance, n)
	for i := range e.Instances {
		e.Instances[i] = &Instance{
			Name:     fmt.Sprintf("gts%d", i+1),
			env:      e,
			bin:      bin,
			dir:      filepath.Join(dir, fmt.Sprintf("gts%d", i+1)),
			certFile: e.CAFile,
			keyFile:  keyFile,
			opts:     opts,
		}
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, in := range e.Instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = in.startFresh(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		e.Close()
		return nil, fmt.Errorf("testenv: start %d instances: %w", n, err)
	}
	return e, nil
}

// Close stops every instance (SIGTERM to its process group, SIGKILL after a short grace
// period) and removes the temporary directory. It is safe to call more than once; later
// calls return the first call's result.
func (e *Env) Close() error {
	e.closeOnce.Do(func() {
		errs := make([]error, len(e.Instances))
		var wg sync.WaitGroup
		for i, in := range e.Instances {
			if in == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = in.Stop()
			}()
		}
		wg.Wait()
		if err := os.RemoveAll(e.Dir); err != nil {
			errs = append(errs, fmt.Errorf("testenv: remove %s: %w", e.Dir, err))
		}
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}

// CAPEM returns the PEM-encoded certificate (the contents of CAFile).
func (e *Env) CAPEM() []byte { return append([]byte(nil), e.caPEM...) }

// writeSelfSignedCert writes an ECDSA P-256 certificate for localhost (DNS:localhost,
// IP:127.0.0.1, IP:::1) and its key as PEM files and returns the certificate PEM.
func writeSelfSignedCert(certFile, keyFile string) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testenv: generate TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("testenv: generate certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"ferry testenv"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("testenv: create self-signed certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("testenv: marshal TLS key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("testenv: write certificate: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("testenv: write TLS key: %w", err)
	}
	return certPEM, nil
}

const (
	tempPattern = "ferry-e2e-*"
	ownerFile   = "owner.pid"
)

// removeStaleDirs removes temporary directories of environments whose test binary died
// without calling Close (its servers died with it, see sysProcAttr). Errors are ignored.
func removeStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPattern))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue // not ours, or still being set up
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		os.RemoveAll(d)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testenv: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
