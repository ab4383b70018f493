// Package publish brings the posts of an archive back on another account:
// plan → journal → apply. The plan (every post to publish, already fitted
// to the target: text, visibility, media, split parts) is frozen in the
// journal first; each item is then published once, with a key stable for
// (job, original post), and its new ID recorded in the same transaction
// that marks it done. A run killed at any point resumes with no duplicate:
// an item that was being published when the process died is looked for on
// the target (sinks.Finder) before it is published again.
package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/fedi-ferry/ferry/journal"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	"github.com/fedi-ferry/ferry/textfit"
)

// Journal is what a publish needs of the write journal (package journal
// documents the contract). The state store satisfies it.
type Journal interface {
	CreateJob(ctx context.Context, j journal.Job) (journal.Job, bool, error)
	UpdateJob(ctx context.Context, id int64, status, params string) error
	FreezePlan(ctx context.Context, jobID int64, items []journal.Item) error
	Items(ctx context.Context, jobID int64, f journal.ItemFilter) ([]journal.Item, error)
	Item(ctx context.Context, jobID int64, step, key string) (journal.Item, error)
	BeginItem(ctx context.Context, jobID int64, step, key string) (int, error)
	FinishItem(ctx context.Context, it journal.Item) error
	ItemCounts(ctx context.Context, jobID int64) (map[string]map[journal.ItemStatus]int, error)
}

// Mode is how posts are brought back.
type Mode string

// The modes.
const (
	// Backdate keeps the original dates and notifies nobody (GoToSocial ≥
	// 0.18 backfill); the sink must be a Backdater.
	Backdate Mode = "backdate"
	// Repost publishes the posts anew, unlisted by default, with a line
	// saying when and where they were first posted.
	Repost Mode = "repost"
)

// JobKind is the journal kind of archive publishes.
const JobKind = "archive-publish"

const step = "post"

// Options choose what is published and how. The zero value of each field
// is its documented default.
type Options struct {
	Mode Mode
	// Since and Until bound the original dates (Until exclusive).
	Since, Until time.Time
	// Visibility lists the original visibilities to publish; empty means
	// public, unlisted and private (direct messages are left out).
	Visibility []post.Visibility
	// SkipRepliesToOthers leaves out replies to posts not in the archive;
	// otherwise they are published as new posts with an "in reply to" link.
	SkipRepliesToOthers bool
	// BoostsAsLinks publishes boosts as a post linking the boosted post;
	// by default boosts are skipped.
	BoostsAsLinks bool
	// RepostVisibility caps the visibility in repost mode; "" means
	// unlisted. A narrower original visibility is kept.
	RepostVisibility post.Visibility
	// Note is the line added in repost mode; {date} and {url} are replaced.
	// NoNote leaves it out.
	Note   string
	NoNote bool
	// StripHashtags turns #tags into plain words.
	StripHashtags bool
	// KeepMentions leaves mentions live. By default they are neutralised
	// ("@\u200bname@host") so that nobody is pinged.
	KeepMentions bool
	// Truncate cuts posts over the target's limit with a link to the
	// original, instead of splitting them into a self-thread.
	Truncate bool
	// NativePolls re-creates polls as polls (repost mode; votes start
	// again) instead of text with the original results.
	NativePolls bool
}

// DefaultNote is the repost line.
const DefaultNote = "Originally posted on {date} at {url}"

// Payload is one journal item: a part of a post, ready for the sink.
type Payload struct {
	Post        post.Post `json:"post"`
	ParentKey   string    `json:"parent_key,omitempty"` // the item whose new post this replies to
	PublishedAt time.Time `json:"published_at"`         // zero in repost mode
	Original    string    `json:"original"`             // the original post's URI
}

// Planned is one item of a plan, for dry runs and the journal.
type Planned struct {
	Key     string
	Payload Payload
}

// Skip counts why posts were left out of a plan.
type Skip struct {
	Deleted, Filtered, Boosts, RepliesToOthers, Visibility int
}

