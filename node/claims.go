package node

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

	"github.com/strata-storage/strata/claims"
	"github.com/strata-storage/strata/iam"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore"
)

// ObjectBucketClaims, as Rook's bucket provisioner serves them: a claim
// names a storage class and a bucket (or a prefix to generate one); it
// gets the bucket, a user whose only bucket it is, a key, and the
// ConfigMap and Secret a pod mounts. Storage classes carry the reclaim
// policy (Delete: bucket, objects and user go with the claim; Retain: the
// bucket stays and the keys are revoked) and the erasure layout, which
// must be the ring's (one layout per store). Re-applying a claim returns
// what it got the first time.

// StorageClass is a preset that claims name.
type StorageClass struct {
	Name    string    `json:"name"`
	Reclaim string    `json:"reclaim_policy"` // Delete or Retain
	EC      string    `json:"ec,omitempty"`   // K+M; empty: the ring's
	Created time.Time `json:"created"`
}

// ClaimRecord is a bound claim.
type ClaimRecord struct {
	Claim        claims.Claim `json:"claim"`
	Bucket       string       `json:"bucket"`
	User         string       `json:"user"`
	AccessKey    string       `json:"access_key"`
	StorageClass StorageClass `json:"storage_class"`
	Created      time.Time    `json:"created"`
}

// ClaimAnswer is what applying a claim returns.
type ClaimAnswer struct {
	Record  ClaimRecord  `json:"record"`
	Grant   claims.Grant `json:"grant"`
	Created bool         `json:"created"` // false: it was bound already
}

type claimState struct {
	mu sync.Mutex // one apply or delete at a time on this node
}

func (n *Node) claimMeta(kind string) metastore.Store {
	if n.clustered() {
		return n.etcd.Sub(kind + "/")
	}
	return metastore.NewPebble(n.db, kind+"/")
}

func claimKey(ns, name string) string { return ns + "/" + name }

// applyClaim binds a claim (or returns its binding).
func (n *Node) applyClaim(ctx context.Context, c claims.Claim) (ClaimAnswer, error) {
	if err := c.Check(); err != nil {
		return ClaimAnswer{}, badRequest("%v", err)
	}
	n.claims.mu.Lock()
	defer n.claims.mu.Unlock()
	store := n.claimMeta("claims")
	maxBytes, maxObjects, _ := c.Limits()
	quota := iam.Quota{MaxBytes: maxBytes, MaxObjects: maxObjects}
	if b, err := store.Get(ctx, claimKey(c.Metadata.Namespace, c.Metadata.Name)); err == nil {
		var rec ClaimRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return ClaimAnswer{}, err
		}
		old := rec.Claim.Spec
		if old.StorageClassName != c.Spec.StorageClassName || old.BucketName != c.Spec.BucketName || old.GenerateBucketName != c.Spec.GenerateBucketName {
			return ClaimAnswer{}, &adminError{http.StatusConflict, "ClaimConflict", fmt.Sprintf("claim %s is bound to bucket %s with another spec; delete it first", c.ID(), rec.Bucket)}
		}
		if err := n.setClaimQuota(ctx, rec.Bucket, quota); err != nil {
			return ClaimAnswer{}, err
		}
		rec.Claim = c
		if err := putClaim(ctx, store, rec); err != nil {
			return ClaimAnswer{}, err
		}
		g, err := n.grant(ctx, rec)
		return ClaimAnswer{Record: rec, Grant: g}, err
	} else if !errors.Is(err, metastore.ErrNotFound) {
		return ClaimAnswer{}, err
	}
	class, err := n.storageClass(ctx, c.Spec.StorageClassName)
	if err != nil {
		return ClaimAnswer{}, err
	}
	bucket := c.Spec.BucketName
	if bucket == "" {
		bucket = c.Spec.GenerateBucketName + "-" + randomLower(5)
	}
	if !objectstore.ValidBucketName(bucket) {
		return ClaimAnswer{}, badRequest("bucket name %q is not valid", bucket)
	}
	rec := ClaimRecord{Claim: c, Bucket: bucket, User: "obc." + c.Metadata.Namespace + "." + c.Metadata.Name, StorageClass: class, Created: time.Now().UTC()}
	// Undo what was made if a later step fails: nothing half-applied.
	var undo []func()
	fail := func(err error) (ClaimAnswer, error) {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return ClaimAnswer{}, err
	}
	bg := context.WithoutCancel(ctx)
	// The claim's user may own this bucket alone.
	if _, err := n.iam.CreateUserWith(ctx, iam.User{Name: rec.User, MaxBuckets: 1}); err != nil {
		return fail(iamErr(err, nil))
	}
	undo = append(undo, func() { n.iam.DeleteUser(bg, rec.User) })
	key, _, err := n.iam.CreateKey(ctx, rec.User)
	if err != nil {
		return fail(err)
	}
	rec.AccessKey = key.AccessKey
	if err := n.store.CreateBucketFor(ctx, bucket, rec.User); err != nil {
		if errors.Is(err, objectstore.ErrBucketExists) {
			return fail(&adminError{http.StatusConflict, "BucketAlreadyExists", fmt.Sprintf("bucket %s exists", bucket)})
		}
		return fail(err)
	}
	undo = append(undo, func() { n.store.DeleteBucket(bg, bucket) })
	if err := n.setClaimQuota(ctx, bucket, quota); err != nil {
		return fail(err)
	}
	if err := putClaim(ctx, store, rec); err != nil {
		return fail(err)
	}
	g, err := n.grant(ctx, rec)
	return ClaimAnswer{Record: rec, Grant: g, Created: true}, err
}

