package node

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/strata-storage/strata/admin"
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

// quotaHandlers serve bucket usage and the quota operations.
func (n *Node) quotaHandlers() map[admin.Op]admin.Handler {
	quota := func(r *admin.Request) (iam.Quota, error) {
		var q iam.Quota
		if err := r.Decode(&q, false); err != nil {
			return q, err
		}
		if q.MaxBytes < 0 || q.MaxObjects < 0 {
			return q, admin.BadRequest("quota limits must be >= 0 (0: none)")
		}
		return q, nil
	}
	return map[admin.Op]admin.Handler{
		admin.BucketsList: func(w http.ResponseWriter, r *admin.Request) error {
			ctx := r.Context()
			users, err := n.iam.ListUsers(ctx)
			if err != nil {
				return err
			}
			uq := map[string]iam.Quota{}
			for _, u := range users {
				uq[u.Name] = u.Quota
			}
			out := []admin.BucketListing{}
			for _, b := range n.store.ListBuckets(ctx) {
				u, err := n.store.ScanUsage(ctx, b.Name)
				if err != nil {
					return err
				}
				out = append(out, admin.BucketListing{Name: b.Name, Owner: b.Owner, Created: b.Created, Usage: u, Quota: bucketQuota(b), OwnerQuota: uq[b.Owner]})
			}
			return admin.WriteJSON(w, out)
		},
		admin.UserQuotaSet: func(w http.ResponseWriter, r *admin.Request) error {
			q, err := quota(r)
			if err != nil {
				return err
			}
			u, err := n.iam.SetUserQuota(r.Context(), r.PathValue("name"), q)
			if err != nil {
				return iamErr(err, nil)
			}
			n.scanUsage(r.Context(), false)
			return admin.WriteJSON(w, u)
		},
		admin.BucketQuotaSet: func(w http.ResponseWriter, r *admin.Request) error {
			q, err := quota(r)
			if err != nil {
				return err
			}
			ctx, name := r.Context(), r.PathValue("name")
			var doc []byte
			if q.Set() {
				doc, _ = json.Marshal(q)
			}
			if err := n.store.SetBucketConfig(ctx, name, quotaKind, doc); err != nil {
				if errors.Is(err, objectstore.ErrNoSuchBucket) {
					return &admin.Error{Status: http.StatusNotFound, Code: admin.CodeNoSuchBucket, Message: "no bucket " + name}
				}
				return err
			}
			n.scanUsage(ctx, false)
			b, _ := n.store.HeadBucket(ctx, name)
			n.usage.mu.Lock()
			u := n.usage.usageOf(name)
			n.usage.mu.Unlock()
			return admin.WriteJSON(w, admin.BucketListing{Name: b.Name, Owner: b.Owner, Created: b.Created, Usage: u, Quota: bucketQuota(b)})
		},
	}
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