// Plan turns the archive's posts (each, oldest first) into the items to
// publish for a target with limits lim.
func Plan(ctx context.Context, each func(func(post.Post) error) error, o Options, lim post.Limits, log *slog.Logger) ([]Planned, Skip, []string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if lim.MaxChars <= 0 {
		lim.MaxChars = 500
	}
	if lim.MaxMedia <= 0 {
		lim.MaxMedia = 4
	}
	vis := o.Visibility
	if len(vis) == 0 {
		vis = []post.Visibility{post.Public, post.Unlisted, post.Private}
	}
	var plan []Planned
	lastPart := map[string]string{} // original → key of its last part, for posts split in parts
	var skip Skip
	var warnings []string
	err := each(func(p post.Post) error {
		switch {
		case p.Deleted:
			skip.Deleted++
			return nil
		case !o.Since.IsZero() && p.CreatedAt.Before(o.Since), !o.Until.IsZero() && !p.CreatedAt.Before(o.Until):
			skip.Filtered++
			return nil
		case !contains(vis, p.Visibility):
			skip.Visibility++
			return nil
		case p.IsBoost() && !o.BoostsAsLinks:
			skip.Boosts++
			return nil
		case p.ReplyToURI != "" && p.InReplyTo == "" && o.SkipRepliesToOthers:
			skip.RepliesToOthers++
			return nil
		}
		parts, warn := prepare(p, o, lim)
		for _, w := range warn {
			warnings = append(warnings, p.OriginID+": "+w)
			log.Warn(w, "post", p.OriginID)
		}
		for i, part := range parts {
			key := p.OriginID
			parent := p.InReplyTo
			if i > 0 {
				key = fmt.Sprintf("%s#%d", p.OriginID, i+1)
				parent = plan[len(plan)-1].Key
			}
			pl := Payload{Post: part, ParentKey: parent, Original: p.OriginID}
			if o.Mode == Backdate {
				pl.PublishedAt = p.CreatedAt.Add(time.Duration(i) * time.Second)
			}
			plan = append(plan, Planned{Key: key, Payload: pl})
		}
		if len(parts) > 1 {
			lastPart[p.OriginID] = plan[len(plan)-1].Key
		}
		return ctx.Err()
	})
	// A reply to a split post continues its thread from the last part.
	for i, p := range plan {
		if last, ok := lastPart[p.Payload.ParentKey]; ok && p.Payload.Original != p.Payload.ParentKey {
			plan[i].Payload.ParentKey = last
		}
	}
	return parentsFirst(plan), skip, warnings, err
}

// parentsFirst reorders plan (stably) so that every item comes after the
// item it replies to: archives order posts by date, and dates can tie or
// disagree with the thread (clock skew, backdated posts).
func parentsFirst(plan []Planned) []Planned {
	inPlan := make(map[string]bool, len(plan))
	for _, p := range plan {
		inPlan[p.Key] = true
	}
	out := make([]Planned, 0, len(plan))
	emitted := make(map[string]bool, len(plan))
	waiting := map[string][]Planned{}
	var emit func(p Planned)
	emit = func(p Planned) {
		out = append(out, p)
		emitted[p.Key] = true
		ws := waiting[p.Key]
		delete(waiting, p.Key)
		for _, w := range ws {
			emit(w)
		}
	}
	for _, p := range plan {
		if pk := p.Payload.ParentKey; pk != "" && inPlan[pk] && !emitted[pk] {
			waiting[pk] = append(waiting[pk], p)
			continue
		}
		emit(p)
	}
	for _, p := range plan { // cycles (damaged archives): publish what is left as it comes
		if !emitted[p.Key] {
			out = append(out, p)
			emitted[p.Key] = true
		}
	}
	return out
}