func putClaim(ctx context.Context, store metastore.Store, rec ClaimRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return store.Put(ctx, claimKey(rec.Claim.Metadata.Namespace, rec.Claim.Metadata.Name), b)
}

func (n *Node) setClaimQuota(ctx context.Context, bucket string, q iam.Quota) error {
	var doc []byte
	if q.Set() {
		doc, _ = json.Marshal(q)
	}
	if err := n.store.SetBucketConfig(ctx, bucket, quotaKind, doc); err != nil {
		return err
	}
	n.scanUsage(ctx, false)
	return nil
}

// grant is the endpoint and keys a bound claim gives.
func (n *Node) grant(ctx context.Context, rec ClaimRecord) (claims.Grant, error) {
	secret, _, ok := n.iam.Lookup(ctx, rec.AccessKey)
	if !ok {
		return claims.Grant{}, &adminError{http.StatusConflict, "ClaimKeysRevoked", fmt.Sprintf("the keys of claim %s were disabled or removed", rec.Claim.ID())}
	}
	host, port := n.s3Endpoint()
	return claims.Grant{Namespace: rec.Claim.Metadata.Namespace, Name: rec.Claim.Metadata.Name, Host: host, Port: port,
		Bucket: rec.Bucket, Region: n.cfg.Region, AccessKey: rec.AccessKey, SecretKey: secret}, nil
}

// s3Endpoint is the S3 host and port clients use: the listen address, or
// the first domain when it listens on every interface.
func (n *Node) s3Endpoint() (string, int) {
	host, p, _ := net.SplitHostPort(n.S3Addr())
	port, _ := strconv.Atoi(p)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() && len(n.cfg.Domains) > 0 {
		host = n.cfg.Domains[0]
	}
	return host, port
}

// deleteClaim applies the claim's reclaim policy and forgets it.
func (n *Node) deleteClaim(ctx context.Context, ns, name string) (ClaimRecord, error) {
	n.claims.mu.Lock()
	defer n.claims.mu.Unlock()
	store := n.claimMeta("claims")
	b, err := store.Get(ctx, claimKey(ns, name))
	if errors.Is(err, metastore.ErrNotFound) {
		return ClaimRecord{}, &adminError{http.StatusNotFound, "NoSuchClaim", fmt.Sprintf("no claim %s/%s", ns, name)}
	}
	if err != nil {
		return ClaimRecord{}, err
	}
	var rec ClaimRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return ClaimRecord{}, err
	}
	switch rec.StorageClass.Reclaim {
	case "Delete":
		if err := n.store.PurgeBucket(ctx, rec.Bucket); err != nil && !errors.Is(err, objectstore.ErrNoSuchBucket) {
			return rec, fmt.Errorf("claim %s: %w", rec.Claim.ID(), err)
		}
		if err := n.iam.DeleteUser(ctx, rec.User); err != nil && !errors.Is(err, iam.ErrNoSuchUser) {
			return rec, err
		}
	default: // Retain: the bucket (and its owner) stay, the keys go
		keys, err := n.iam.ListKeys(ctx, rec.User)
		if err != nil {
			return rec, err
		}
		for _, k := range keys {
			if err := n.iam.DeleteKey(ctx, k.AccessKey); err != nil {
				return rec, err
			}
		}
		if _, err := n.iam.SetUserDisabled(ctx, rec.User, true); err != nil && !errors.Is(err, iam.ErrNoSuchUser) {
			return rec, err
		}
	}
	return rec, store.Delete(ctx, claimKey(ns, name))
}

