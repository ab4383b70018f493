package config

import (
	"fmt"
	"slices"
	"strings"
)

// Error is one mistake in a config file, with its place.
type Error struct {
	File   string
	Line   int    // 1-based line of the offending key or value; 0 when it has no place
	Column int    // 1-based column, in bytes; 0 when unknown
	Key    string // the key's path as TOML writes it ("route.sink.length"); "" for the file as a whole
	Msg    string
}

// Error returns "file:line: message" (or "file: message" when the mistake
// has no line).
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Errors is every mistake found in one config file, in file order. Load,
// Parse and Config.CheckAccounts return it (as *Errors) when they find at
// least one mistake.
type Errors struct {
	File     string
	Mistakes []*Error
}

// Error returns one mistake a line, each as "file:line: message".
func (e *Errors) Error() string {
	lines := make([]string, len(e.Mistakes))
	for i, m := range e.Mistakes {
		lines[i] = m.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the mistakes, so that errors.As finds each *Error.
func (e *Errors) Unwrap() []error {
	out := make([]error, len(e.Mistakes))
	for i, m := range e.Mistakes {
		out[i] = m
	}
	return out
}

// add records a mistake at p on key.
func (e *Errors) add(p pos, key, format string, a ...any) {
	e.Mistakes = append(e.Mistakes, &Error{File: e.File, Line: p.line, Column: p.col, Key: key, Msg: fmt.Sprintf(format, a...)})
}

// err returns e sorted into file order, or nil when there is no mistake.
// Mistakes on the same place keep the order they were found in.
func (e *Errors) err() error {
	if len(e.Mistakes) == 0 {
		return nil
	}
	slices.SortStableFunc(e.Mistakes, func(a, b *Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	return e
}