func contains(vs []post.Visibility, v post.Visibility) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// prepare fits one original post to the target: text rewrites, the repost
// line, visibility, media, and the split into parts.
func prepare(p post.Post, o Options, lim post.Limits) ([]post.Post, []string) {
	var warn []string
	out := post.Post{OriginID: p.OriginID, URI: p.URI, URL: p.URL, CreatedAt: p.CreatedAt, Summary: p.Summary,
		Sensitive: p.Sensitive, Visibility: p.Visibility, Language: p.Language}
	link := p.URL
	if link == "" {
		link = p.URI
	}
	text := p.Text
	if p.IsBoost() {
		text = "🔁 " + p.BoostOf
		link = p.BoostOf
	}
	if p.ReplyToURI != "" && p.InReplyTo == "" {
		text = "↪ " + p.ReplyToURI + "\n\n" + text
	}
	if !o.KeepMentions {
		text = textfit.NeutraliseMentions(text, p.Mentions)
	}
	if o.StripHashtags {
		text = textfit.StripHashtags(text)
	}
	if p.Poll != nil {
		if o.Mode == Repost && o.NativePolls {
			poll := *p.Poll
			poll.ExpiresAt = time.Time{}
			out.Poll = &poll
		} else {
			text += pollText(p.Poll)
		}
	}
	note := ""
	if o.Mode == Repost {
		ceiling := o.RepostVisibility
		if ceiling == "" {
			ceiling = post.Unlisted
		}
		if ceiling.Rank() > out.Visibility.Rank() {
			out.Visibility = ceiling
		}
		if !o.NoNote {
			note = o.Note
			if note == "" {
				note = DefaultNote
			}
			note = strings.NewReplacer("{date}", p.CreatedAt.UTC().Format("2006-01-02"), "{url}", link).Replace(note)
		}
	}
	for _, m := range p.Media {
		if m.Path == "" && !strings.HasPrefix(m.URL, "https://") && !strings.HasPrefix(m.URL, "http://") {
			warn = append(warn, "a media file is missing from the archive; published without it: "+m.URL)
			continue
		}
		if len(out.Media) == lim.MaxMedia {
			warn = append(warn, fmt.Sprintf("more media than the target allows (%d); the rest are left out", lim.MaxMedia))
			break
		}
		out.Media = append(out.Media, m)
	}
	out.Text = strings.TrimSpace(text)
	if note != "" {
		out.Text = strings.TrimSpace(out.Text + "\n\n" + note)
	}
	if out.Text == "" && len(out.Media) == 0 && out.Poll == nil {
		out.Text = "." // servers refuse an empty post
	}
	rules := textfit.ForLimits(lim)
	// The warning counts in full: servers weigh URLs in the text only.
	budget := lim.MaxChars - textfit.Rules{Unit: rules.Unit}.Count(out.Summary)
	if rules.Count(out.Text) <= budget {
		return []post.Post{out}, warn
	}
	if o.Truncate {
		// The note (which names the original) or a link to the original
		// closes the cut text.
		tail := "… " + link
		if note != "" {
			tail = "…\n\n" + note
		}
		out.Text = rules.Truncate(text, tail, budget)
		return []post.Post{out}, warn
	}
	texts := rules.Split(out.Text, budget, textfit.SplitOptions{Number: true})
	parts := make([]post.Post, len(texts))
	for i, t := range texts {
		part := out
		part.Text = t
		if i > 0 {
			part.Media, part.Poll = nil, nil
		}
		parts[i] = part
	}
	return parts, warn
}

// Key is the idempotency key of one item: stable for (job, item).
func Key(jobID int64, itemKey string) string {
	h := sha256.Sum256([]byte(itemKey))
	return fmt.Sprintf("ferry-publish-%d-%s", jobID, hex.EncodeToString(h[:12]))
}

// Freeze creates (or finds) the job with key and freezes plan as its items.
// params describe the options; a job found with other params is an error,
// since mixing two plans could publish a post twice.
func Freeze(ctx context.Context, j Journal, key, account, params string, plan []Planned) (journal.Job, error) {
	job, created, err := j.CreateJob(ctx, journal.Job{Kind: JobKind, Key: key, Account: account, Params: params})
	if err != nil {
		return journal.Job{}, err
	}
	if !created && job.Status != journal.JobPlanning {
		if job.Params != params {
			return journal.Job{}, fmt.Errorf("a publish of this archive to %s was started with other options (%s); rerun it with the same options to resume", account, job.Params)
		}
		return job, nil
	}
	items := make([]journal.Item, 0, len(plan))
	for _, p := range plan {
		data, err := json.Marshal(p.Payload)
		if err != nil {
			return journal.Job{}, fmt.Errorf("plan %s: %w", p.Key, err)
		}
		items = append(items, journal.Item{Step: step, Key: p.Key, Payload: string(data)})
	}
	if err := j.FreezePlan(ctx, job.ID, items); err != nil {
		return journal.Job{}, err
	}
	job.Status = journal.JobPlanned
	return job, nil
}

