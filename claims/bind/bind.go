// Package bind binds ObjectBucketClaims, as Rook's bucket provisioner
// serves them: a claim names a storage class and a bucket (or a prefix to
// generate one); it gets the bucket, a user whose only bucket it is, a
// key, and the ConfigMap and Secret a pod mounts. Storage classes carry
// the reclaim policy (Delete: bucket, objects and user go with the claim;
// Retain: the bucket stays and the keys are revoked) and the erasure
// layout, which must be the ring's (one layout per store). Re-applying a
// claim returns what it got the first time. It serves the storage class
// and claim operations of the admin API.
package bind

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/claims"
	"github.com/strata-storage/strata/iam"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/quota"
	"github.com/strata-storage/strata/users"
)

// Store is what binding needs of the object store.
type Store interface {
	CreateBucketFor(ctx context.Context, bucket, owner string) error
	DeleteBucket(ctx context.Context, bucket string) error
	PurgeBucket(ctx context.Context, bucket string) error
	SetBucketConfig(ctx context.Context, bucket, kind string, doc []byte) error
}

// Config is what a binder needs.
type Config struct {
	// Claims and Classes hold the bound claims and the storage classes.
	Claims, Classes metastore.Store
	IAM             *iam.Store
	Store           Store
	// Rescan recounts usage after a quota changed.
	Rescan func(ctx context.Context)
	// Endpoint is the S3 host and port a claim's workload is given.
	Endpoint func() (host string, port int)
	Region   string
	// K and M are the ring's layout, the only one a class may name.
	K, M int
	// ParseEC reads a class's "K+M".
	ParseEC func(string) (k, m int, err error)
}

// Binder applies and deletes claims.
type Binder struct {
	cfg Config
	mu  sync.Mutex // one apply or delete at a time on this node
}

// New makes a binder.
func New(cfg Config) *Binder { return &Binder{cfg: cfg} }

func claimKey(ns, name string) string { return ns + "/" + name }

// Apply binds a claim (or returns its binding).
func (bd *Binder) Apply(ctx context.Context, c claims.Claim) (admin.ClaimAnswer, error) {
	if err := c.Check(); err != nil {
		return admin.ClaimAnswer{}, admin.BadRequest("%v", err)
	}
	bd.mu.Lock()
	defer bd.mu.Unlock()
	store := bd.cfg.Claims
	maxBytes, maxObjects, _ := c.Limits()
	quota := iam.Quota{MaxBytes: maxBytes, MaxObjects: maxObjects}
	if b, err := store.Get(ctx, claimKey(c.Metadata.Namespace, c.Metadata.Name)); err == nil {
		var rec admin.ClaimRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return admin.ClaimAnswer{}, err
		}
		old := rec.Claim.Spec
		// A claim exported after binding names the bucket it got.
		sameBucket := c.Spec.BucketName == old.BucketName || c.Spec.BucketName == rec.Bucket
		if old.StorageClassName != c.Spec.StorageClassName || !sameBucket || old.GenerateBucketName != c.Spec.GenerateBucketName {
			return admin.ClaimAnswer{}, &admin.Error{Status: http.StatusConflict, Code: "ClaimConflict", Message: fmt.Sprintf("claim %s is bound to bucket %s with another spec; delete it first", c.ID(), rec.Bucket)}
		}
		if err := bd.setQuota(ctx, rec.Bucket, quota); err != nil {
			return admin.ClaimAnswer{}, err
		}
		rec.Claim = c
		if err := putClaim(ctx, store, rec); err != nil {
			return admin.ClaimAnswer{}, err
		}
		g, err := bd.grant(ctx, rec)
		return admin.ClaimAnswer{Record: rec, Grant: g}, err
	} else if !errors.Is(err, metastore.ErrNotFound) {
		return admin.ClaimAnswer{}, err
	}
	class, err := bd.storageClass(ctx, c.Spec.StorageClassName)
	if err != nil {
		return admin.ClaimAnswer{}, err
	}
	bucket := c.Spec.BucketName // a generated name written back counts as asked
	if bucket == "" {
		bucket = c.Spec.GenerateBucketName + "-" + randomLower(5)
	}
	if !objectstore.ValidBucketName(bucket) {
		return admin.ClaimAnswer{}, admin.BadRequest("bucket name %q is not valid", bucket)
	}
	rec := admin.ClaimRecord{Claim: c, Bucket: bucket, User: "obc." + c.Metadata.Namespace + "." + c.Metadata.Name, StorageClass: class, Created: time.Now().UTC()}
	// Undo what was made if a later step fails: nothing half-applied.
	var undo []func()
	fail := func(err error) (admin.ClaimAnswer, error) {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return admin.ClaimAnswer{}, err
	}
	bg := context.WithoutCancel(ctx)
	// The claim's user may own this bucket alone.
	if _, err := bd.cfg.IAM.CreateUserWith(ctx, iam.User{Name: rec.User, MaxBuckets: 1}); err != nil {
		return fail(users.IAMError(err, nil))
	}
	undo = append(undo, func() { bd.cfg.IAM.DeleteUser(bg, rec.User) })
	key, _, err := bd.cfg.IAM.CreateKey(ctx, rec.User)
	if err != nil {
		return fail(err)
	}
	rec.AccessKey = key.AccessKey
	if err := bd.cfg.Store.CreateBucketFor(ctx, bucket, rec.User); err != nil {
		if errors.Is(err, objectstore.ErrBucketExists) {
			return fail(&admin.Error{Status: http.StatusConflict, Code: "BucketAlreadyExists", Message: fmt.Sprintf("bucket %s exists", bucket)})
		}
		return fail(err)
	}
	undo = append(undo, func() { bd.cfg.Store.DeleteBucket(bg, bucket) })
	if err := bd.setQuota(ctx, bucket, quota); err != nil {
		return fail(err)
	}
	if err := putClaim(ctx, store, rec); err != nil {
		return fail(err)
	}
	g, err := bd.grant(ctx, rec)
	return admin.ClaimAnswer{Record: rec, Grant: g, Created: true}, err
}

