// Package quota holds writes to per-bucket and per-user quotas, as Ceph
// RGW keeps them: a background scan every ScanInterval counts each bucket
// that has a quota (or whose owner has one), and a write is refused with
// QuotaExceeded when the last count plus what this gateway admitted since
// would pass the limit. Other gateways' writes since the last scan are not
// seen here, so a quota can be passed by at most what the other gateways
// admit in one interval. It also serves bucket usage and the quota
// operations of the admin API.
package quota

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
	"github.com/strata-storage/strata/users"
	"log/slog"
)

const (
	// ScanInterval is how often usage is counted.
	ScanInterval = 10 * time.Second
	// Kind is the bucket config document holding a bucket's quota.
	Kind = "quota"
)

// Store is what quotas need of the object store.
type Store interface {
	ListBuckets(ctx context.Context) []objectstore.BucketInfo
	HeadBucket(ctx context.Context, bucket string) (objectstore.BucketInfo, error)
	ScanUsage(ctx context.Context, bucket string) (objectstore.Usage, error)
	SetBucketConfig(ctx context.Context, bucket, kind string, doc []byte) error
}

// Users is what quotas need of iam.
type Users interface {
	ListUsers(ctx context.Context) ([]iam.User, error)
	SetUserQuota(ctx context.Context, name string, q iam.Quota) (iam.User, error)
}

// ErrQuotaExceeded refuses a write past a quota.
var ErrQuotaExceeded = errors.New("quota exceeded")

// Tracker counts usage and admits writes.
type Tracker struct {
	store     Store
	users     Users
	log       *slog.Logger
	mu        sync.Mutex
	scanned   map[string]objectstore.Usage // by bucket
	admitted  map[string]objectstore.Usage // since the last scan, by bucket
	userQuota map[string]iam.Quota
}

// New makes a tracker; Run keeps its counts fresh.
func New(store Store, users Users, log *slog.Logger) *Tracker {
	return &Tracker{store: store, users: users, log: log, scanned: map[string]objectstore.Usage{}, admitted: map[string]objectstore.Usage{}, userQuota: map[string]iam.Quota{}}
}

// Of reads a bucket's quota document.
func Of(b objectstore.BucketInfo) iam.Quota {
	var q iam.Quota
	if doc, ok := b.Config[Kind]; ok {
		json.Unmarshal(doc, &q)
	}
	return q
}

// Scan recounts what quotas need (and, with all, every bucket).
func (t *Tracker) Scan(ctx context.Context, all bool) {
	users, err := t.users.ListUsers(ctx)
	if err != nil {
		t.log.Warn("quota: cannot list users", "err", err)
		return
	}
	uq := map[string]iam.Quota{}
	for _, u := range users {
		if u.Quota.Set() {
			uq[u.Name] = u.Quota
		}
	}
	for _, b := range t.store.ListBuckets(ctx) {
		if !all && !Of(b).Set() && !uq[b.Owner].Set() {
			continue
		}
		u, err := t.store.ScanUsage(ctx, b.Name)
		if err != nil {
			t.log.Warn("quota: usage scan", "bucket", b.Name, "err", err)
			continue
		}
		t.mu.Lock()
		t.scanned[b.Name] = u
		delete(t.admitted, b.Name)
		t.mu.Unlock()
	}
	t.mu.Lock()
	t.userQuota = uq
	t.mu.Unlock()
}

// Run scans every ScanInterval until ctx ends.
func (t *Tracker) Run(ctx context.Context) {
	for {
		t.Scan(ctx, false)
		select {
		case <-ctx.Done():
			return
		case <-time.After(ScanInterval):
		}
	}
}

// usageOf is a bucket's last count plus what was admitted here since.
func (t *Tracker) usageOf(bucket string) objectstore.Usage {
	u, a := t.scanned[bucket], t.admitted[bucket]
	u.Bytes += a.Bytes
	u.Objects += a.Objects
	return u
}

// Admit checks a write of bytes and objects into bucket against the
// bucket's and its owner's quotas, and counts it if it fits.
func (t *Tracker) Admit(ctx context.Context, bucket string, bytes, objects int64) error {
	b, err := t.store.HeadBucket(ctx, bucket)
	if err != nil {
		return nil // the write itself reports the missing bucket
	}
	bq := Of(b)
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
		for _, ob := range t.store.ListBuckets(ctx) {
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

// Handlers serve bucket usage and the quota operations.
func (t *Tracker) Handlers() map[admin.Op]admin.Handler {
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
			users, err := t.users.ListUsers(ctx)
			if err != nil {
				return err
			}
			uq := map[string]iam.Quota{}
			for _, u := range users {
				uq[u.Name] = u.Quota
			}
			out := []admin.BucketListing{}
			for _, b := range t.store.ListBuckets(ctx) {
				u, err := t.store.ScanUsage(ctx, b.Name)
				if err != nil {
					return err
				}
				out = append(out, admin.BucketListing{Name: b.Name, Owner: b.Owner, Created: b.Created, Usage: u, Quota: Of(b), OwnerQuota: uq[b.Owner]})
			}
			return admin.WriteJSON(w, out)
		},
		admin.UserQuotaSet: func(w http.ResponseWriter, r *admin.Request) error {
			q, err := quota(r)
			if err != nil {
				return err
			}
			u, err := t.users.SetUserQuota(r.Context(), r.PathValue("name"), q)
			if err != nil {
				return users.IAMError(err, nil)
			}
			t.Scan(r.Context(), false)
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
			if err := t.store.SetBucketConfig(ctx, name, Kind, doc); err != nil {
				if errors.Is(err, objectstore.ErrNoSuchBucket) {
					return &admin.Error{Status: http.StatusNotFound, Code: admin.CodeNoSuchBucket, Message: "no bucket " + name}
				}
				return err
			}
			t.Scan(ctx, false)
			b, _ := t.store.HeadBucket(ctx, name)
			t.mu.Lock()
			u := t.usageOf(name)
			t.mu.Unlock()
			return admin.WriteJSON(w, admin.BucketListing{Name: b.Name, Owner: b.Owner, Created: b.Created, Usage: u, Quota: Of(b)})
		},
	}
}

// Tracked reports whether a bucket's usage matters: it or its owner has
// a quota.
func (t *Tracker) Tracked(ctx context.Context, bucket string) bool {
	b, err := t.store.HeadBucket(ctx, bucket)
	if err != nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return Of(b).Set() || t.userQuota[b.Owner].Set()
}

// Release counts what a delete took from a bucket since the last scan.
func (t *Tracker) Release(_ context.Context, bucket string, bytes, objects int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.admitted[bucket]
	a.Bytes -= bytes
	a.Objects -= objects
	t.admitted[bucket] = a
}
