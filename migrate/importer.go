package migrate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ParseMode reads an import mode: merge or overwrite.
func ParseMode(s string) (Mode, error) {
	if m := Mode(s); m == Merge || m == Overwrite {
		return m, nil
	}
	return "", fmt.Errorf("mode %q: use merge or overwrite", s)
}

// ParseMethod reads an import method: auto, api or server.
func ParseMethod(s string) (Method, error) {
	if m := Method(s); m == MethodAuto || m == MethodAPI || m == MethodServer {
		return m, nil
	}
	return "", fmt.Errorf("method %q: use auto, api or server", s)
}

// InputError is returned by ReadFiles for an input the person named that
// cannot be used: a path that does not exist, a directory without graph
// files, a file that does not parse. Commands report it as a mistake in how
// they were called rather than as a failure.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// ReadFiles parses every file in paths, and every .csv and .txt file (sorted
// by name, hidden files and earlier <type>_failures.csv reports left out) in
// every directory in paths. typ, when not empty, is the type of every file;
// otherwise each file's type comes from its header, name or content.
func ReadFiles(paths []string, typ Type) ([]Parsed, error) {
	var names []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, &InputError{err}
		}
		if !fi.IsDir() {
			names = append(names, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		var in []string
		for _, e := range ents {
			n := strings.ToLower(e.Name())
			if e.Type().IsRegular() && !strings.HasPrefix(n, ".") && !strings.Contains(n, "_failures") &&
				(strings.HasSuffix(n, ".csv") || strings.HasSuffix(n, ".txt")) {
				in = append(in, filepath.Join(p, e.Name()))
			}
		}
		sort.Strings(in)
		if len(in) == 0 {
			return nil, &InputError{fmt.Errorf("%s has no .csv or .txt files", p)}
		}
		names = append(names, in...)
	}
	out := make([]Parsed, 0, len(names))
	for _, n := range names {
		f, err := os.Open(n)
		if err != nil {
			return nil, &InputError{err}
		}
		p, err := ParseFile(f, n, typ)
		f.Close()
		if err != nil {
			return nil, &InputError{err}
		}
		out = append(out, p)
	}
	return out, nil
}

// DefaultFailuresDir is where an import of paths writes its failure files
// when not told otherwise: the first path when it is a directory, else the
// directory that holds it.
func DefaultFailuresDir(paths []string) string {
	if len(paths) == 0 {
		return "."
	}
	dir := paths[0]
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		dir = filepath.Dir(dir)
	}
	return dir
}

// ImportFilesOptions describe an import whose rows that cannot be applied
// are reported in <type>_failures.csv files.
type ImportFilesOptions struct {
	ImportOptions
	// FailuresDir receives the failure files (required unless DryRun).
	FailuresDir string
}

// ImportFilesResult is the outcome of ImportFiles: the import's report and
// the failure files written.
type ImportFilesResult struct {
	*Report
	FailureFiles []string `json:"failure_files,omitempty"`
}

// RowsFailedError is returned by ImportFiles when the import ran to its end
// but some rows could not be applied; they are in the failure files.
type RowsFailedError struct {
	Rows  int
	Files []string
}

func (e *RowsFailedError) Error() string {
	if len(e.Files) == 0 {
		return fmt.Sprintf("%d rows were not applied", e.Rows)
	}
	return fmt.Sprintf("%d rows were not applied; see %s", e.Rows, strings.Join(e.Files, ", "))
}

// ImportFiles runs Import and writes the rows it could not apply into
// <type>_failures.csv files in o.FailuresDir (not for dry runs; again when
// the same import had already finished, so the files named are there), and
// removes the failures file of every imported type none of whose rows
// failed this time, left by an earlier run. The result's Report is nil only
// when the import could not start; otherwise it is filled even with an
// error: ErrNeedsConfirmation (the Report lists the removals), a stop before
// the end (a rerun continues) or *RowsFailedError.
func ImportFiles(ctx context.Context, o ImportFilesOptions) (ImportFilesResult, error) {
	rep, err := Import(ctx, o.ImportOptions)
	res := ImportFilesResult{Report: rep}
	if rep == nil || errors.Is(err, ErrNeedsConfirmation) {
		return res, err
	}
	if !o.DryRun {
		files, werr := WriteFailures(o.FailuresDir, rep)
		res.FailureFiles = files
		if werr != nil {
			err = errors.Join(err, werr)
		}
	}
	if err != nil {
		return res, err
	}
	if n := rep.FailedRows(); n > 0 && !o.DryRun {
		return res, &RowsFailedError{Rows: n, Files: res.FailureFiles}
	}
	return res, nil
}
