// Package platform is the seam between ferry's commands and the protocol
// families it speaks. A platform (the Mastodon client API today; the AT
// Protocol and Misskey's API next) is a package that implements the roles
// declared here; one explicit Registry, built by package platforms with no
// init-time registration, maps an account's platform (state.Account.Platform,
// recorded at login) to its implementation, and a route's source type to
// its constructor. cmd/ferry names no platform and no source type: it asks
// the registry, and asserts a session's optional roles (rclone's Features),
// saying plainly when an account's platform lacks one.
//
// # Roles × platforms
//
// Where a role is an interface here, a platform provides it by implementing
// it; feeds and archives are not platforms (no accounts) but are sources
// (and archives sinks) that the registry builds from a route's source type.
//
//	role (interface)                 | Mastodon API (platform/mastodon)          | AT Protocol (platform/bluesky)          | feed (sources/feed)  | archive (sources/archive, sinks/archive)
//	---------------------------------+-------------------------------------------+-----------------------------------------+----------------------+-----------------------------------------
//	detect (Detector, Locator)       | nodeinfo + instance (fedi.Detect)         | describeServer; handle → DID → PDS      | —                    | —
//	login (Authenticator)            | OAuth 2 + PKCE, loopback or OOB; --token  | handle + app password; tokens rotated   | —                    | —
//	account check (Session)          | verify_credentials, instance limits       | getSession, Bluesky's limits            | —                    | —
//	revoke (Revoker)                 | /oauth/revoke                             | deleteSession                           | —                    | —
//	Source (SourceOpener)            | statuses + streaming (sources/mastodon)   | records + stream (sources/bluesky)      | gofeed, Page.Wait    | archive reader (Source)
//	Sink (SinkOpener)                | statuses, media, Idempotency-Key          | post records (sinks/bluesky)            | —                    | archive writer (Sink)
//	graph export/import (GraphPorter)| REST + CSV (migrate)                      | —                                       | —                    | CSV files (migrate)
//	archive (Archiver)               | statuses, favourites, bookmarks, media    | —                                       | —                    | —
//	Move (Mover)                     | alias + Move (migrate/move)               | —                                       | —                    | —
//	request budget (Metered)         | paced transport (fedi.Transport)          | —                                       | —                    | —
//
// Misskey's API (platform/misskey, client misskey) provides detect (nodeinfo
// + meta), login (MiAuth; --token), the account check (i), Source
// (users/notes + streaming), Sink (notes, drive), graph export/import
// (migrate through migrate.API), archive (sinks/archive through its API),
// Move (migrate/move through move.SideAPI; the Move itself is guided) and
// Metered; not revoke.
//
// Every Source runs sources/sourcetest and every Sink runs sinks/sinktest
// against its real origin or destination: GoToSocial for the Mastodon API
// (TestE2E* tests), a local Bluesky PDS for the AT Protocol, feed documents
// served over HTTP, archive directories written by ferry and in Mastodon's
// export layout. The Bluesky source reads post records (listRecords) and
// streams the PDS's subscribeRepos; it reads reposts too when the route
// mirrors boosts (SourceOptions.Boosts).
//
// # Adding a platform, step by step
//
//  1. Write its client package (as fedi is the Mastodon API's): HTTP,
//     authentication, errors. Nothing in it knows ferry's other packages.
//  2. Write its Source and Sink as subpackages of sources and sinks
//     (sources/<name>, sinks/<name>), and run sourcetest and sinktest on
//     them against its real server in an e2e test (add the server to
//     internal/testenv if it can run here).
//  3. Write platform/<name>: a Platform (Name, Open) whose Session
//     implements the roles the protocol has — SourceOpener, SinkOpener,
//     and where possible GraphPorter, Archiver, Mover, Revoker, Metered —
//     and Detector (answer ErrNotMine for servers that speak something
//     else) and Authenticator (Login). Roles it lacks are left out, not
//     stubbed: callers report "ferry cannot … on <platform> accounts".
//  4. Add it to the list in package platforms, in detection order (more
//     specific detectors first).
//  5. Nothing else changes: login records the new platform on the
//     account, and routes (source = { type = "account", account = "…" }),
//     export, import, archive, publish and migrate take the account
//     through the registry. Document the platform's row in the table above
//     and in ARCHITECTURE.md.
//
// A new source type that is not a platform (another kind of document, a
// directory) is a sources/<name> package that passes sourcetest, a
// Source* constant, one case in Registry.Source, the config file's source
// table, and one case each where Routes reads that table (sourceSpec,
// DescribeSource).
package platform
