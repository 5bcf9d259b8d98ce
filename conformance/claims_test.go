package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
	"sigs.k8s.io/yaml"
)

func claimYAML(name, bucketField, class, extra string) string {
	return "apiVersion: objectbucket.io/v1alpha1\nkind: ObjectBucketClaim\nmetadata:\n  name: " + name + "\n  namespace: apps\nspec:\n  " +
		bucketField + "\n  storageClassName: " + class + "\n" + extra
}

// applyClaim writes the claim to a file, applies it through the CLI and
// returns the YAML it printed and a client built from that ConfigMap and
// Secret, as a pod would.
func applyClaim(t *testing.T, s *server, doc string) (string, *minio.Client, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "claim.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustCLI(t, "claim", "apply", "-f", path, "--server", "http://"+s.admin)
	docs := strings.Split(strings.TrimPrefix(out, "---\n"), "---\n")
	if len(docs) != 2 {
		t.Fatalf("claim apply printed:\n%s", out)
	}
	var cm struct{ Data map[string]string }
	var sec struct{ Data map[string][]byte }
	if err := yaml.Unmarshal([]byte(docs[0]), &cm); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(docs[1]), &sec); err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(cm.Data["BUCKET_PORT"])
	c, err := minio.New(cm.Data["BUCKET_HOST"]+":"+strconv.Itoa(port), &minio.Options{
		Creds:  miniocreds.NewStaticV4(string(sec.Data["AWS_ACCESS_KEY_ID"]), string(sec.Data["AWS_SECRET_ACCESS_KEY"]), ""),
		Region: cm.Data["BUCKET_REGION"], MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	return out, c, cm.Data["BUCKET_NAME"]
}

// ObjectBucketClaims: a claim gets a bucket, keys that reach it alone and
// its quota, printed as a ConfigMap and a Secret; re-applying returns the
// same; deleting applies the class's reclaim policy; what cannot be done
// is refused with nothing half-made.
func TestBucketClaims(t *testing.T) {
	t.Parallel()
	s := startNode(t, t.TempDir())
	ctx := context.Background()
	srv := "--server=http://" + s.admin
	mustCLI(t, "storageclass", "create", "gone-with-claim", "--reclaim", "Delete", srv)
	mustCLI(t, "storageclass", "create", "kept", "--reclaim", "Retain", srv)
	root := minioClient(t, s, testSecret)
	if err := root.MakeBucket(ctx, "roots", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}

	doc := claimYAML("photos", "generateBucketName: photos", "gone-with-claim", "  additionalConfig:\n    maxSize: 64Ki\n")
	first, app, bucket := applyClaim(t, s, doc)
	again, _, _ := applyClaim(t, s, doc)
	if first != again || !strings.HasPrefix(bucket, "photos-") {
		t.Fatalf("re-applying the claim gave something else:\n%s\n%s", first, again)
	}
	small := bytes.Repeat([]byte("p"), 40<<10)
	if _, err := app.PutObject(ctx, bucket, "a", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := app.PutObject(ctx, bucket, "b", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{}); s3Code(err) != "QuotaExceeded" {
		t.Fatalf("past maxSize: %v", err)
	}
	if _, err := app.StatObject(ctx, "roots", "x", minio.StatObjectOptions{}); s3Code(err) != "AccessDenied" {
		t.Fatalf("the claim's keys in another bucket: %v", err)
	}
	if err := app.MakeBucket(ctx, "second", minio.MakeBucketOptions{}); s3Code(err) != "TooManyBuckets" {
		t.Fatalf("the claim's keys making another bucket: %v", err)
	}

	keptDoc := claimYAML("ledger", "bucketName: ledger-data", "kept", "")
	_, ledger, _ := applyClaim(t, s, keptDoc)
	if _, err := ledger.PutObject(ctx, "ledger-data", "entry", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	// Two claims, two buckets: each claim's keys read and write their own
	// and get AccessDenied on the other's; each lists only its own.
	for _, c := range []struct {
		cl         *minio.Client
		own, other string
	}{{app, bucket, "ledger-data"}, {ledger, "ledger-data", bucket}} {
		if _, err := c.cl.StatObject(ctx, c.other, "entry", minio.StatObjectOptions{}); s3Code(err) != "AccessDenied" {
			t.Fatalf("reading %s with %s's keys: %v", c.other, c.own, err)
		}
		if _, err := c.cl.PutObject(ctx, c.other, "x", bytes.NewReader([]byte("x")), 1, minio.PutObjectOptions{}); s3Code(err) != "AccessDenied" {
			t.Fatalf("writing %s with %s's keys: %v", c.other, c.own, err)
		}
		if o, err := c.cl.GetObject(ctx, c.own, map[bool]string{true: "a", false: "entry"}[c.own == bucket], minio.GetObjectOptions{}); err != nil {
			t.Fatal(err)
		} else if _, err := o.Stat(); err != nil {
			t.Fatalf("reading its own bucket %s: %v", c.own, err)
		}
		bs, err := c.cl.ListBuckets(ctx)
		if err != nil || len(bs) != 1 || bs[0].Name != c.own {
			t.Fatalf("%s's keys list %+v (%v)", c.own, bs, err)
		}
	}

	// Refusals, each leaving nothing behind.
	for _, c := range []struct {
		doc, want string
	}{
		{claimYAML("nope", "bucketName: nope-data", "no-such-class", ""), "NoSuchStorageClass"},
		{claimYAML("photos", "generateBucketName: photos", "kept", ""), "ClaimConflict"},
		{claimYAML("taken", "bucketName: roots", "kept", ""), "BucketAlreadyExists"},
		{strings.Replace(doc, "ObjectBucketClaim", "PersistentVolumeClaim", 1), "invalid claim"},
	} {
		path := filepath.Join(t.TempDir(), "claim.yaml")
		os.WriteFile(path, []byte(c.doc), 0o600)
		if out, err := strataCLI(t, "claim", "apply", "-f", path, srv); err == nil || !strings.Contains(out, c.want) {
			t.Errorf("claim apply: %v %s, want %s", err, out, c.want)
		}
	}
	var users []struct{ Name string }
	json.Unmarshal([]byte(mustCLI(t, "user", "list", "-o", "json", srv)), &users)
	if len(users) != 2 {
		t.Fatalf("users after refused claims: %+v", users)
	}

	// Retain: the bucket and its data stay (root reads them), the keys go.
	mustCLI(t, "claim", "delete", "apps/ledger", srv)
	if _, err := root.StatObject(ctx, "ledger-data", "entry", minio.StatObjectOptions{}); err != nil {
		t.Fatalf("a retained claim's data: %v", err)
	}
	if _, err := ledger.ListBuckets(ctx); s3Code(err) != "InvalidAccessKeyId" {
		t.Fatalf("a retained claim's keys still sign: %v", err)
	}
	// Delete: bucket, objects and user go.
	mustCLI(t, "claim", "delete", "apps/photos", srv)
	if ok, err := root.BucketExists(ctx, bucket); ok || err != nil {
		t.Fatalf("the deleted claim's bucket: %v %v", ok, err)
	}
	users = nil
	json.Unmarshal([]byte(mustCLI(t, "user", "list", "-o", "json", srv)), &users)
	if len(users) != 1 || users[0].Name != "obc.apps.ledger" {
		t.Fatalf("users after the claims went: %+v", users)
	}
	if out, err := strataCLI(t, "claim", "delete", "apps/photos", srv); err == nil || !strings.Contains(out, "NoSuchClaim") {
		t.Fatalf("deleting a deleted claim: %v %s", err, out)
	}
}
