package node

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/strata-storage/strata/iam"
	"github.com/strata-storage/strata/objectstore"
)

// Quotas per bucket and per user, as Ceph RGW keeps them: a background
// scan every usageInterval counts each bucket that has a quota (or whose
// owner has one), and a write is refused with QuotaExceeded when the last
// count plus what this gateway admitted since would pass the limit. Other
// gateways' writes since the last scan are not seen here, so a quota can
// be passed by at most what the other gateways admit in one interval.

const (
	usageInterval = 10 * time.Second
	quotaKind     = "quota" // bucket config document
)

// ErrQuotaExceeded refuses a write past a quota.
var ErrQuotaExceeded = errors.New("quota exceeded")

type usageTracker struct {
	mu        sync.Mutex
	scanned   map[string]objectstore.Usage // by bucket
	admitted  map[string]objectstore.Usage // since the last scan, by bucket
	userQuota map[string]iam.Quota
}

func newUsageTracker() *usageTracker {
	return &usageTracker{scanned: map[string]objectstore.Usage{}, admitted: map[string]objectstore.Usage{}, userQuota: map[string]iam.Quota{}}
}

// bucketQuota reads a bucket's quota document.
func bucketQuota(b objectstore.BucketInfo) iam.Quota {
	var q iam.Quota
	if doc, ok := b.Config[quotaKind]; ok {
		json.Unmarshal(doc, &q)
	}
	return q
}

// scanUsage recounts what quotas need (and, with all, every bucket).
func (n *Node) scanUsage(ctx context.Context, all bool) {
	users, err := n.iam.ListUsers(ctx)
	if err != nil {
		n.log.Warn("quota: cannot list users", "err", err)
		return
	}
	uq := map[string]iam.Quota{}
	for _, u := range users {
		if u.Quota.Set() {
			uq[u.Name] = u.Quota
		}
	}
	for _, b := range n.store.ListBuckets(ctx) {
		if !all && !bucketQuota(b).Set() && !uq[b.Owner].Set() {
			continue
		}
		u, err := n.store.ScanUsage(ctx, b.Name)
		if err != nil {
			n.log.Warn("quota: usage scan", "bucket", b.Name, "err", err)
			continue
		}
		n.usage.mu.Lock()
		n.usage.scanned[b.Name] = u
		delete(n.usage.admitted, b.Name)
		n.usage.mu.Unlock()
	}
	n.usage.mu.Lock()
	n.usage.userQuota = uq
	n.usage.mu.Unlock()
}

func (n *Node) runUsageScans(ctx context.Context) {
	for {
		n.scanUsage(ctx, false)
		select {
		case <-ctx.Done():
			return
		case <-time.After(usageInterval):
		}
	}
}

// usageOf is a bucket's last count plus what was admitted here since.
func (t *usageTracker) usageOf(bucket string) objectstore.Usage {
	u, a := t.scanned[bucket], t.admitted[bucket]
	u.Bytes += a.Bytes
	u.Objects += a.Objects
	return u
}

// admit checks a write of bytes and objects into bucket against the
// bucket's and its owner's quotas, and counts it if it fits.
func (n *Node) admit(ctx context.Context, bucket string, bytes, objects int64) error {
	b, err := n.store.HeadBucket(ctx, bucket)
	if err != nil {
		return nil // the write itself reports the missing bucket
	}
	bq := bucketQuota(b)
	t := n.usage
	t.mu.Lock()
	defer t.mu.Unlock()
	uq := t.userQuota[b.Owner]
	if !bq.Set() && !uq.Set() {
		return nil
	}
	if !bq.Allows(t.usageOf(bucket), bytes, objects) {
		return ErrQuotaExceeded
	}
	if uq.Set() {
		var total objectstore.Usage
		for _, ob := range n.store.ListBuckets(ctx) {
			if ob.Owner == b.Owner {
				u := t.usageOf(ob.Name)
				total.Bytes += u.Bytes
				total.Objects += u.Objects
			}
		}
		if !uq.Allows(total, bytes, objects) {
			return ErrQuotaExceeded
		}
	}
	a := t.admitted[bucket]
	a.Bytes += bytes
	a.Objects += objects
	t.admitted[bucket] = a
	return nil
}

