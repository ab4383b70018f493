package misskey

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

// User is a user as Misskey packs it (UserEntityService.pack); i adds the
// account's own fields.
type User struct {
	ID          string   `json:"id"`
	Username    string   `json:"username"`
	Host        *string  `json:"host"` // nil for local users
	Name        string   `json:"name"`
	AlsoKnownAs []string `json:"alsoKnownAs,omitempty"`
	MovedTo     *string  `json:"movedTo,omitempty"`
}

// DriveFile is a file in the account's drive (DriveFileEntityService.pack).
type DriveFile struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Type        string  `json:"type"`
	Size        int64   `json:"size"`
	IsSensitive bool    `json:"isSensitive"`
	Comment     *string `json:"comment"`
	URL         string  `json:"url"`
	Blurhash    *string `json:"blurhash"`
}

// Poll is a note's poll.
type Poll struct {
	Multiple  bool    `json:"multiple"`
	ExpiresAt *string `json:"expiresAt"`
	Choices   []struct {
		Text  string `json:"text"`
		Votes int    `json:"votes"`
	} `json:"choices"`
}

// Note is a note as Misskey packs it (NoteEntityService.pack).
type Note struct {
	ID         string      `json:"id"`
	CreatedAt  string      `json:"createdAt"`
	UpdatedAt  *string     `json:"updatedAt,omitempty"` // Sharkey, after notes/edit
	UserID     string      `json:"userId"`
	User       User        `json:"user"`
	Text       *string     `json:"text"`
	CW         *string     `json:"cw"`
	Visibility string      `json:"visibility"`
	LocalOnly  bool        `json:"localOnly"`
	ReplyID    *string     `json:"replyId"`
	RenoteID   *string     `json:"renoteId"`
	Reply      *Note       `json:"reply,omitempty"`
	Renote     *Note       `json:"renote,omitempty"`
	FileIDs    []string    `json:"fileIds"`
	Files      []DriveFile `json:"files"`
	Poll       *Poll       `json:"poll,omitempty"`
	URI        *string     `json:"uri,omitempty"`
	URL        *string     `json:"url,omitempty"`
	Tags       []string    `json:"tags,omitempty"`
}