// Pace spaces writes to stay inside a server's posting limits (Mastodon:
// 300 posts per 3 h, 30 media uploads per 30 min). Zero fields do not pace.
type Pace struct {
	Posts       int
	PostWindow  time.Duration
	Media       int
	MediaWindow time.Duration
}

// MastodonPace is Mastodon's documented posting budget.
var MastodonPace = Pace{Posts: 300, PostWindow: 3 * time.Hour, Media: 30, MediaWindow: 30 * time.Minute}

func (p Pace) postGap() time.Duration {
	if p.Posts <= 0 {
		return 0
	}
	return p.PostWindow / time.Duration(p.Posts)
}

func (p Pace) mediaGap() time.Duration {
	if p.Media <= 0 {
		return 0
	}
	return p.MediaWindow / time.Duration(p.Media)
}

// Result is what Apply did.
type Result struct {
	JobID      int64          `json:"job_id"`
	Published  int            `json:"published"`
	Reconciled int            `json:"reconciled"` // found on the target after an interrupted attempt
	Failed     []ItemFailure  `json:"failed,omitempty"`
	Counts     map[string]int `json:"counts"` // items by status, whole job
}

// ItemFailure is an item the target refused for good.
type ItemFailure struct {
	Key   string `json:"key"`
	Error string `json:"error"`
}

// Apply publishes the job's pending items in plan order through sink.
// A permanent refusal marks the item failed and goes on; any other error
// stops Apply (a rerun resumes). progress, when not nil, is called after
// each item with the counts so far and an estimate of the time left.
func Apply(ctx context.Context, j Journal, job journal.Job, sink sinks.Sink, pace Pace, log *slog.Logger, progress func(done, total int, eta time.Duration)) (Result, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res := Result{JobID: job.ID}
	counts, err := j.ItemCounts(ctx, job.ID)
	if err != nil {
		return res, err
	}
	total, done := 0, 0
	for st, n := range counts[step] {
		total += n
		if st != journal.ItemPending {
			done += n
		}
	}
	finder, _ := sink.(sinks.Finder)
	var lastPost, lastMedia time.Time
	start := time.Now()
	startDone := done
	var after int64
	for {
		items, err := j.Items(ctx, job.ID, journal.ItemFilter{Step: step, Status: journal.ItemPending, AfterSeq: after, Limit: 100})
		if err != nil {
			return res, err
		}
		if len(items) == 0 {
			break
		}
		for _, it := range items {
			after = it.Seq
			var pl Payload
			if err := json.Unmarshal([]byte(it.Payload), &pl); err != nil {
				it.Status, it.Error = journal.ItemFailed, "damaged plan item: "+err.Error()
				if err := j.FinishItem(ctx, it); err != nil {
					return res, err
				}
				continue
			}
			d := sinks.Draft{Post: pl.Post, PublishedAt: pl.PublishedAt, Key: Key(job.ID, it.Key)}
			if pl.ParentKey != "" {
				parent, err := j.Item(ctx, job.ID, step, pl.ParentKey)
				switch {
				case errors.Is(err, journal.ErrNotFound):
				case err != nil:
					return res, err
				case parent.Status == journal.ItemDone:
					d.ReplyTo = parent.RemoteID
				default:
					log.Warn("the post replied to was not published; publishing this one on its own", "post", it.Key, "parent", pl.ParentKey)
				}
			}
			ref, reconciled, err := publishItem(ctx, j, job.ID, it, d, sink, finder, log, func() error {
				if err := wait(ctx, lastPost, pace.postGap()); err != nil {
					return err
				}
				if len(d.Post.Media) > 0 {
					if err := wait(ctx, lastMedia, pace.mediaGap()*time.Duration(len(d.Post.Media))); err != nil {
						return err
					}
				}
				return nil
			}, func() {
				lastPost = time.Now()
				if len(d.Post.Media) > 0 {
					lastMedia = lastPost
				}
			})
			switch {
			case err != nil && !sinks.IsPermanent(err):
				return res, fmt.Errorf("publish %s: %w", pl.Original, err)
			case err != nil:
				log.Warn("the target refused a post", "post", it.Key, "err", err)
				it.Status, it.Error = journal.ItemFailed, err.Error()
				res.Failed = append(res.Failed, ItemFailure{Key: it.Key, Error: err.Error()})
			case reconciled:
				it.Status, it.RemoteID = journal.ItemDone, ref.ID
				res.Reconciled++
			default:
				log.Debug("published", "post", it.Key, "id", ref.ID, "reply_to", d.ReplyTo)
				it.Status, it.RemoteID = journal.ItemDone, ref.ID
				res.Published++
			}
			if err := j.FinishItem(ctx, it); err != nil {
				return res, err
			}
			done++
			if progress != nil {
				eta := time.Duration(0)
				if n := done - startDone; n > 0 {
					per := max(time.Since(start)/time.Duration(n), pace.postGap())
					eta = per * time.Duration(total-done)
				}
				progress(done, total, eta)
			}
		}
	}
	counts, err = j.ItemCounts(ctx, job.ID)
	if err != nil {
		return res, err
	}
	res.Counts = map[string]int{}
	for st, n := range counts[step] {
		res.Counts[string(st)] = n
	}
	status := journal.JobDone
	if err := j.UpdateJob(ctx, job.ID, status, ""); err != nil {
		return res, err
	}
	return res, nil
}

