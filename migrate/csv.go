package migrate

// Reading and writing the social-graph files Mastodon exports and imports
// (reference: protocols.md §1a), plus the looser shapes people actually
// have: GoToSocial's exports, Misskey/Akkoma lists whose first field is the
// handle, and plain text lists of handles. Reading never panics and never
// lets one bad row spoil the rest: each problem is a RowError naming
// file:line, and the row is skipped.

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
)

// Type is a kind of graph file.
type Type string

// The graph file types. Their values are also the names used on the
// command line and in <type>_failures.csv.
const (
	Following    Type = "following"
	Followers    Type = "followers"
	Blocks       Type = "blocks"
	Mutes        Type = "mutes"
	DomainBlocks Type = "domain_blocks"
	Bookmarks    Type = "bookmarks"
	Lists        Type = "lists"
)

// AllTypes lists every type in the order ferry exports and imports them:
// follows before lists (list members must be followed first).
func AllTypes() []Type {
	return []Type{Following, Followers, Lists, Blocks, Mutes, DomainBlocks, Bookmarks}
}

// ParseType accepts a type name as ferry, Mastodon's importer, or
// GoToSocial's importer spell it ("following", "follows", "blocking",
// "blocks", "muting", "domain_blocking", "domain-blocks", "bookmarks",
// "lists", "followers").
func ParseType(s string) (Type, error) {
	switch strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "-", "_") {
	case "following", "follows", "follow", "following_accounts":
		return Following, nil
	case "followers":
		return Followers, nil
	case "blocks", "blocking", "block", "blocked_accounts":
		return Blocks, nil
	case "mutes", "muting", "mute", "muted_accounts":
		return Mutes, nil
	case "domain_blocks", "domain_blocking", "domains", "blocked_domains":
		return DomainBlocks, nil
	case "bookmarks", "bookmark":
		return Bookmarks, nil
	case "lists", "list":
		return Lists, nil
	}
	return "", fmt.Errorf("unknown type %q: use following, followers, lists, blocks, mutes, domain_blocks or bookmarks", s)
}

// FileName is the name Mastodon gives the export of t (followers.csv for
// the followers ferry exports and Mastodon cannot).
func (t Type) FileName() string {
	switch t {
	case Following:
		return "following_accounts.csv"
	case Followers:
		return "followers.csv"
	case Blocks:
		return "blocked_accounts.csv"
	case Mutes:
		return "muted_accounts.csv"
	case DomainBlocks:
		return "blocked_domains.csv"
	case Bookmarks:
		return "bookmarks.csv"
	case Lists:
		return "lists.csv"
	}
	return string(t) + ".csv"
}

// header is Mastodon's header row for t, or nil when Mastodon writes none.
func (t Type) header() []string {
	switch t {
	case Following:
		return []string{"Account address", "Show boosts", "Notify on new posts", "Languages"}
	case Mutes:
		return []string{"Account address", "Hide notifications"}
	case Followers:
		// Mastodon has no followers export; GoToSocial's carries this header.
		return []string{"Account address"}
	}
	return nil
}

// failureHeader is the header of <type>_failures.csv: the columns Mastodon
// reads back for t (so the file can be imported again once fixed) plus
// where the row came from and why it was not applied.
func (t Type) failureHeader() []string {
	h := t.header()
	switch t {
	case Blocks:
		h = []string{"Account address"}
	case DomainBlocks:
		h = []string{"#domain"}
	case Bookmarks:
		h = []string{"#uri"}
	case Lists:
		h = []string{"List name", "Account address"}
	}
	return append(append([]string(nil), h...), "Source", "Reason")
}

