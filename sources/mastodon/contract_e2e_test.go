package mastodon

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/sources/sourcetest"
)

// accountOrigin posts, edits and deletes through the account's own API
// token, beside the source.
type accountOrigin struct{ u *testenv.User }

func (o accountOrigin) Post(ctx context.Context, text string) (string, error) {
	var st fedi.Status
	err := o.u.API(ctx, http.MethodPost, "/api/v1/statuses", url.Values{"status": {text}, "visibility": {"public"}}, &st)
	return st.ID, err
}

func (o accountOrigin) Edit(ctx context.Context, id, text string) error {
	return o.u.API(ctx, http.MethodPut, "/api/v1/statuses/"+url.PathEscape(id), url.Values{"status": {text}}, nil)
}

func (o accountOrigin) Delete(ctx context.Context, id string) error {
	return o.u.API(ctx, http.MethodDelete, "/api/v1/statuses/"+url.PathEscape(id), nil, nil)
}

// The shared source contract against a real GoToSocial account, in pages
// of 2 so that resuming crosses pages; the stream reports created, edited
// and deleted posts.
func TestE2ESourceContractGoToSocial(t *testing.T) {
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	u, err := in.CreateUser(t.Context(), "", true)
	if err != nil {
		t.Fatal(err)
	}
	sourcetest.Run(t, newSource(t, env, in, u, 2), accountOrigin{u}, sourcetest.Options{Batch: 5})
}