// maxTries bounds the attempts at one item within a run when they fail
// transiently (5xx, lost answers, resets); a rerun starts the count again.
const maxTries = 6

// publishItem publishes one item, retrying transient failures within the
// run. Before every attempt after the first (in this run or an earlier,
// interrupted one) it looks for the post on the target through finder, so
// a write whose answer was lost is never repeated blind; without a Finder
// an ambiguous failure stops the run instead. pace is called before each
// write and sent after it. reconciled is true when the post was found.
func publishItem(ctx context.Context, j Journal, jobID int64, it journal.Item, d sinks.Draft, sink sinks.Sink,
	finder sinks.Finder, log *slog.Logger, pace func() error, sent func()) (ref post.Ref, reconciled bool, err error) {
	for try := 1; ; try++ {
		if it.Attempts > 0 && finder != nil {
			// A post an earlier attempt sent may still be landing.
			if err := journal.Sleep(ctx, it.SettleWait(time.Now())); err != nil {
				return post.Ref{}, false, err
			}
			ref, found, err := finder.Find(ctx, d, it.UpdatedAt.Add(-time.Minute))
			if err != nil {
				err = fmt.Errorf("check whether %s was published by an earlier attempt: %w", it.Key, err)
				if sinks.IsTransient(err) && try < maxTries {
					log.Info("checking the target failed; trying again", "post", it.Key, "try", try, "err", err)
					if err := journal.Sleep(ctx, journal.RetryPause(try)); err != nil {
						return post.Ref{}, false, err
					}
					continue
				}
				return post.Ref{}, false, err
			}
			if found {
				return ref, true, nil
			}
		}
		if err := pace(); err != nil {
			return post.Ref{}, false, err
		}
		if _, err := j.BeginItem(ctx, jobID, step, it.Key); err != nil {
			return post.Ref{}, false, err
		}
		ref, err := sink.Publish(ctx, d)
		sent()
		if err == nil || sinks.IsPermanent(err) || ctx.Err() != nil || !sinks.IsTransient(err) || try >= maxTries {
			return ref, false, err
		}
		if sinks.IsAmbiguous(err) && finder == nil {
			return post.Ref{}, false, err // nothing to reconcile with: a rerun decides
		}
		log.Info("publishing failed for now; trying again", "post", it.Key, "try", try, "ambiguous", sinks.IsAmbiguous(err), "err", err)
		pause := journal.RetryPause(try)
		if finder != nil {
			pause -= journal.InFlightGrace // the settle before Find is part of the pause
		}
		if err := journal.Sleep(ctx, pause); err != nil {
			return post.Ref{}, false, err
		}
		if it, err = j.Item(ctx, jobID, step, it.Key); err != nil {
			return post.Ref{}, false, err
		}
	}
}

// wait paces publishing: it returns once gap has passed since last.
func wait(ctx context.Context, last time.Time, gap time.Duration) error {
	if gap <= 0 || last.IsZero() {
		return nil
	}
	return journal.Sleep(ctx, time.Until(last.Add(gap)))
}