// Pos is where a row came from.
type Pos struct {
	File string
	Line int // 1-based
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Row is one entry of a graph file. Which fields are set depends on Type.
type Row struct {
	Type Type
	Pos  Pos
	// Account is the address user@domain (domain lower-cased, no "@"
	// prefix) for following, followers, blocks, mutes and lists; in a
	// Bluesky export (a file with a DID column) it is the account's
	// Bluesky handle ("alice.bsky.social"), or its DID.
	Account string
	// DID is the Bluesky account's DID, from the DID column of a Bluesky
	// export; "" for fediverse rows.
	DID string
	// ShowBoosts, Notify and Languages are a follow's settings; nil means
	// "not in the file" (the server default: boosts shown, no notify).
	ShowBoosts *bool
	Notify     *bool
	Languages  []string
	// HideNotifications is a mute's setting; nil means the default (true).
	HideNotifications *bool
	Domain            string // domain_blocks
	URI               string // bookmarks: the status's ActivityPub URI
	List              string // lists: the list's title
}

// RowError is a row that could not be read; the rest of the file is.
type RowError struct {
	Pos    Pos
	Raw    string // the line as it was (shortened)
	Reason string
}

func (e *RowError) Error() string { return e.Pos.String() + ": " + e.Reason }

// Parsed is what ParseFile read from one file.
type Parsed struct {
	Type   Type
	Rows   []Row
	Errors []*RowError
	// Header reports whether the file started with a header row.
	Header bool
	// Guess says how Type was determined: "given", "header", "file name"
	// or "content".
	Guess string
}

// maxLine bounds one line; graph files have short lines, so a longer one is
// not a graph file (or is corrupt) and is reported rather than buffered.
const maxLine = 64 << 10

// ParseFile reads a graph file named name (used for messages and type
// detection) from r. typ "" means detect the type from the header, then the
// file name, then the first rows. Malformed rows are reported in Errors and
// skipped; the error result is only for I/O failures and undetectable types.
func ParseFile(r io.Reader, name string, typ Type) (Parsed, error) {
	lines, err := readLines(r, name)
	if err != nil {
		return Parsed{}, err
	}
	p := Parsed{Type: typ, Guess: "given"}
	// The header row, if any, is the first non-blank line.
	first := -1
	for i, l := range lines {
		if strings.TrimSpace(l.text) != "" {
			first = i
			break
		}
	}
	var cols map[string]int // header name (lower case) → column
	if first >= 0 {
		if f, err := splitCSVLine(lines[first].text); err == nil && len(f) > 0 && isHeaderCell(f[0]) {
			p.Header = true
			cols = map[string]int{}
			for i, h := range f {
				cols[strings.ToLower(strings.TrimSpace(h))] = i
			}
			if typ == "" {
				p.Type, p.Guess = typeFromHeader(cols), "header"
			}
			lines = lines[first+1:]
		}
	}
	if p.Type == "" {
		if t := typeFromName(name); t != "" {
			p.Type, p.Guess = t, "file name"
		}
	}
	if p.Type == "" {
		p.Type, p.Guess = typeFromContent(lines), "content"
	}
	if p.Type == "" {
		return p, fmt.Errorf("%s: cannot tell what kind of list this is; give --type", name)
	}
	for _, l := range lines {
		text := strings.TrimSpace(l.text)
		pos := Pos{File: name, Line: l.n}
		if l.err != "" {
			p.Errors = append(p.Errors, &RowError{Pos: pos, Raw: short(text), Reason: l.err})
			continue
		}
		if text == "" || strings.HasPrefix(text, "#") {
			continue // blank lines and comments in hand-written lists
		}
		fields, err := splitCSVLine(l.text)
		if err != nil {
			p.Errors = append(p.Errors, &RowError{Pos: pos, Raw: short(text), Reason: err.Error()})
			continue
		}
		row, err := parseRow(p.Type, fields, cols)
		if err != nil {
			p.Errors = append(p.Errors, &RowError{Pos: pos, Raw: short(text), Reason: err.Error()})
			continue
		}
		row.Pos = pos
		p.Rows = append(p.Rows, row)
	}
	return p, nil
}

type line struct {
	n    int
	text string
	err  string // set when the line could not be read whole
}

// readLines splits r into lines, stripping a UTF-8 BOM and CR before LF.
func readLines(r io.Reader, name string) ([]line, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var out []line
	for n := 1; ; n++ {
		b, err := br.ReadSlice('\n')
		l := line{n: n}
		if errors.Is(err, bufio.ErrBufferFull) {
			l.err = fmt.Sprintf("line longer than %d KiB", maxLine>>10)
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			out = append(out, l)
			if err == io.EOF {
				return out, nil
			}
			if err != nil {
				return nil, fmt.Errorf("read %s:%d: %w", name, n, err)
			}
			continue
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read %s:%d: %w", name, n, err)
		}
		if n == 1 {
			b = bytes.TrimPrefix(b, []byte("\uFEFF"))
		}
		b = bytes.TrimRight(b, "\r\n")
		if len(b) > 0 || err == nil {
			l.text = string(b)
			out = append(out, l)
		}
		if err == io.EOF {
			return out, nil
		}
	}
}

// splitCSVLine splits one line into fields the way RFC 4180 and Ruby's CSV
// do, leniently: spaces around a quoted field are ignored, a quote inside an
// unquoted field is kept literally. Fields never span lines.
func splitCSVLine(s string) ([]string, error) {
	var fields []string
	i := 0
	for {
		// Skip spaces before a field to find out whether it is quoted.
		j := i
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		if j < len(s) && s[j] == '"' {
			var b strings.Builder
			k := j + 1
			closed := false
			for k < len(s) {
				if s[k] == '"' {
					if k+1 < len(s) && s[k+1] == '"' {
						b.WriteByte('"')
						k += 2
						continue
					}
					closed = true
					k++
					break
				}
				b.WriteByte(s[k])
				k++
			}
			if !closed {
				return nil, errors.New("a quoted field is not closed")
			}
			for k < len(s) && (s[k] == ' ' || s[k] == '\t') {
				k++
			}
			if k < len(s) && s[k] != ',' {
				return nil, errors.New("text after a closing quote")
			}
			fields = append(fields, b.String())
			if k >= len(s) {
				return fields, nil
			}
			i = k + 1
			continue
		}
		k := strings.IndexByte(s[i:], ',')
		if k < 0 {
			return append(fields, s[i:]), nil
		}
		fields = append(fields, s[i:i+k])
		i += k + 1
	}
}

// isHeaderCell reports whether the first cell of a row is one of the first
// headers Mastodon's importer knows.
func isHeaderCell(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "account address", "#domain", "#uri", "list name":
		return true
	}
	return false
}