// BucketListing is one bucket as `strata bucket list` shows it.
type BucketListing struct {
	Name    string            `json:"name"`
	Owner   string            `json:"owner"`
	Created time.Time         `json:"created"`
	Usage   objectstore.Usage `json:"usage"`
	Quota   iam.Quota         `json:"quota,omitzero"`
	// OwnerQuota is the owner's quota, over all its buckets.
	OwnerQuota iam.Quota `json:"owner_quota,omitzero"`
}

// quotaRoute serves:
//
//	GET /admin/v1/buckets                 []BucketListing (usage counted now)
//	PUT /admin/v1/buckets/{name}/quota    iam.Quota (zero clears) -> BucketListing
//	PUT /admin/v1/users/{name}/quota      iam.Quota (zero clears) -> iam.User
func (n *Node) quotaRoute(w http.ResponseWriter, r *http.Request, path string, body []byte) (bool, error) {
	ctx := r.Context()
	parts := strings.Split(path, "/")
	switch {
	case path == "buckets" && r.Method == http.MethodGet:
		users, err := n.iam.ListUsers(ctx)
		if err != nil {
			return true, err
		}
		uq := map[string]iam.Quota{}
		for _, u := range users {
			uq[u.Name] = u.Quota
		}
		out := []BucketListing{}
		for _, b := range n.store.ListBuckets(ctx) {
			u, err := n.store.ScanUsage(ctx, b.Name)
			if err != nil {
				return true, err
			}
			out = append(out, BucketListing{Name: b.Name, Owner: b.Owner, Created: b.Created, Usage: u, Quota: bucketQuota(b), OwnerQuota: uq[b.Owner]})
		}
		return true, writeJSON(w, out)
	case len(parts) == 3 && (parts[0] == "buckets" || parts[0] == "users") && parts[2] == "quota" && r.Method == http.MethodPut:
		var q iam.Quota
		if err := strictJSON(body, &q); err != nil {
			return true, err
		}
		if q.MaxBytes < 0 || q.MaxObjects < 0 {
			return true, badRequest("quota limits must be >= 0 (0: none)")
		}
		if parts[0] == "users" {
			u, err := n.iam.SetUserQuota(ctx, parts[1], q)
			if err != nil {
				return true, iamErr(err, nil)
			}
			n.scanUsage(ctx, false)
			return true, writeJSON(w, u)
		}
		var doc []byte
		if q.Set() {
			doc, _ = json.Marshal(q)
		}
		if err := n.store.SetBucketConfig(ctx, parts[1], quotaKind, doc); err != nil {
			if errors.Is(err, objectstore.ErrNoSuchBucket) {
				return true, &adminError{http.StatusNotFound, "NoSuchBucket", "no bucket " + parts[1]}
			}
			return true, err
		}
		n.scanUsage(ctx, false)
		b, _ := n.store.HeadBucket(ctx, parts[1])
		n.usage.mu.Lock()
		u := n.usage.usageOf(parts[1])
		n.usage.mu.Unlock()
		return true, writeJSON(w, BucketListing{Name: b.Name, Owner: b.Owner, Created: b.Created, Usage: u, Quota: bucketQuota(b)})
	}
	return false, nil
}

// tracked reports whether a bucket's usage matters: it or its owner has
// a quota.
func (n *Node) tracked(ctx context.Context, bucket string) bool {
	b, err := n.store.HeadBucket(ctx, bucket)
	if err != nil {
		return false
	}
	n.usage.mu.Lock()
	defer n.usage.mu.Unlock()
	return bucketQuota(b).Set() || n.usage.userQuota[b.Owner].Set()
}

// release counts what a delete took from a bucket since the last scan.
func (n *Node) release(_ context.Context, bucket string, bytes, objects int64) {
	t := n.usage
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.admitted[bucket]
	a.Bytes -= bytes
	a.Objects -= objects
	t.admitted[bucket] = a
}