func putClaim(ctx context.Context, store metastore.Store, rec admin.ClaimRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return store.Put(ctx, claimKey(rec.Claim.Metadata.Namespace, rec.Claim.Metadata.Name), b)
}

func (bd *Binder) setQuota(ctx context.Context, bucket string, q iam.Quota) error {
	var doc []byte
	if q.Set() {
		doc, _ = json.Marshal(q)
	}
	if err := bd.cfg.Store.SetBucketConfig(ctx, bucket, quota.Kind, doc); err != nil {
		return err
	}
	bd.cfg.Rescan(ctx)
	return nil
}

// grant is the endpoint and keys a bound claim gives.
func (bd *Binder) grant(ctx context.Context, rec admin.ClaimRecord) (claims.Grant, error) {
	secret, _, ok := bd.cfg.IAM.Lookup(ctx, rec.AccessKey)
	if !ok {
		return claims.Grant{}, &admin.Error{Status: http.StatusConflict, Code: "ClaimKeysRevoked", Message: fmt.Sprintf("the keys of claim %s were disabled or removed", rec.Claim.ID())}
	}
	host, port := bd.cfg.Endpoint()
	return claims.Grant{Namespace: rec.Claim.Metadata.Namespace, Name: rec.Claim.Metadata.Name, Host: host, Port: port,
		Bucket: rec.Bucket, Region: bd.cfg.Region, AccessKey: rec.AccessKey, SecretKey: secret}, nil
}

// Delete applies the claim's reclaim policy and forgets it.
func (bd *Binder) Delete(ctx context.Context, ns, name string) (admin.ClaimRecord, error) {
	bd.mu.Lock()
	defer bd.mu.Unlock()
	store := bd.cfg.Claims
	b, err := store.Get(ctx, claimKey(ns, name))
	if errors.Is(err, metastore.ErrNotFound) {
		return admin.ClaimRecord{}, &admin.Error{Status: http.StatusNotFound, Code: "NoSuchClaim", Message: fmt.Sprintf("no claim %s/%s", ns, name)}
	}
	if err != nil {
		return admin.ClaimRecord{}, err
	}
	var rec admin.ClaimRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return admin.ClaimRecord{}, err
	}
	switch rec.StorageClass.Reclaim {
	case "Delete":
		if err := bd.cfg.Store.PurgeBucket(ctx, rec.Bucket); err != nil && !errors.Is(err, objectstore.ErrNoSuchBucket) {
			return rec, fmt.Errorf("claim %s: %w", rec.Claim.ID(), err)
		}
		if err := bd.cfg.IAM.DeleteUser(ctx, rec.User); err != nil && !errors.Is(err, iam.ErrNoSuchUser) {
			return rec, err
		}
	default: // Retain: the bucket (and its owner) stay, the keys go
		keys, err := bd.cfg.IAM.ListKeys(ctx, rec.User)
		if err != nil {
			return rec, err
		}
		for _, k := range keys {
			if err := bd.cfg.IAM.DeleteKey(ctx, k.AccessKey); err != nil {
				return rec, err
			}
		}
		if _, err := bd.cfg.IAM.SetUserDisabled(ctx, rec.User, true); err != nil && !errors.Is(err, iam.ErrNoSuchUser) {
			return rec, err
		}
	}
	return rec, store.Delete(ctx, claimKey(ns, name))
}