func typeFromHeader(cols map[string]int) Type {
	switch {
	case has(cols, "#domain"):
		return DomainBlocks
	case has(cols, "#uri"):
		return Bookmarks
	case has(cols, "list name"):
		return Lists
	case has(cols, "show boosts") || has(cols, "notify on new posts") || has(cols, "languages"):
		return Following
	case has(cols, "hide notifications"):
		return Mutes
	}
	return "" // "Account address" alone: the file name or content decides
}

func has(m map[string]int, k string) bool { _, ok := m[k]; return ok }

// typeFromName guesses from Mastodon's and GoToSocial's export file names.
func typeFromName(name string) Type {
	base := strings.ToLower(filepath.Base(name))
	prefixes := []struct {
		p string
		t Type
	}{
		{"following", Following}, {"follows", Following},
		{"followers", Followers},
		{"blocked_domains", DomainBlocks}, {"domain_blocks", DomainBlocks},
		{"blocked_accounts", Blocks}, {"blocks", Blocks},
		{"muted_accounts", Mutes}, {"mutes", Mutes},
		{"bookmarks", Bookmarks},
		{"lists", Lists},
		// Misskey's exports: following-<date>.csv (above), blocking-,
		// mute- and user-lists-<date>.csv, one address (or "list,address")
		// per line without a header (ExportBlockingProcessorService and
		// its siblings).
		{"blocking", Blocks}, {"mute", Mutes}, {"user-lists", Lists},
	}
	for _, c := range prefixes {
		if strings.HasPrefix(base, c.p) {
			return c.t
		}
	}
	return ""
}

// typeFromContent guesses from the first data row: a URL is a bookmark, two
// fields of which only the second is an address are a list membership, an
// address is a follow (the common "import my follow list" case), a bare
// domain is a domain block.
func typeFromContent(lines []line) Type {
	for _, l := range lines {
		t := strings.TrimSpace(l.text)
		if t == "" || strings.HasPrefix(t, "#") || l.err != "" {
			continue
		}
		f, err := splitCSVLine(t)
		if err != nil || len(f) == 0 {
			continue
		}
		first := strings.TrimSpace(f[0])
		switch {
		case strings.HasPrefix(first, "https://") || strings.HasPrefix(first, "http://"):
			if _, err := normalizeAccount(first); err == nil {
				return Following
			}
			return Bookmarks
		case len(f) >= 2 && !looksLikeAccount(first) && looksLikeAccount(strings.TrimSpace(f[1])):
			return Lists
		case looksLikeAccount(first):
			return Following
		case !strings.Contains(first, "@") && strings.Contains(first, "."):
			return DomainBlocks
		}
		return ""
	}
	return ""
}

func looksLikeAccount(s string) bool {
	_, err := normalizeAccount(s)
	return err == nil
}

