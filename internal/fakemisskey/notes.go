package fakemisskey

import (
	"bytes"
	"crypto/md5"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Errors of the note endpoints (endpoints/notes/*.ts, meta.errors).
var (
	errNoSuchNoteShow   = apiError{400, "No such note.", "NO_SUCH_NOTE", "24fcbfc6-2e37-42b6-8388-c29b3861a08d", "client", nil}
	errNoSuchNoteDelete = apiError{400, "No such note.", "NO_SUCH_NOTE", "490be23f-8c1f-4796-819f-94cb4f9d1630", "client", nil}
	errAccessDenied     = apiError{400, "Access denied.", "ACCESS_DENIED", "fe8d7103-0ea8-4ec3-814d-f8b401dc69e9", "client", nil}
	errNoSuchReply      = apiError{400, "No such reply target.", "NO_SUCH_REPLY_TARGET", "749ee0f6-d3da-459a-bf02-282e2da4292c", "client", nil}
	errNoSuchRenote     = apiError{400, "No such renote target.", "NO_SUCH_RENOTE", "b5c90186-4ab0-49c8-9bba-a1f76c282ba4", "client", nil}
	errNoSuchFile       = apiError{400, "Some files are not found.", "NO_SUCH_FILE", "b6992544-63e7-67f0-fa7f-32444b1b5306", "client", nil}
	errExpiredPoll      = apiError{400, "Poll is already expired.", "CANNOT_CREATE_ALREADY_EXPIRED_POLL", "04da457d-b083-4055-9082-955525eda5a5", "client", nil}
	errMaxLength        = apiError{400, "You tried posting a note which is too long.", "MAX_LENGTH", "3ac74a84-8fd5-4bb0-870f-01804f82ce16", "client", nil}
	errNoSuchUser       = apiError{400, "No such user.", "NO_SUCH_USER", "27e494ba-2ac2-48e8-893b-10d4d8c2387b", "client", nil}
)

// notesCreateParams is notes/create.ts's paramDef; text's maxLength is the
// server's maxNoteTextLength.
func (s *Server) notesCreateParams() schema {
	return schema{props: map[string]*param{
		"visibility":         enum("public", "home", "followers", "specified"),
		"visibleUserIds":     arr(id(), 0, 0),
		"cw":                 maxLen(minLen(nstr(), 1), 100),
		"localOnly":          boolean(),
		"reactionAcceptance": {typ: "string", nullable: true, enum: []string{"likeOnly", "likeOnlyForRemote", "nonSensitiveOnly", "nonSensitiveOnlyForLocalLikeOnlyForRemote"}},
		"noExtractMentions":  boolean(),
		"noExtractHashtags":  boolean(),
		"noExtractEmojis":    boolean(),
		"replyId":            nid(),
		"renoteId":           nid(),
		"channelId":          nid(),
		"text":               minLen(nstr(), 1),
		"fileIds":            arr(id(), 1, 16),
		"mediaIds":           arr(id(), 1, 16),
		"poll":               pollParam(),
	}, anyOf: [][]string{{"text"}, {"fileIds"}, {"mediaIds"}, {"poll"}, {"renoteId"}}}
}

func pollParam() *param {
	choice := maxLen(minLen(str(), 1), 50)
	return &param{typ: "object", nullable: true, props: map[string]*param{
		"choices":      arr(choice, 2, 10),
		"multiple":     boolean(),
		"expiresAt":    {typ: "integer", nullable: true},
		"expiredAfter": {typ: "integer", nullable: true, min: ptr(int64(1))},
	}, required: []string{"choices"}}
}

func ptr[T any](v T) *T { return &v }

// notesEditParams is Sharkey's notes/edit.ts paramDef: notes/create's,
// with the note to edit as editId and a content warning of up to 250.
func (s *Server) notesEditParams() schema {
	sc := s.notesCreateParams()
	sc.props["editId"] = id()
	sc.props["cw"] = maxLen(minLen(nstr(), 1), 250)
	return sc
}

var usersNotesParams = schema{props: map[string]*param{
	"userId":           id(),
	"withReplies":      boolean(),
	"withRenotes":      boolean(),
	"withChannelNotes": boolean(),
	"limit":            integer(1, 100),
	"sinceId":          id(),
	"untilId":          id(),
	"sinceDate":        anyInt(),
	"untilDate":        anyInt(),
	"allowPartial":     boolean(),
	"withFiles":        boolean(),
}, required: []string{"userId"}}

var driveCreateParams = schema{props: map[string]*param{
	"folderId":    nid(),
	"name":        nstr(),
	"comment":     maxLen(nstr(), 512),
	"isSensitive": boolean(),
	"force":       boolean(),
}}

func str0(v any) string {
	s, _ := v.(string)
	return s
}

func (s *Server) fileIDs(c *call) ([]string, *apiError) {
	raw, ok := c.body["fileIds"].([]any)
	if !ok {
		raw, _ = c.body["mediaIds"].([]any)
	}
	var ids []string
	for _, v := range raw {
		f := s.files[v.(string)]
		if f == nil || f.UserID != c.user.ID {
			return nil, &errNoSuchFile
		}
		ids = append(ids, f.ID)
	}
	return ids, nil
}

func (s *Server) readPoll(c *call) (*notePoll, *apiError) {
	m, ok := c.body["poll"].(map[string]any)
	if !ok {
		return nil, nil
	}
	p := &notePoll{}
	for _, ch := range m["choices"].([]any) {
		p.Choices = append(p.Choices, ch.(string))
	}
	p.Multiple, _ = m["multiple"].(bool)
	now := time.Now()
	if n, ok := m["expiresAt"].(json.Number); ok {
		ms, _ := n.Int64()
		t := time.UnixMilli(ms)
		if t.Before(now) {
			return nil, &errExpiredPoll
		}
		p.ExpiresAt = &t
	} else if n, ok := m["expiredAfter"].(json.Number); ok {
		ms, _ := n.Int64()
		t := now.Add(time.Duration(ms) * time.Millisecond)
		p.ExpiresAt = &t
	}
	return p, nil
}

// tooLong is the note length check. Misskey's is only the paramDef's
// text maxLength (MAX_NOTE_TEXT_LENGTH), which Ajv counts in code points
// and refuses with INVALID_PARAM "#/then/properties/text/maxLength":
// checked against Misskey 2025.4.x (MisskeyIO fork) on loopback, which
// took 3000 emoji and never answered MAX_LENGTH. Sharkey's notes/create.ts
// adds "ps.text.length > config.maxNoteLength", JavaScript's length in
// UTF-16 code units (an emoji outside the BMP counts two), answered with
// MAX_LENGTH; kept for Flavour "sharkey" (not checked against a real
// Sharkey).
func (s *Server) tooLong(text string) *apiError {
	if s.cfg.Flavour == "sharkey" {
		if len(utf16.Encode([]rune(text))) > s.cfg.MaxNoteTextLength {
			return &errMaxLength
		}
		return nil
	}
	if utf8.RuneCountInString(text) > s.cfg.MaxNoteTextLength {
		e := invalid(&invalidParam{"#/then/properties/text/maxLength",
			fmt.Sprintf("must NOT have more than %d characters", s.cfg.MaxNoteTextLength)})
		return &e
	}
	return nil
}

func (s *Server) notesCreate(c *call) (any, *apiError) {
	if err := s.tooLong(str0(c.body["text"])); err != nil {
		return nil, err
	}
	n := &note{UserID: c.user.ID, Text: str0(c.body["text"]), CW: str0(c.body["cw"]), Visibility: "public",
		ReplyID: str0(c.body["replyId"]), RenoteID: str0(c.body["renoteId"]), CreatedAt: time.Now()}
	if v := str0(c.body["visibility"]); v != "" {
		n.Visibility = v
	}
	n.LocalOnly, _ = c.body["localOnly"].(bool)
	if n.ReplyID != "" && s.notes[n.ReplyID] == nil {
		return nil, &errNoSuchReply
	}
	if n.RenoteID != "" && s.notes[n.RenoteID] == nil {
		return nil, &errNoSuchRenote
	}
	var err *apiError
	if n.FileIDs, err = s.fileIDs(c); err != nil {
		return nil, err
	}
	if n.Poll, err = s.readPoll(c); err != nil {
		return nil, err
	}
	n.ID = s.newID()
	s.notes[n.ID] = n
	c.user.NotesCount++
	s.publishNote(n)
	return map[string]any{"createdNote": s.packNote(n, 1)}, nil
}

// Errors of Sharkey's notes/edit.ts.
var (
	errNeedsEditID    = apiError{400, "You need to specify `editId`.", "NEEDS_EDIT_ID", "d697edc8-8c73-4de8-bded-35fd198b79e5", "client", nil}
	errNoSuchNoteEdit = apiError{400, "No such note.", "NO_SUCH_NOTE", "eef6c173-3010-4a23-8674-7c4fcaeba719", "client", nil}
	errNotTheAuthor   = apiError{400, "You are not the author of this note.", "YOU_ARE_NOT_THE_AUTHOR", "c6e61685-411d-43d0-b90a-a448d2539001", "client", nil}
)

// notesEdit is Sharkey's notes/edit.ts (NoteEditService.edit): the note
// becomes what the request says, as notes/create would make it — text,
// cw, files, poll, visibility (public when left out), reply and
// local-only; what the request leaves out is gone.
func (s *Server) notesEdit(c *call) (any, *apiError) {
	if err := s.tooLong(str0(c.body["text"])); err != nil {
		return nil, err
	}
	if str0(c.body["editId"]) == "" {
		return nil, &errNeedsEditID
	}
	n := s.notes[str0(c.body["editId"])]
	if n == nil {
		return nil, &errNoSuchNoteEdit
	}
	if n.UserID != c.user.ID {
		return nil, &errNotTheAuthor
	}
	if r := str0(c.body["replyId"]); r != "" && s.notes[r] == nil {
		return nil, &errNoSuchReply
	}
	ids, err := s.fileIDs(c)
	if err != nil {
		return nil, err
	}
	p, err := s.readPoll(c)
	if err != nil {
		return nil, err
	}
	n.Text, n.CW, n.FileIDs, n.Poll = str0(c.body["text"]), str0(c.body["cw"]), ids, p
	n.Visibility, n.ReplyID = "public", str0(c.body["replyId"])
	if v := str0(c.body["visibility"]); v != "" {
		n.Visibility = v
	}
	n.LocalOnly, _ = c.body["localOnly"].(bool)
	now := time.Now()
	n.UpdatedAt = &now
	s.publishUpdate(n.ID, "updated", map[string]any{"cw": nilIfEmpty(n.CW), "text": nilIfEmpty(n.Text)})
	return map[string]any{"createdNote": s.packNote(n, 1)}, nil
}

func (s *Server) notesDelete(c *call) (any, *apiError) {
	n := s.notes[str0(c.body["noteId"])]
	if n == nil {
		return nil, &errNoSuchNoteDelete
	}
	if n.UserID != c.user.ID {
		return nil, &errAccessDenied
	}
	s.deleteCascade(n.ID)
	return nil, nil
}

// deleteCascade deletes the note and, as the database's foreign keys
// (replyId, renoteId ON DELETE CASCADE) do, every reply, renote and quote
// of it, of any author, down the chains; each is published "deleted".
// Checked against Misskey 2025.4.x (MisskeyIO fork) on loopback: deleting
// a note deleted another account's reply, renote and quote of it, which
// then answered NO_SUCH_NOTE.
func (s *Server) deleteCascade(id string) {
	delete(s.notes, id)
	s.publishUpdate(id, "deleted", map[string]any{"deletedAt": time.Now().UTC().Format("2006-01-02T15:04:05.000Z")})
	for _, x := range s.notes {
		if x.ReplyID == id || x.RenoteID == id {
			s.deleteCascade(x.ID)
		}
	}
}

// visibleTo reports whether viewer (nil: anonymous) may see n.
func (s *Server) visibleTo(n *note, viewer *user) bool {
	if viewer != nil && viewer.ID == n.UserID {
		return true
	}
	return n.Visibility == "public" || n.Visibility == "home"
}

func (s *Server) notesShow(c *call) (any, *apiError) {
	n := s.notes[str0(c.body["noteId"])]
	if n == nil || !s.visibleTo(n, c.user) {
		return nil, &errNoSuchNoteShow
	}
	return s.packNote(n, 1), nil
}

// usersNotes answers users/notes.ts: the user's notes, newest first; with
// sinceId alone, the oldest after it, oldest first (makePaginationQuery
// orders ascending then). Replies to other users' notes only withReplies;
// renotes unless withRenotes is false.
func (s *Server) usersNotes(c *call) (any, *apiError) {
	uid := str0(c.body["userId"])
	if s.users[uid] == nil {
		// No error for an unknown user: an empty list (checked against
		// Misskey 2025.4.x, MisskeyIO fork, on loopback).
		return []any{}, nil
	}
	limit := 10
	if n, ok := c.body["limit"].(json.Number); ok {
		v, _ := n.Int64()
		limit = int(v)
	}
	withReplies, _ := c.body["withReplies"].(bool)
	withRenotes := true
	if v, ok := c.body["withRenotes"].(bool); ok {
		withRenotes = v
	}
	since, until := str0(c.body["sinceId"]), str0(c.body["untilId"])
	var out []*note
	for _, n := range s.notes {
		if n.UserID != uid || !s.visibleTo(n, c.user) {
			continue
		}
		if since != "" && n.ID <= since || until != "" && n.ID >= until {
			continue
		}
		if n.ReplyID != "" && !withReplies {
			if p := s.notes[n.ReplyID]; p == nil || p.UserID != uid {
				continue
			}
		}
		if n.RenoteID != "" && n.Text == "" && !withRenotes {
			continue
		}
		out = append(out, n)
	}
	asc := since != "" && until == ""
	sort.Slice(out, func(i, j int) bool {
		if asc {
			return out[i].ID < out[j].ID
		}
		return out[i].ID > out[j].ID
	})
	if len(out) > limit {
		out = out[:limit]
	}
	res := make([]any, 0, len(out))
	for _, n := range out {
		res = append(res, s.packNote(n, 1))
	}
	return res, nil
}

// packNote is NoteEntityService.pack's shape; depth bounds the reply and
// renote notes packed inside.
func (s *Server) packNote(n *note, depth int) map[string]any {
	files := []any{}
	for _, id := range n.FileIDs {
		if f := s.files[id]; f != nil {
			files = append(files, s.packFile(f))
		}
	}
	m := map[string]any{
		"id": n.ID, "createdAt": n.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z"), "userId": n.UserID,
		"user": s.packUser(s.users[n.UserID]), "text": nilIfEmpty(n.Text), "cw": nilIfEmpty(n.CW),
		"visibility": n.Visibility, "localOnly": n.LocalOnly, "replyId": nilIfEmpty(n.ReplyID),
		"renoteId": nilIfEmpty(n.RenoteID), "fileIds": append([]string{}, n.FileIDs...), "files": files,
		"reactions": map[string]int{}, "renoteCount": 0, "repliesCount": 0, "reactionAcceptance": nil,
		"uri": nil, "url": nil,
	}
	if n.Poll != nil {
		var ch []any
		for _, c := range n.Poll.Choices {
			ch = append(ch, map[string]any{"text": c, "votes": 0, "isVoted": false})
		}
		var exp any
		if n.Poll.ExpiresAt != nil {
			exp = n.Poll.ExpiresAt.UTC().Format("2006-01-02T15:04:05.000Z")
		}
		m["poll"] = map[string]any{"multiple": n.Poll.Multiple, "expiresAt": exp, "choices": ch}
	}
	if n.UpdatedAt != nil && s.cfg.Flavour == "sharkey" {
		m["updatedAt"] = n.UpdatedAt.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	if depth > 0 {
		if r := s.notes[n.ReplyID]; r != nil {
			m["reply"] = s.packNote(r, depth-1)
		}
		if r := s.notes[n.RenoteID]; r != nil {
			m["renote"] = s.packNote(r, depth-1)
		}
	}
	return m
}

func (s *Server) packFile(f *driveFile) map[string]any {
	return map[string]any{
		"id": f.ID, "createdAt": f.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z"), "name": f.Name,
		"type": f.Type, "md5": f.MD5, "size": f.Size, "isSensitive": f.Sensitive, "blurhash": nil,
		"properties": map[string]any{}, "url": s.URL + "/files/" + f.ID, "thumbnailUrl": nil,
		"comment": nilIfEmpty(f.Comment), "folderId": nil, "folder": nil, "userId": f.UserID, "user": nil,
	}
}

// readMultipart reads drive/files/create's form: the fields become the
// body, booleans cast from their text as ApiCallService does ("Cast non
// JSON input").
func (s *Server) readMultipart(c *call) *apiError {
	if err := c.r.ParseMultipartForm(64 << 20); err != nil {
		return &errFileRequired
	}
	c.body = map[string]any{}
	for k, vs := range c.r.MultipartForm.Value {
		v := vs[0]
		if p, ok := driveCreateParams.props[k]; ok && p.typ == "boolean" {
			var b any
			if json.Unmarshal([]byte(v), &b) != nil {
				e := apiError{400, "Invalid param.", "INVALID_PARAM", "0b5f1631-7c1a-41a6-b399-cce335f34d85", "client",
					map[string]any{"param": k, "reason": "cannot cast to boolean"}}
				return &e
			}
			c.body[k] = b
			continue
		}
		c.body[k] = v
	}
	fhs := c.r.MultipartForm.File["file"]
	if len(fhs) == 0 {
		return &errFileRequired
	}
	f, err := fhs[0].Open()
	if err != nil {
		return &errFileRequired
	}
	defer f.Close()
	data, _ := io.ReadAll(f)
	c.file = &upload{name: fhs[0].Filename, data: data}
	return nil
}

// Errors of drive/files/create.ts (and DriveService's checks it maps).
var (
	errMaxFileSize  = apiError{413, "Cannot upload the file because it exceeds the maximum file size.", "MAX_FILE_SIZE_EXCEEDED", "b9d8c348-33f0-4673-b9a9-5d4da058977a", "client", nil}
	errUnallowed    = apiError{400, "Cannot upload the file because it is an unallowed file type.", "UNALLOWED_FILE_TYPE", "4becd248-7f2c-48c4-a9f0-75edc4f9a1ea", "client", nil}
	errNoFreeSpace  = apiError{400, "Cannot upload the file because you have no free space of drive.", "NO_FREE_SPACE", "d08dbc37-a6a9-463a-8c47-96c32ab5f064", "client", nil}
	errInvalidFName = apiError{400, "Invalid file name.", "INVALID_FILE_NAME", "f449b209-0c60-4e51-84d5-29486263bfd4", "client", nil}
)

func (s *Server) driveCreate(c *call) (any, *apiError) {
	sum := fmt.Sprintf("%x", md5.Sum(c.file.data))
	if force, _ := c.body["force"].(bool); !force {
		// DriveService.addFile: a file whose content the drive already
		// holds is answered with the earlier file, as it was.
		for _, f := range s.files {
			if f.UserID == c.user.ID && f.MD5 == sum {
				return s.packFile(f), nil
			}
		}
	}
	if int64(len(c.file.data)) > s.cfg.MaxFileSize {
		return nil, &errMaxFileSize
	}
	// Misskey sniffs the type from the content (file-type), never trusting
	// the client's.
	typ, _, _ := strings.Cut(http.DetectContentType(c.file.data), ";")
	if !s.typeAllowed(typ) {
		return nil, &errUnallowed
	}
	var used int64
	for _, f := range s.files {
		if f.UserID == c.user.ID {
			used += f.Size
		}
	}
	if used+int64(len(c.file.data)) > s.cfg.DriveCapacityMB<<20 {
		return nil, &errNoFreeSpace
	}
	name := strings.TrimSpace(str0(c.body["name"]))
	if name == "" {
		name = c.file.name
	}
	if strings.ContainsAny(name, `/\`) || len(name) > 200 {
		return nil, &errInvalidFName
	}
	if name == "" || name == "blob" {
		name = "untitled"
	}
	sensitive, _ := c.body["isSensitive"].(bool)
	if s.cfg.MisskeyIO {
		// The MisskeyIO fork's upload idempotency: within 60 s, a file
		// with the same folder, name, sensitivity and first MiB is
		// answered with the earlier file, its comment included, whatever
		// force says (checked against Misskey 2025.4.x, MisskeyIO fork,
		// on loopback).
		head := c.file.data[:min(len(c.file.data), 1<<20)]
		for _, f := range s.files {
			if f.UserID == c.user.ID && f.Name == path.Base(name) && f.Sensitive == sensitive &&
				time.Since(f.CreatedAt) < time.Minute && bytes.Equal(f.data[:min(len(f.data), 1<<20)], head) {
				return s.packFile(f), nil
			}
		}
	}
	f := &driveFile{ID: s.newID(), UserID: c.user.ID, Name: path.Base(name), Type: typ, Comment: str0(c.body["comment"]), MD5: sum,
		Size: int64(len(c.file.data)), CreatedAt: time.Now(), data: c.file.data}
	f.Sensitive = sensitive
	s.files[f.ID] = f
	return s.packFile(f), nil
}

func (s *Server) typeAllowed(typ string) bool {
	for _, p := range s.allowedTypes() {
		if p == "*/*" || p == typ || strings.HasSuffix(p, "/*") && strings.HasPrefix(typ, strings.TrimSuffix(p, "*")) {
			return true
		}
	}
	return false
}

// serveFile serves a drive file's bytes (/files/:id, the server's own
// file store).
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	f := s.files[strings.TrimPrefix(r.URL.Path, "/files/")]
	s.mu.Unlock()
	if f == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", f.Type)
	w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
	_, _ = w.Write(f.data)
}

// NoteCount returns how many notes the user has.
func (s *Server) NoteCount(userID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, x := range s.notes {
		if x.UserID == userID {
			n++
		}
	}
	return n
}

// String describes the server for test logs.
func (s *Server) String() string {
	return fmt.Sprintf("fake %s %s at %s", s.cfg.Flavour, s.cfg.Version, s.URL)
}