func (n *Node) storageClass(ctx context.Context, name string) (StorageClass, error) {
	b, err := n.claimMeta("storageclasses").Get(ctx, name)
	if errors.Is(err, metastore.ErrNotFound) {
		return StorageClass{}, &adminError{http.StatusNotFound, "NoSuchStorageClass", fmt.Sprintf("no storage class %q (strata storageclass create)", name)}
	}
	if err != nil {
		return StorageClass{}, err
	}
	var sc StorageClass
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

// claimsRoute serves:
//
//	GET    /admin/v1/storageclasses            []StorageClass
//	POST   /admin/v1/storageclasses            StorageClass (201)
//	DELETE /admin/v1/storageclasses/{name}     (refused while claims use it)
//	GET    /admin/v1/claims                    []ClaimRecord
//	POST   /admin/v1/claims                    an ObjectBucketClaim (JSON) -> ClaimAnswer (201 when bound now)
//	DELETE /admin/v1/claims/{namespace}/{name} the reclaim policy is applied -> ClaimRecord
func (n *Node) claimsRoute(w http.ResponseWriter, r *http.Request, path string, body []byte) (bool, error) {
	ctx := r.Context()
	parts := strings.Split(path, "/")
	switch {
	case path == "storageclasses" && r.Method == http.MethodGet:
		kvs, err := n.claimMeta("storageclasses").List(ctx, "")
		if err != nil {
			return true, err
		}
		out := []StorageClass{}
		for _, kv := range kvs {
			var sc StorageClass
			if json.Unmarshal(kv.Value, &sc) == nil {
				out = append(out, sc)
			}
		}
		return true, writeJSON(w, out)
	case path == "storageclasses" && r.Method == http.MethodPost:
		var sc StorageClass
		if err := strictJSON(body, &sc); err != nil {
			return true, err
		}
		if !iam.ValidUserName(sc.Name) || strings.ContainsAny(sc.Name, "/") {
			return true, badRequest("storage class name %q is not valid", sc.Name)
		}
		if sc.Reclaim != "Delete" && sc.Reclaim != "Retain" {
			return true, badRequest("reclaim_policy must be Delete or Retain")
		}
		if sc.EC != "" {
			k, m, err := ParseEC(sc.EC)
			if err != nil {
				return true, badRequest("%v", err)
			}
			if k != n.Ring.K || m != n.Ring.M {
				return true, badRequest("this store writes every object EC %d+%d; a class cannot ask for %d+%d", n.Ring.K, n.Ring.M, k, m)
			}
		}
		sc.Created = time.Now().UTC()
		b, _ := json.Marshal(sc)
		ok, err := n.claimMeta("storageclasses").PutIfAbsent(ctx, sc.Name, b)
		if err != nil {
			return true, err
		}
		if !ok {
			return true, &adminError{http.StatusConflict, "StorageClassExists", fmt.Sprintf("storage class %s exists", sc.Name)}
		}
		return true, writeJSONStatus(w, http.StatusCreated, sc)
	case len(parts) == 2 && parts[0] == "storageclasses" && r.Method == http.MethodDelete:
		if _, err := n.storageClass(ctx, parts[1]); err != nil {
			return true, err
		}
		recs, err := n.claimRecords(ctx)
		if err != nil {
			return true, err
		}
		for _, rec := range recs {
			if rec.StorageClass.Name == parts[1] {
				return true, &adminError{http.StatusConflict, "StorageClassInUse", fmt.Sprintf("claim %s uses storage class %s", rec.Claim.ID(), parts[1])}
			}
		}
		if err := n.claimMeta("storageclasses").Delete(ctx, parts[1]); err != nil {
			return true, err
		}
		w.WriteHeader(http.StatusNoContent)
		return true, nil
	case path == "claims" && r.Method == http.MethodGet:
		recs, err := n.claimRecords(ctx)
		if err != nil {
			return true, err
		}
		return true, writeJSON(w, recs)
	case path == "claims" && r.Method == http.MethodPost:
		var c claims.Claim
		if err := strictJSON(body, &c); err != nil {
			return true, err
		}
		ans, err := n.applyClaim(ctx, c)
		if err != nil {
			return true, err
		}
		status := http.StatusOK
		if ans.Created {
			status = http.StatusCreated
		}
		return true, writeJSONStatus(w, status, ans)
	case len(parts) == 3 && parts[0] == "claims" && r.Method == http.MethodDelete:
		rec, err := n.deleteClaim(ctx, parts[1], parts[2])
		if err != nil {
			return true, err
		}
		return true, writeJSON(w, rec)
	}
	return false, nil
}

func (n *Node) claimRecords(ctx context.Context) ([]ClaimRecord, error) {
	kvs, err := n.claimMeta("claims").List(ctx, "")
	if err != nil {
		return nil, err
	}
	out := []ClaimRecord{}
	for _, kv := range kvs {
		var rec ClaimRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return nil, fmt.Errorf("claim record %s: %w", kv.Key, err)
		}
		out = append(out, rec)
	}
	return out, nil
}