// parseRow turns the fields of one data row into a Row of type t. cols maps
// header names to columns when the file had a header; without one, columns
// are positional as in Mastodon's exports.
func parseRow(t Type, f []string, cols map[string]int) (Row, error) {
	col := func(name string, pos int) (string, bool) {
		i := pos
		if cols != nil {
			var ok bool
			if i, ok = cols[name]; !ok {
				return "", false
			}
		}
		if i < 0 || i >= len(f) {
			return "", false
		}
		return strings.TrimSpace(f[i]), true
	}
	r := Row{Type: t}
	var err error
	switch t {
	case Following, Followers, Blocks, Mutes:
		a, _ := col("account address", 0)
		did, bsky := col("did", -1)
		if r.Account, r.DID, err = parseAccount(a, did, bsky); err != nil {
			return Row{}, err
		}
		if t == Following {
			if v, ok := col("show boosts", 1); ok {
				r.ShowBoosts = castBool(v)
			}
			if v, ok := col("notify on new posts", 2); ok {
				r.Notify = castBool(v)
			}
			if v, ok := col("languages", 3); ok {
				r.Languages = splitLanguages(v)
			}
		}
		if t == Mutes {
			if v, ok := col("hide notifications", 1); ok {
				r.HideNotifications = castBool(v)
			}
		}
	case DomainBlocks:
		d, _ := col("#domain", 0)
		if r.Domain, err = normalizeDomain(d); err != nil {
			return Row{}, err
		}
	case Bookmarks:
		u, _ := col("#uri", 0)
		if r.URI, err = normalizeURI(u); err != nil {
			return Row{}, err
		}
	case Lists:
		name, _ := col("list name", 0)
		a, ok := col("account address", 1)
		if name == "" {
			return Row{}, errors.New("the list name is empty")
		}
		if !ok {
			return Row{}, errors.New("expected two fields: list name, account address")
		}
		did, bsky := col("did", -1)
		if r.Account, r.DID, err = parseAccount(a, did, bsky); err != nil {
			return Row{}, err
		}
		r.List = name
	default:
		return Row{}, fmt.Errorf("unknown type %q", t)
	}
	return r, nil
}

// parseAccount reads an account cell and, in a Bluesky export (a file with
// a DID column), its DID cell: a fediverse address is normalized as
// always; in a Bluesky file the address may instead be a Bluesky handle (a
// domain name), or empty when the DID names the account.
func parseAccount(addr, did string, bsky bool) (string, string, error) {
	did = strings.TrimSpace(did)
	if !bsky {
		a, err := normalizeAccount(addr)
		return a, "", err
	}
	if did != "" && !strings.HasPrefix(did, "did:plc:") && !strings.HasPrefix(did, "did:web:") || strings.ContainsAny(did, " \t/@?#,\"") {
		return "", "", fmt.Errorf("%q is not a DID (did:plc:… or did:web:…)", short(did))
	}
	addr = strings.TrimPrefix(strings.TrimSpace(addr), "@")
	if addr == "" {
		if did == "" {
			return "", "", errors.New("the account address and the DID are empty")
		}
		return did, did, nil
	}
	if strings.Contains(addr, "@") {
		a, err := normalizeAccount(addr)
		return a, did, err
	}
	h, err := normalizeDomain(addr)
	if err != nil || strings.Contains(h, ":") || !strings.Contains(h, ".") {
		return "", "", fmt.Errorf("%q is not a Bluesky handle", short(addr))
	}
	return h, did, nil
}

// castBool casts a cell as Mastodon's importer does (ActiveModel's boolean
// cast of the lower-cased cell): empty is "not given", 0/f/false/off are
// false, anything else is true.
func castBool(s string) *bool {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return nil
	}
	v := true
	switch s {
	case "0", "f", "false", "off":
		v = false
	}
	return &v
}

func splitLanguages(s string) []string {
	var out []string
	for _, l := range strings.Split(s, ",") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// normalizeAccount turns "@user@host", "user@host" or a profile URL
// ("https://host/@user") into "user@host" with the host lower-cased.
func normalizeAccount(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("the account address is empty")
	}
	if strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://") {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("%q is not an account address (user@host)", short(s))
		}
		p := strings.Trim(u.Path, "/")
		switch {
		case strings.HasPrefix(p, "@") && !strings.Contains(p, "/"):
			s = p[1:]
		case strings.HasPrefix(p, "users/") && strings.Count(p, "/") == 1:
			s = p[len("users/"):]
		default:
			return "", fmt.Errorf("%q is not an account address (user@host) nor a profile address", short(s))
		}
		if strings.Contains(s, "@") {
			// https://host/@user@other is how Mastodon shows remote profiles.
			return normalizeAccount(s)
		}
		s += "@" + u.Host
	}
	s = strings.TrimPrefix(s, "@")
	user, host, ok := strings.Cut(s, "@")
	if !ok {
		return "", fmt.Errorf("%q has no server: write it as user@host", short(s))
	}
	if user == "" || strings.ContainsAny(user, " \t/@:?#,\"") {
		return "", fmt.Errorf("%q is not an account address (user@host)", short(s))
	}
	h, err := normalizeDomain(host)
	if err != nil {
		return "", fmt.Errorf("%q: %w", short(s), err)
	}
	return user + "@" + h, nil
}

