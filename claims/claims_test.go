package claims

import (
	"errors"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const good = `apiVersion: objectbucket.io/v1alpha1
kind: ObjectBucketClaim
metadata:
  name: photos
  namespace: web
spec:
  generateBucketName: photos
  storageClassName: strata-delete
  additionalConfig:
    maxSize: 2Gi
    maxObjects: "1000"
`

func TestParseAndLimits(t *testing.T) {
	c, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	b, o, err := c.Limits()
	if err != nil || b != 2<<30 || o != 1000 || c.ID() != "web/photos" {
		t.Fatalf("%+v: %d %d %v", c, b, o, err)
	}
	for _, q := range []struct {
		in   string
		want int64
	}{{"1000", 1000}, {"2G", 2e9}, {"5Mi", 5 << 20}, {"1k", 1000}} {
		if got, err := ParseQuantity(q.in); err != nil || got != q.want {
			t.Errorf("%s: %d %v", q.in, got, err)
		}
	}
}

func TestRefusals(t *testing.T) {
	edit := func(from, to string) string { return strings.Replace(good, from, to, 1) }
	for name, doc := range map[string]string{
		"wrong kind":         edit("kind: ObjectBucketClaim", "kind: PersistentVolumeClaim"),
		"wrong version":      edit("objectbucket.io/v1alpha1", "objectbucket.io/v2"),
		"no name":            edit("name: photos", "name: \"\""),
		"bad name":           edit("name: photos", "name: Photos_1"),
		"both bucket names":  edit("generateBucketName: photos", "generateBucketName: photos\n  bucketName: p"),
		"no bucket name":     edit("generateBucketName: photos", ""),
		"no class":           edit("storageClassName: strata-delete", ""),
		"bad size":           edit("2Gi", "lots"),
		"negative objects":   edit(`"1000"`, `"-1"`),
		"unknown config":     edit("maxSize: 2Gi", "maxBuckets: \"2\""),
		"unknown spec field": edit("storageClassName", "storageClass: x\n  storageClassName"),
		"not yaml":           "{",
	} {
		if _, err := Parse([]byte(doc)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestGrantRendering(t *testing.T) {
	g := Grant{Namespace: "web", Name: "photos", Host: "s3.example", Port: 9000, Bucket: "photos-abcde", Region: "us-east-1", AccessKey: "AK", SecretKey: "SK"}
	out, err := g.YAML()
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(strings.TrimPrefix(string(out), "---\n"), "---\n")
	if len(docs) != 2 {
		t.Fatalf("%d documents:\n%s", len(docs), out)
	}
	var cm struct {
		Kind string
		Data map[string]string
	}
	var sec struct {
		Kind string
		Data map[string][]byte // base64 in YAML
	}
	if err := yaml.Unmarshal([]byte(docs[0]), &cm); err != nil || cm.Kind != "ConfigMap" || cm.Data["BUCKET_NAME"] != "photos-abcde" || cm.Data["BUCKET_PORT"] != "9000" {
		t.Fatalf("config map: %+v %v", cm, err)
	}
	if err := yaml.Unmarshal([]byte(docs[1]), &sec); err != nil || sec.Kind != "Secret" || string(sec.Data["AWS_SECRET_ACCESS_KEY"]) != "SK" {
		t.Fatalf("secret: %+v %v", sec, err)
	}
	if env := g.Env(); !strings.Contains(env, "AWS_ACCESS_KEY_ID=AK\n") || !strings.Contains(env, "BUCKET_HOST=s3.example\n") {
		t.Fatalf("env:\n%s", env)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("apiVersion: objectbucket.io/v1alpha1\nkind: ObjectBucketClaim\nmetadata:\n  name: photos\n  namespace: app\nspec:\n  generateBucketName: photos\n  storageClassName: strata\n"))
	f.Add([]byte(`{"kind":"ObjectBucketClaim","metadata":{"name":"a"}}`))
	f.Add([]byte("a: &x [*x, *x]\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		if c, err := Parse(doc); err == nil {
			if _, err := Parse(mustYAML(t, c)); err != nil {
				t.Fatalf("an accepted claim does not parse again: %v", err)
			}
		}
	})
}

func mustYAML(t *testing.T, v any) []byte {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// exported is a claim as `kubectl get obc photos -n apps -o yaml` prints
// it once a provisioner bound it.
const exported = `apiVersion: objectbucket.io/v1alpha1
kind: ObjectBucketClaim
metadata:
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: |
      {"apiVersion":"objectbucket.io/v1alpha1","kind":"ObjectBucketClaim","metadata":{"annotations":{},"name":"photos","namespace":"apps"},"spec":{"generateBucketName":"photos","storageClassName":"strata-bucket"}}
  creationTimestamp: "2026-12-01T10:00:00Z"
  finalizers:
  - objectbucket.io/finalizer
  generation: 3
  labels:
    app: gallery
    bucket-provisioner: strata.io-bucket
  managedFields:
  - apiVersion: objectbucket.io/v1alpha1
    fieldsType: FieldsV1
    fieldsV1:
      f:spec:
        .: {}
        f:generateBucketName: {}
    manager: kubectl-client-side-apply
    operation: Update
    time: "2026-12-01T10:00:00Z"
  name: photos
  namespace: apps
  resourceVersion: "123456"
  uid: 0f7d6c1e-6a52-4c8e-9d3b-7d6f0a1b2c3d
spec:
  additionalConfig:
    maxSize: 2Gi
  bucketName: photos-k3x9q
  generateBucketName: photos
  objectBucketName: obc-apps-photos
  storageClassName: strata-bucket
status:
  phase: Bound
`

func TestAClaimAsKubectlExportsItParses(t *testing.T) {
	c, err := Parse([]byte(exported))
	if err != nil {
		t.Fatal(err)
	}
	if c.ID() != "apps/photos" || c.Spec.BucketName != "photos-k3x9q" || c.Metadata.Labels["app"] != "gallery" || c.Status["phase"] != "Bound" {
		t.Fatalf("parsed: %+v", c)
	}
	if max, _, err := c.Limits(); err != nil || max != 2<<30 {
		t.Fatalf("limits: %d %v", max, err)
	}
	// What is not Kubernetes' is still refused, as is a pair of names
	// that asks for two buckets.
	for _, doc := range []string{
		strings.Replace(exported, "  phase: Bound", "  phase: Bound\nextra: 1", 1),
		strings.Replace(exported, "  storageClassName: strata-bucket", "  storageClassName: strata-bucket\n  bucketClass: gold", 1),
		strings.Replace(exported, "bucketName: photos-k3x9q", "bucketName: other-bucket", 1),
	} {
		if _, err := Parse([]byte(doc)); err == nil {
			t.Errorf("accepted:\n%s", doc)
		}
	}
}
