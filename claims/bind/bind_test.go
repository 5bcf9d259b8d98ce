package bind

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/blockpool"
	"github.com/strata-storage/strata/claims"
	"github.com/strata-storage/strata/iam"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/objectstore/shard"
	"github.com/strata-storage/strata/ring"
)

type world struct {
	b     *Binder
	iam   *iam.Store
	store *objectstore.Store
}

// newWorld is a binder over a real object store (2+2 on four in-memory
// devices) and a real iam store.
func newWorld(t *testing.T) *world {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := pebble.Open("db", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var rdevs []ring.Device
	var devs []objectstore.Device
	for i := 0; i < 4; i++ {
		rdevs = append(rdevs, ring.Device{ID: uint32(i), Zone: "z", Node: "n", Name: fmt.Sprint(i), Weight: 1})
		st, err := shard.Open(uint32(i), fmt.Sprint("dev", i), blockpool.NewMemVolume(64<<20), db, nil, log)
		if err != nil {
			t.Fatal(err)
		}
		devs = append(devs, st)
	}
	r, err := ring.Build(rdevs, 4, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg := objectstore.DefaultConfig()
	cfg.Logger = log
	store, err := objectstore.New(cfg, r, devs, metastore.NewPebble(db, "m/"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	users, err := iam.New(metastore.NewPebble(db, "iam/"), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	b := New(Config{
		Claims: metastore.NewPebble(db, "claims/"), Classes: metastore.NewPebble(db, "storageclasses/"),
		IAM: users, Store: store, Rescan: func(context.Context) {}, Endpoint: func() (string, int) { return "s3.test", 9000 },
		Region: "us-east-1", K: 2, M: 2, ParseEC: ring.ParseEC,
	})
	return &world{b: b, iam: users, store: store}
}

func (w *world) do(t *testing.T, op admin.Op, body string, path map[string]string) (*httptest.ResponseRecorder, error) {
	t.Helper()
	r := httptest.NewRequest("POST", "/", strings.NewReader(body))
	for k, v := range path {
		r.SetPathValue(k, v)
	}
	rec := httptest.NewRecorder()
	return rec, w.b.Handlers()[op](rec, &admin.Request{Request: r, Body: []byte(body)})
}

func claim(name, class, bucket string) claims.Claim {
	return claims.Claim{APIVersion: claims.APIVersion, Kind: claims.Kind,
		Metadata: claims.Metadata{Name: name, Namespace: "apps"},
		Spec:     claims.Spec{StorageClassName: class, BucketName: bucket}}
}

func TestStorageClassesAreValidated(t *testing.T) {
	w := newWorld(t)
	for _, c := range []struct {
		body string
		code string
	}{
		{`{"name":"gold","reclaim_policy":"Delete","ec":"2+2"}`, ""},
		{`{"name":"gold","reclaim_policy":"Delete"}`, "StorageClassExists"},
		{`{"name":"bad/name","reclaim_policy":"Delete"}`, admin.CodeInvalidArgument},
		{`{"name":"silver","reclaim_policy":"Keep"}`, admin.CodeInvalidArgument},
		{`{"name":"wide","reclaim_policy":"Retain","ec":"4+2"}`, admin.CodeInvalidArgument},
	} {
		rec, err := w.do(t, admin.ClassCreate, c.body, nil)
		if c.code == "" && (err != nil || rec.Code != http.StatusCreated) || c.code != "" && !admin.HasCode(err, c.code) {
			t.Errorf("%s: %d %v, want %q", c.body, rec.Code, err, c.code)
		}
	}
}

// A claim gets a bucket, a user limited to it and a key; applied again it
// gets the same; deleted under Delete everything goes, under Retain the
// bucket stays and the keys go.
func TestClaimLifecycle(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.do(t, admin.ClassCreate, `{"name":"gone","reclaim_policy":"Delete"}`, nil)
	w.do(t, admin.ClassCreate, `{"name":"kept","reclaim_policy":"Retain"}`, nil)
	ans, err := w.b.Apply(ctx, claim("one", "gone", "bucket-one"))
	if err != nil || !ans.Created || ans.Grant.SecretKey == "" || ans.Grant.Host != "s3.test" || ans.Record.Bucket != "bucket-one" {
		t.Fatalf("apply: %+v %v", ans, err)
	}
	u, err := w.iam.GetUser(ctx, ans.Record.User)
	if err != nil || u.MaxBuckets != 1 {
		t.Fatalf("the claim's user: %+v %v", u, err)
	}
	if b, err := w.store.HeadBucket(ctx, "bucket-one"); err != nil || b.Owner != ans.Record.User {
		t.Fatalf("the claim's bucket: %+v %v", b, err)
	}
	again, err := w.b.Apply(ctx, claim("one", "gone", "bucket-one"))
	if err != nil || again.Created || again.Grant.SecretKey != ans.Grant.SecretKey {
		t.Fatalf("apply again: %+v %v", again, err)
	}
	if _, err := w.b.Apply(ctx, claim("one", "kept", "bucket-one")); !admin.HasCode(err, "ClaimConflict") {
		t.Fatalf("another spec under the same name: %v", err)
	}
	if _, err := w.do(t, admin.ClassDelete, ``, map[string]string{"name": "gone"}); !admin.HasCode(err, admin.CodeStorageClassInUse) {
		t.Fatalf("deleting a class in use: %v", err)
	}
	if _, err := w.b.Delete(ctx, "apps", "one"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.HeadBucket(ctx, "bucket-one"); !errors.Is(err, objectstore.ErrNoSuchBucket) {
		t.Fatalf("bucket after a Delete reclaim: %v", err)
	}
	if _, err := w.iam.GetUser(ctx, ans.Record.User); !errors.Is(err, iam.ErrNoSuchUser) {
		t.Fatalf("user after a Delete reclaim: %v", err)
	}
	kept, err := w.b.Apply(ctx, claim("two", "kept", "bucket-two"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.b.Delete(ctx, "apps", "two"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.HeadBucket(ctx, "bucket-two"); err != nil {
		t.Fatalf("bucket after a Retain reclaim: %v", err)
	}
	if keys, _ := w.iam.ListKeys(ctx, kept.Record.User); len(keys) != 0 {
		t.Fatalf("keys after a Retain reclaim: %v", keys)
	}
	if _, err := w.b.Delete(ctx, "apps", "two"); !admin.HasCode(err, "NoSuchClaim") {
		t.Fatalf("deleting twice: %v", err)
	}
}

// A claim that cannot be bound leaves nothing half made.
func TestFailedClaimLeavesNothing(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.do(t, admin.ClassCreate, `{"name":"gone","reclaim_policy":"Delete"}`, nil)
	if err := w.store.CreateBucket(ctx, "taken"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.b.Apply(ctx, claim("three", "gone", "taken")); !admin.HasCode(err, "BucketAlreadyExists") {
		t.Fatalf("a claim of a taken bucket: %v", err)
	}
	if _, err := w.iam.GetUser(ctx, "obc.apps.three"); !errors.Is(err, iam.ErrNoSuchUser) {
		t.Fatalf("a failed claim left its user: %v", err)
	}
	if _, err := w.b.Apply(ctx, claim("four", "nosuch", "b4")); !admin.HasCode(err, "NoSuchStorageClass") {
		t.Fatalf("a claim of an unknown class: %v", err)
	}
	recs, err := w.b.records(ctx)
	if err != nil || len(recs) != 0 {
		t.Fatalf("records after failed claims: %v %v", recs, err)
	}
}

func TestEndpoint(t *testing.T) {
	cases := []struct {
		addr    string
		domains []string
		host    string
		port    int
	}{
		{"127.0.0.1:9000", []string{"s3.example"}, "127.0.0.1", 9000},
		{"0.0.0.0:9000", []string{"s3.example", "other"}, "s3.example", 9000},
		{"[::]:443", []string{"s3.example"}, "s3.example", 443},
		{"0.0.0.0:9000", nil, "0.0.0.0", 9000},
		{"10.0.0.5:80", nil, "10.0.0.5", 80},
	}
	for _, tc := range cases {
		if host, port := Endpoint(tc.addr, tc.domains); host != tc.host || port != tc.port {
			t.Errorf("Endpoint(%q, %q) = %s, %d; want %s, %d", tc.addr, tc.domains, host, port, tc.host, tc.port)
		}
	}
}

// Issue 19: a claim as kubectl exports it applies, both where it was
// bound (the same binding, not a conflict) and on a store that never saw
// it (its bucket is the name the provisioner wrote back).
func TestAClaimExportedByKubectlApplies(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.do(t, admin.ClassCreate, `{"name":"strata-bucket","reclaim_policy":"Delete"}`, nil)
	first := claim("photos", "strata-bucket", "")
	first.Spec.GenerateBucketName = "photos"
	ans, err := w.b.Apply(ctx, first)
	if err != nil || !strings.HasPrefix(ans.Record.Bucket, "photos-") {
		t.Fatalf("apply: %+v %v", ans, err)
	}
	// What `kubectl get obc photos -o yaml` gives back, as the CLI sends it.
	doc := `apiVersion: objectbucket.io/v1alpha1
kind: ObjectBucketClaim
metadata:
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{"spec":{"generateBucketName":"photos"}}'
  creationTimestamp: "2026-12-01T10:00:00Z"
  finalizers: [objectbucket.io/finalizer]
  generation: 2
  labels: {bucket-provisioner: strata.io-bucket}
  name: photos
  namespace: apps
  resourceVersion: "4242"
  uid: 6c1e0f7d-6a52-4c8e-9d3b-7d6f0a1b2c3d
spec:
  bucketName: ` + ans.Record.Bucket + `
  generateBucketName: photos
  objectBucketName: obc-apps-photos
  storageClassName: strata-bucket
status:
  phase: Bound
`
	exported, err := claims.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(exported)
	rec, err := w.do(t, admin.ClaimApply, string(body), nil)
	var again admin.ClaimAnswer
	json.Unmarshal(rec.Body.Bytes(), &again)
	if err != nil || rec.Code != http.StatusOK || again.Record.Bucket != ans.Record.Bucket || again.Grant.SecretKey != ans.Grant.SecretKey {
		t.Fatalf("the exported claim where it was bound: %d %v %+v", rec.Code, err, again)
	}
	// On a store that never saw it: bound to the bucket it names.
	other := newWorld(t)
	other.do(t, admin.ClassCreate, `{"name":"strata-bucket","reclaim_policy":"Delete"}`, nil)
	rec, err = other.do(t, admin.ClaimApply, string(body), nil)
	var fresh admin.ClaimAnswer
	json.Unmarshal(rec.Body.Bytes(), &fresh)
	if err != nil || rec.Code != http.StatusCreated || fresh.Record.Bucket != ans.Record.Bucket {
		t.Fatalf("the exported claim on another store: %d %v %+v", rec.Code, err, fresh)
	}
}