// normalizeDomain lower-cases a domain and checks it looks like one
// (letters, digits, dots, dashes, an optional port; IDNs as punycode or
// UTF-8 letters).
func normalizeDomain(s string) (string, error) {
	s = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
	if s == "" {
		return "", errors.New("the domain is empty")
	}
	hostPart := s
	if h, port, ok := strings.Cut(s, ":"); ok {
		hostPart = h
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return "", fmt.Errorf("%q is not a domain", short(s))
		}
	}
	if hostPart == "" || strings.HasPrefix(hostPart, ".") || strings.HasPrefix(hostPart, "-") {
		return "", fmt.Errorf("%q is not a domain", short(s))
	}
	for _, r := range hostPart {
		if r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r > 127 {
			continue
		}
		return "", fmt.Errorf("%q is not a domain", short(s))
	}
	return s, nil
}

func normalizeURI(s string) (string, error) {
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("%q is not a status address (https://…)", short(s))
	}
	return s, nil
}

// short keeps messages readable when a row is garbage.
func short(s string) string {
	const n = 80
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// Writer writes one graph file in Mastodon's export format: the header row
// where Mastodon writes one, fields quoted only when they contain a comma,
// quote or line break (as Ruby's CSV does), "\n" line ends. It is
// encoding/csv's writer, which quotes by the same rule with one addition: a
// cell that starts with white space (or is exactly `\.`) is quoted too.
// Both readers (Mastodon's and ParseFile) read such a cell back unchanged.
type Writer struct {
	w   *csv.Writer
	t   Type
	err error
}

// NewWriter returns a Writer of type t on w and writes the header row (if
// the type has one). Call Flush at the end.
func NewWriter(w io.Writer, t Type) *Writer {
	cw := &Writer{w: csv.NewWriter(w), t: t}
	if h := t.header(); h != nil {
		cw.record(h...)
	}
	return cw
}

// Write writes one row; its Type must be the Writer's. Write errors are
// sticky and returned by Flush.
func (w *Writer) Write(r Row) {
	switch w.t {
	case Following:
		w.record(r.Account, boolCell(r.ShowBoosts, true), boolCell(r.Notify, false), strings.Join(r.Languages, ", "))
	case Mutes:
		w.record(r.Account, boolCell(r.HideNotifications, true))
	case Followers, Blocks:
		w.record(r.Account)
	case DomainBlocks:
		w.record(r.Domain)
	case Bookmarks:
		w.record(r.URI)
	case Lists:
		w.record(r.List, r.Account)
	}
}

// Flush writes buffered data and returns the first error met.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	w.w.Flush()
	return w.w.Error()
}

func (w *Writer) record(fields ...string) {
	if w.err != nil {
		return
	}
	w.err = w.w.Write(fields)
}

func boolCell(b *bool, def bool) string {
	v := def
	if b != nil {
		v = *b
	}
	if v {
		return "true"
	}
	return "false"
}

// FailureWriter writes <type>_failures.csv: each row that was not applied,
// in the columns Mastodon reads for the type, plus Source (file:line) and
// Reason.
type FailureWriter struct {
	w *Writer
}

// NewFailureWriter writes the header of a failures file of type t to w.
func NewFailureWriter(w io.Writer, t Type) *FailureWriter {
	fw := &FailureWriter{w: &Writer{w: csv.NewWriter(w), t: t}}
	fw.w.record(t.failureHeader()...)
	return fw
}

// Write writes one failed row with the reason.
func (f *FailureWriter) Write(r Row, reason string) {
	var cells []string
	switch f.w.t {
	case Following:
		cells = []string{r.Account, boolCell(r.ShowBoosts, true), boolCell(r.Notify, false), strings.Join(r.Languages, ", ")}
	case Mutes:
		cells = []string{r.Account, boolCell(r.HideNotifications, true)}
	case Followers, Blocks:
		cells = []string{r.Account}
	case DomainBlocks:
		cells = []string{r.Domain}
	case Bookmarks:
		cells = []string{r.URI}
	case Lists:
		cells = []string{r.List, r.Account}
	}
	f.w.record(append(cells, r.Pos.String(), reason)...)
}

// WriteRaw writes a row that could not even be read, keeping its raw text
// in the first column.
func (f *FailureWriter) WriteRaw(e *RowError) {
	n := len(f.w.t.failureHeader()) - 2
	cells := make([]string, n)
	if n > 0 {
		cells[0] = e.Raw
	}
	f.w.record(append(cells, e.Pos.String(), e.Reason)...)
}

// Flush writes buffered data and returns the first error met.
func (f *FailureWriter) Flush() error { return f.w.Flush() }