func (bd *Binder) storageClass(ctx context.Context, name string) (admin.StorageClass, error) {
	b, err := bd.cfg.Classes.Get(ctx, name)
	if errors.Is(err, metastore.ErrNotFound) {
		return admin.StorageClass{}, &admin.Error{Status: http.StatusNotFound, Code: "NoSuchStorageClass", Message: fmt.Sprintf("no storage class %q (strata storageclass create)", name)}
	}
	if err != nil {
		return admin.StorageClass{}, err
	}
	var sc admin.StorageClass
	return sc, json.Unmarshal(b, &sc)
}

func randomLower(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// Handlers serve the storage class and claim operations.
func (bd *Binder) Handlers() map[admin.Op]admin.Handler {
	return map[admin.Op]admin.Handler{
		admin.ClassesList: func(w http.ResponseWriter, r *admin.Request) error {
			kvs, err := bd.cfg.Classes.List(r.Context(), "")
			if err != nil {
				return err
			}
			out := []admin.StorageClass{}
			for _, kv := range kvs {
				var sc admin.StorageClass
				if json.Unmarshal(kv.Value, &sc) == nil {
					out = append(out, sc)
				}
			}
			return admin.WriteJSON(w, out)
		},
		admin.ClassCreate: func(w http.ResponseWriter, r *admin.Request) error {
			var sc admin.StorageClass
			if err := r.Decode(&sc, false); err != nil {
				return err
			}
			if !iam.ValidUserName(sc.Name) || strings.ContainsAny(sc.Name, "/") {
				return admin.BadRequest("storage class name %q is not valid", sc.Name)
			}
			if sc.Reclaim != "Delete" && sc.Reclaim != "Retain" {
				return admin.BadRequest("reclaim_policy must be Delete or Retain")
			}
			if sc.EC != "" {
				k, m, err := bd.cfg.ParseEC(sc.EC)
				if err != nil {
					return admin.BadRequest("%v", err)
				}
				if k != bd.cfg.K || m != bd.cfg.M {
					return admin.BadRequest("this store writes every object EC %d+%d; a class cannot ask for %d+%d", bd.cfg.K, bd.cfg.M, k, m)
				}
			}
			sc.Created = time.Now().UTC()
			b, _ := json.Marshal(sc)
			ok, err := bd.cfg.Classes.PutIfAbsent(r.Context(), sc.Name, b)
			if err != nil {
				return err
			}
			if !ok {
				return &admin.Error{Status: http.StatusConflict, Code: "StorageClassExists", Message: fmt.Sprintf("storage class %s exists", sc.Name)}
			}
			return admin.WriteJSONStatus(w, http.StatusCreated, sc)
		},
		admin.ClassDelete: func(w http.ResponseWriter, r *admin.Request) error {
			ctx, name := r.Context(), r.PathValue("name")
			if _, err := bd.storageClass(ctx, name); err != nil {
				return err
			}
			recs, err := bd.records(ctx)
			if err != nil {
				return err
			}
			for _, rec := range recs {
				if rec.StorageClass.Name == name {
					return &admin.Error{Status: http.StatusConflict, Code: admin.CodeStorageClassInUse, Message: fmt.Sprintf("claim %s uses storage class %s", rec.Claim.ID(), name)}
				}
			}
			if err := bd.cfg.Classes.Delete(ctx, name); err != nil {
				return err
			}
			return admin.NoContent(w)
		},
		admin.ClaimsList: func(w http.ResponseWriter, r *admin.Request) error {
			recs, err := bd.records(r.Context())
			if err != nil {
				return err
			}
			return admin.WriteJSON(w, recs)
		},
		admin.ClaimApply: func(w http.ResponseWriter, r *admin.Request) error {
			var c claims.Claim
			if err := r.Decode(&c, false); err != nil {
				return err
			}
			ans, err := bd.Apply(r.Context(), c)
			if err != nil {
				return err
			}
			status := http.StatusOK
			if ans.Created {
				status = http.StatusCreated
			}
			return admin.WriteJSONStatus(w, status, ans)
		},
		admin.ClaimDelete: func(w http.ResponseWriter, r *admin.Request) error {
			rec, err := bd.Delete(r.Context(), r.PathValue("namespace"), r.PathValue("name"))
			if err != nil {
				return err
			}
			return admin.WriteJSON(w, rec)
		},
	}
}

func (bd *Binder) records(ctx context.Context) ([]admin.ClaimRecord, error) {
	kvs, err := bd.cfg.Claims.List(ctx, "")
	if err != nil {
		return nil, err
	}
	out := []admin.ClaimRecord{}
	for _, kv := range kvs {
		var rec admin.ClaimRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return nil, fmt.Errorf("claim record %s: %w", kv.Key, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

// Endpoint is the S3 host and port clients use, from the address the S3
// listener is bound to: that address, or the first of domains when it
// listens on every interface.
func Endpoint(addr string, domains []string) (string, int) {
	host, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() && len(domains) > 0 {
		host = domains[0]
	}
	return host, port
}