// Str returns *p, "" for nil.
func Str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Time parses one of Misskey's dates (ISO 8601 with milliseconds).
func Time(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// I returns the token's account (endpoints/i.ts).
func (c *Client) I(ctx context.Context) (User, error) {
	var u User
	return u, c.Call(ctx, "i", nil, &u, false)
}

// PollParams is notes/create's poll.
type PollParams struct {
	Choices   []string `json:"choices"`
	Multiple  bool     `json:"multiple,omitempty"`
	ExpiresAt *int64   `json:"expiresAt,omitempty"` // Unix milliseconds
	// ExpiredAfter is the poll's life from now, in milliseconds.
	ExpiredAfter *int64 `json:"expiredAfter,omitempty"`
}

// NoteParams are notes/create's parameters ferry sends.
type NoteParams struct {
	Text       string      `json:"text,omitempty"`
	CW         string      `json:"cw,omitempty"`
	Visibility string      `json:"visibility,omitempty"` // public, home, followers, specified
	LocalOnly  bool        `json:"localOnly,omitempty"`
	ReplyID    string      `json:"replyId,omitempty"`
	RenoteID   string      `json:"renoteId,omitempty"`
	FileIDs    []string    `json:"fileIds,omitempty"`
	Poll       *PollParams `json:"poll,omitempty"`
}

// CreateNote posts a note (endpoints/notes/create.ts).
func (c *Client) CreateNote(ctx context.Context, p NoteParams) (Note, error) {
	var out struct {
		CreatedNote Note `json:"createdNote"`
	}
	err := c.Call(ctx, "notes/create", p, &out, true)
	return out.CreatedNote, err
}

// EditParams are the parameters of Sharkey's notes/edit (and the Firefish
// line's): notes/create's with the note to edit as EditID. The note
// becomes what they say: whatever is left out (files, poll, the reply,
// the visibility) is dropped or reset, so callers send back what stays.
type EditParams struct {
	EditID string `json:"editId"`
	NoteParams
}

// EditNote edits a note (Sharkey's endpoints/notes/edit.ts).
func (c *Client) EditNote(ctx context.Context, p EditParams) (Note, error) {
	var out struct {
		CreatedNote Note `json:"createdNote"`
	}
	err := c.Call(ctx, "notes/edit", p, &out, true)
	return out.CreatedNote, err
}

// DeleteNote deletes a note (endpoints/notes/delete.ts).
func (c *Client) DeleteNote(ctx context.Context, id string) error {
	return c.Call(ctx, "notes/delete", map[string]string{"noteId": id}, nil, true)
}

// ShowNote reads a note (endpoints/notes/show.ts); a missing one is an
// error with code NO_SUCH_NOTE.
func (c *Client) ShowNote(ctx context.Context, id string) (Note, error) {
	var n Note
	return n, c.Call(ctx, "notes/show", map[string]string{"noteId": id}, &n, false)
}

// UserNotesParams are users/notes's parameters.
type UserNotesParams struct {
	UserID      string `json:"userId"`
	Limit       int    `json:"limit,omitempty"`
	SinceID     string `json:"sinceId,omitempty"`
	UntilID     string `json:"untilId,omitempty"`
	WithReplies bool   `json:"withReplies,omitempty"`
	WithRenotes *bool  `json:"withRenotes,omitempty"`
}

// UserNotes lists a user's notes (endpoints/users/notes.ts). Misskey
// versions order a sinceId-only page differently, so callers sort by ID.
func (c *Client) UserNotes(ctx context.Context, p UserNotesParams) ([]Note, error) {
	var out []Note
	return out, c.Call(ctx, "users/notes", p, &out, false)
}

// UploadFile puts a file in the account's drive (endpoints/drive/files/
// create.ts) with its alt text (comment) and sensitivity. It is sent with
// force: without it Misskey answers an upload whose content the drive
// already holds with that earlier file, its alt text and sensitivity
// included (DriveService.addFile: "Check if there is a file with the
// same hash").
func (c *Client) UploadFile(ctx context.Context, name string, data []byte, comment string, sensitive bool) (DriveFile, error) {
	fields := map[string]string{"isSensitive": strconv.FormatBool(sensitive), "force": "true"}
	if name != "" {
		fields["name"] = name
	}
	if comment != "" {
		fields["comment"] = comment
	}
	var f DriveFile
	if err := c.Upload(ctx, "drive/files/create", fields, name, data, &f); err != nil {
		return f, err
	}
	// The MisskeyIO fork answers a repeat of an upload made within the
	// last minute (same name, sensitivity and first MiB) with the earlier
	// file, whatever force says, and so with the earlier alt text. Such a
	// file is not the one asked for: upload again under another name.
	for try := 0; try < 3 && (Str(f.Comment) != comment || f.IsSensitive != sensitive); try++ {
		fields["name"] = uniqueName(name)
		f = DriveFile{}
		if err := c.Upload(ctx, "drive/files/create", fields, fields["name"], data, &f); err != nil {
			return f, err
		}
	}
	return f, nil
}

// uniqueName is name with a random suffix before its extension.
func uniqueName(name string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	ext := path.Ext(name)
	base := strings.TrimSuffix(name, ext)
	if base == "" {
		base = "file"
	}
	return base + "-" + hex.EncodeToString(b) + ext
}

// Permissions ferry asks for at MiAuth: reading the account and its notes,
// writing notes and drive files, the graph (following, blocks, mutes,
// lists) and the account's aliases.
var Permissions = []string{"read:account", "write:account", "write:notes", "read:drive", "write:drive",
	"read:following", "write:following", "read:blocks", "write:blocks", "read:mutes", "write:mutes", "read:favorites", "write:favorites"}

// NewSession returns a new MiAuth session ID (a random UUID).
func NewSession() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// MiAuthURL is the page where the person allows the app: /miauth/<session>
// with its name, the permissions, and the address the browser returns to
// ("" for none: the page then tells the person to go back to the app).
func MiAuthURL(base *url.URL, session, name, callback string, permissions []string) string {
	u := base.JoinPath("miauth", session)
	q := url.Values{"name": {name}, "permission": {strings.Join(permissions, ",")}}
	if callback != "" {
		q.Set("callback", callback)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// CheckMiAuth asks whether the person allowed the session
// (POST /api/miauth/<session>/check); ok is false until they have.
func (c *Client) CheckMiAuth(ctx context.Context, session string) (token string, u User, ok bool, err error) {
	var out struct {
		OK    bool   `json:"ok"`
		Token string `json:"token"`
		User  User   `json:"user"`
	}
	if err := c.Call(ctx, "miauth/"+url.PathEscape(session)+"/check", nil, &out, false); err != nil {
		return "", User{}, false, err
	}
	if out.OK && out.Token == "" {
		return "", User{}, false, fmt.Errorf("miauth check of %s: the server allowed the session but sent no token", session)
	}
	return out.Token, out.User, out.OK, nil
}
