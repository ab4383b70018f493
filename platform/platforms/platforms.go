// Package platforms is the list of platforms this ferry speaks: the one
// place that names them. Adding a platform is a new package beside
// platform/mastodon and one line here.
package platforms

import (
	"os"

	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/platform/bluesky"
	"github.com/fedi-ferry/ferry/platform/mastodon"
	"github.com/fedi-ferry/ferry/platform/misskey"
)

// Registry returns the registry of every platform ferry ships, in the
// order servers are detected. Bluesky comes first: only a PDS answers
// describeServer with a DID, so it never claims a Mastodon-API server.
// Misskey comes before the Mastodon API, which takes every server with
// nodeinfo: it claims only servers whose nodeinfo names Misskey or a fork.
func Registry(env platform.Env) (*platform.Registry, error) {
	return platform.New(env,
		// FERRY_PLC_URL names another PLC directory than plc.directory,
		// for a private network of PDSes (and the end-to-end tests).
		bluesky.New(env, bluesky.Options{PLCURL: os.Getenv("FERRY_PLC_URL")}),
		misskey.New(env),
		mastodon.New(env),
	)
}
