package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// userClient creates a user and a key through the CLI and returns a
// minio-go client signing with it, and the key.
func userClient(t *testing.T, s *server, name string) (*minio.Client, string) {
	t.Helper()
	mustCLI(t, "user", "create", name, "--server", "http://"+s.admin)
	var k struct {
		AccessKey string `json:"access_key"`
		SecretKey string `json:"secret_key"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, "key", "create", name, "-o", "json", "--server", "http://"+s.admin)), &k); err != nil {
		t.Fatal(err)
	}
	c, err := minio.New(s.s3, &minio.Options{Creds: miniocreds.NewStaticV4(k.AccessKey, k.SecretKey, ""), Region: "us-east-1", MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	return c, k.AccessKey
}

func s3Code(err error) string { return minio.ToErrorResponse(err).Code }

// Users see and touch only their own buckets unless a bucket policy
// grants more; root sees everything; a disabled user's keys stop signing.
func TestUsersOwnTheirBuckets(t *testing.T) {
	t.Parallel()
	s := startNode(t, t.TempDir())
	ctx := context.Background()
	alice, _ := userClient(t, s, "alice")
	bob, bobKey := userClient(t, s, "bob")
	if err := alice.MakeBucket(ctx, "alice-data", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	body := []byte("alice's object")
	if _, err := alice.PutObject(ctx, "alice-data", "k", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := bob.MakeBucket(ctx, "bob-data", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	names := func(c *minio.Client) string {
		bs, err := c.ListBuckets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, b := range bs {
			out = append(out, b.Name)
		}
		return strings.Join(out, ",")
	}
	if got := names(alice); got != "alice-data" {
		t.Fatalf("alice lists %q", got)
	}
	if got := names(bob); got != "bob-data" {
		t.Fatalf("bob lists %q", got)
	}
	if got := names(minioClient(t, s, testSecret)); got != "alice-data,bob-data" {
		t.Fatalf("root lists %q", got)
	}
	read := func(c *minio.Client, bucket, key string) ([]byte, error) {
		o, err := c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
		if err != nil {
			return nil, err
		}
		defer o.Close()
		return io.ReadAll(o)
	}
	// Bob may not read, write, list, copy from or take alice's bucket.
	refusals := []struct {
		what string
		err  error
		code string
	}{
		{"get", func() error { _, err := read(bob, "alice-data", "k"); return err }(), "AccessDenied"},
		{"put", func() error {
			_, err := bob.PutObject(ctx, "alice-data", "x", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
			return err
		}(), "AccessDenied"},
		{"list", func() error {
			for o := range bob.ListObjects(ctx, "alice-data", minio.ListObjectsOptions{}) {
				return o.Err
			}
			return nil
		}(), "AccessDenied"},
		{"copy out", func() error {
			_, err := bob.CopyObject(ctx, minio.CopyDestOptions{Bucket: "bob-data", Object: "stolen"}, minio.CopySrcOptions{Bucket: "alice-data", Object: "k"})
			return err
		}(), "AccessDenied"},
		{"delete bucket", bob.RemoveBucket(ctx, "alice-data"), "AccessDenied"},
		{"create taken name", bob.MakeBucket(ctx, "alice-data", minio.MakeBucketOptions{}), "BucketAlreadyExists"},
		{"create own again (200 in us-east-1)", alice.MakeBucket(ctx, "alice-data", minio.MakeBucketOptions{}), ""},
	}
	for _, r := range refusals {
		if s3Code(r.err) != r.code {
			t.Errorf("bob %s: %v, want %s", r.what, r.err, r.code)
		}
	}
	// A browser form bob signed cannot upload into alice's bucket either.
	pp := minio.NewPostPolicy()
	pp.SetBucket("alice-data")
	pp.SetKey("from-bob")
	pp.SetExpires(time.Now().UTC().Add(time.Hour))
	u, fd, err := bob.PresignedPostPolicy(ctx, pp)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for k := range fd {
		order = append(order, k)
	}
	if resp, out := postForm(t, u.String(), fd, order, body); resp.StatusCode != 403 || !strings.Contains(out, "AccessDenied") {
		t.Fatalf("bob's signed POST into alice's bucket: %d %s", resp.StatusCode, out)
	}
	// A bucket policy grants bob reads of alice's objects, nothing more.
	pol := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam:::user/bob"]},"Action":"s3:GetObject","Resource":"arn:aws:s3:::alice-data/*"}]}`
	if err := alice.SetBucketPolicy(ctx, "alice-data", pol); err != nil {
		t.Fatal(err)
	}
	if got, err := read(bob, "alice-data", "k"); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("bob reads with the policy: %v", err)
	}
	if _, err := bob.PutObject(ctx, "alice-data", "x", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); s3Code(err) != "AccessDenied" {
		t.Fatalf("bob writes with a read-only policy: %v", err)
	}
	// Quotas: a bucket's object count, and a user's bytes over all its
	// buckets, refuse writes past them with QuotaExceeded.
	mustCLI(t, "bucket", "quota", "alice-data", "--max-objects", "3", "--server", "http://"+s.admin)
	for i, want := range []string{"", "", "QuotaExceeded"} { // k is there already
		_, err := alice.PutObject(ctx, "alice-data", fmt.Sprint("q", i), bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
		if s3Code(err) != want {
			t.Fatalf("put %d into a 3-object bucket: %v, want %q", i, err, want)
		}
	}
	// A 10 MiB bucket quota refuses the write that crosses it; deleting
	// an object makes room again at once.
	if err := alice.MakeBucket(ctx, "alice-ten", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, "bucket", "quota", "alice-ten", "--max-size", "10MiB", "--server", "http://"+s.admin)
	four := bytes.Repeat([]byte("4"), 4<<20)
	for i, want := range []string{"", "", "QuotaExceeded"} {
		_, err := alice.PutObject(ctx, "alice-ten", fmt.Sprint("m", i), bytes.NewReader(four), int64(len(four)), minio.PutObjectOptions{})
		if s3Code(err) != want {
			t.Fatalf("4 MiB write %d into a 10 MiB bucket: %v, want %q", i, err, want)
		}
	}
	if err := alice.RemoveObject(ctx, "alice-ten", "m0", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.PutObject(ctx, "alice-ten", "m2", bytes.NewReader(four), int64(len(four)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("writing after a delete made room: %v", err)
	}
	// In a versioned bucket the versions an overwrite keeps count; a
	// delete that only adds a marker frees nothing, removing a version
	// frees its bytes.
	if err := alice.MakeBucket(ctx, "alice-ver", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := alice.EnableVersioning(ctx, "alice-ver"); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, "bucket", "quota", "alice-ver", "--max-size", "10MiB", "--server", "http://"+s.admin)
	var first string
	for i, want := range []string{"", "", "QuotaExceeded"} {
		info, err := alice.PutObject(ctx, "alice-ver", "doc", bytes.NewReader(four), int64(len(four)), minio.PutObjectOptions{})
		if s3Code(err) != want {
			t.Fatalf("4 MiB overwrite %d in a versioned 10 MiB bucket: %v, want %q", i, err, want)
		}
		if i == 0 {
			first = info.VersionID
		}
	}
	if err := alice.RemoveObject(ctx, "alice-ver", "doc", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.PutObject(ctx, "alice-ver", "doc", bytes.NewReader(four), int64(len(four)), minio.PutObjectOptions{}); s3Code(err) != "QuotaExceeded" {
		t.Fatalf("a delete marker made room: %v", err)
	}
	if err := alice.RemoveObject(ctx, "alice-ver", "doc", minio.RemoveObjectOptions{VersionID: first}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.PutObject(ctx, "alice-ver", "doc", bytes.NewReader(four), int64(len(four)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("writing after a version was removed: %v", err)
	}
	// Parts of an unfinished upload count, also after a usage scan.
	if err := alice.MakeBucket(ctx, "alice-mp", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, "bucket", "quota", "alice-mp", "--max-size", "12MiB", "--server", "http://"+s.admin)
	core := minio.Core{Client: alice}
	upID, err := core.NewMultipartUpload(ctx, "alice-mp", "big", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	five := bytes.Repeat([]byte("5"), 5<<20)
	for n := 1; n <= 2; n++ {
		if _, err := core.PutObjectPart(ctx, "alice-mp", "big", upID, n, bytes.NewReader(five), int64(len(five)), minio.PutObjectPartOptions{}); err != nil {
			t.Fatalf("part %d: %v", n, err)
		}
	}
	// Setting the quota again rescans the bucket: the parts are counted.
	mustCLI(t, "bucket", "quota", "alice-mp", "--max-size", "12MiB", "--server", "http://"+s.admin)
	if _, err := core.PutObjectPart(ctx, "alice-mp", "big", upID, 3, bytes.NewReader(five), int64(len(five)), minio.PutObjectPartOptions{}); s3Code(err) != "QuotaExceeded" {
		t.Fatalf("a third 5 MiB part past 12 MiB: %v", err)
	}
	mustCLI(t, "user", "quota", "bob", "--max-size", "100KiB", "--server", "http://"+s.admin)
	big := bytes.Repeat([]byte("b"), 60<<10)
	if _, err := bob.PutObject(ctx, "bob-data", "one", bytes.NewReader(big), int64(len(big)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.PutObject(ctx, "bob-data", "two", bytes.NewReader(big), int64(len(big)), minio.PutObjectOptions{}); s3Code(err) != "QuotaExceeded" {
		t.Fatalf("bob past 100 KiB: %v", err)
	}
	var listing []struct {
		Name, Owner string
		Usage       struct{ Bytes, Objects int64 }
		Quota       struct {
			MaxObjects int64 `json:"max_objects"`
		}
	}
	if err := json.Unmarshal([]byte(mustCLI(t, "bucket", "list", "-o", "json", "--server", "http://"+s.admin)), &listing); err != nil {
		t.Fatal(err)
	}
	if len(listing) != 5 || listing[0].Name != "alice-data" || listing[0].Owner != "alice" || listing[0].Usage.Objects != 3 || listing[0].Quota.MaxObjects != 3 ||
		listing[4].Owner != "bob" || listing[4].Usage.Bytes != 60<<10 {
		t.Fatalf("bucket list: %+v", listing)
	}
	// An IAM-style policy attached to a user grants (and denies) too.
	carol, _ := userClient(t, s, "carol")
	if _, err := read(carol, "alice-data", "k"); s3Code(err) != "AccessDenied" {
		t.Fatalf("carol without a policy: %v", err)
	}
	polFile := t.TempDir() + "/carol.json"
	os.WriteFile(polFile, []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::alice-data/*"]}]}`), 0o600)
	mustCLI(t, "user", "policy", "carol", "-f", polFile, "--server", "http://"+s.admin)
	if got, err := read(carol, "alice-data", "k"); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("carol with a read policy: %v", err)
	}
	if _, err := carol.PutObject(ctx, "alice-data", "c", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); s3Code(err) != "AccessDenied" {
		t.Fatalf("carol writes with a read policy: %v", err)
	}
	os.WriteFile(polFile, []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}`), 0o600)
	if out, err := strataCLI(t, "user", "policy", "carol", "-f", polFile, "--server", "http://"+s.admin); err == nil || !strings.Contains(out, "MalformedPolicy") {
		t.Fatalf("a user policy with a Principal: %v %s", err, out)
	}
	mustCLI(t, "user", "policy", "carol", "--detach", "--server", "http://"+s.admin)
	if _, err := read(carol, "alice-data", "k"); s3Code(err) != "AccessDenied" {
		t.Fatalf("carol after the policy was detached: %v", err)
	}
	// Root reaches everything.
	if got, err := read(minioClient(t, s, testSecret), "bob-data", "nothing"); err == nil || s3Code(err) != "NoSuchKey" {
		t.Fatalf("root in bob's bucket: %q %v", got, err)
	}
	// A user that owns buckets cannot be deleted; a disabled one's keys
	// stop signing within the cache's lifetime.
	if out, err := strataCLI(t, "user", "delete", "alice", "--server", "http://"+s.admin); err == nil || !strings.Contains(out, "UserOwnsBuckets") {
		t.Fatalf("deleting a user with buckets: %v %s", err, out)
	}
	mustCLI(t, "user", "disable", "bob", "--server", "http://"+s.admin)
	time.Sleep(2100 * time.Millisecond)
	if _, err := bob.ListBuckets(ctx); s3Code(err) != "InvalidAccessKeyId" {
		t.Fatalf("a disabled user lists: %v", err)
	}
	mustCLI(t, "user", "enable", "bob", "--server", "http://"+s.admin)
	mustCLI(t, "key", "disable", bobKey, "--server", "http://"+s.admin)
	time.Sleep(2100 * time.Millisecond)
	// The answer is AWS's code, and its words do not send the operator
	// looking for a key that is there (nor tell a caller whether it is).
	if _, err := bob.ListBuckets(ctx); s3Code(err) != "InvalidAccessKeyId" || !strings.Contains(err.Error(), "does not exist in our records or is disabled") {
		t.Fatalf("a disabled key lists: %v", err)
	}
	// Admin users call the admin API as root does; other users are
	// refused; both are in the audit log.
	mustCLI(t, "user", "create", "dave", "--admin", "--server", "http://"+s.admin)
	var dk struct {
		AccessKey string `json:"access_key"`
		SecretKey string `json:"secret_key"`
	}
	json.Unmarshal([]byte(mustCLI(t, "key", "create", "dave", "-o", "json", "--server", "http://"+s.admin)), &dk)
	as := func(access, secret string, args ...string) (string, error) {
		return strataCLI(t, append(args, "--server", "http://"+s.admin, "--access-key", access, "--secret-key", secret)...)
	}
	if out, err := as(dk.AccessKey, dk.SecretKey, "user", "create", "frank"); err != nil {
		t.Fatalf("an admin user creating a user: %v %s", err, out)
	}
	var ck struct {
		AccessKey string `json:"access_key"`
		SecretKey string `json:"secret_key"`
	}
	json.Unmarshal([]byte(mustCLI(t, "key", "create", "carol", "-o", "json", "--server", "http://"+s.admin)), &ck)
	if out, err := as(ck.AccessKey, ck.SecretKey, "user", "create", "eve"); err == nil || !strings.Contains(out, "AccessDenied") {
		t.Fatalf("a plain user creating a user: %v %s", err, out)
	}
	var audit []struct {
		Principal, Method, Path, Code string
		Status                        int
	}
	if err := json.Unmarshal([]byte(mustCLI(t, "audit", "-o", "json", "--server", "http://"+s.admin)), &audit); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, e := range audit {
		switch {
		case e.Principal == "root" && e.Method == "POST" && e.Path == "/admin/v1/users" && e.Status == 201:
			found["root created a user"] = true
		case e.Principal == "dave" && e.Path == "/admin/v1/users" && e.Status == 201:
			found["dave created a user"] = true
		case e.Principal == "carol" && e.Status == 403 && e.Code == "AccessDenied":
			found["carol was refused"] = true
		case e.Method == "GET":
			t.Errorf("a read is in the audit log: %+v", e)
		}
	}
	if len(found) != 3 {
		t.Fatalf("audit log lacks entries (found %v):\n%+v", found, audit)
	}
	// Bad admin requests get their errors.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"user", "create", "alice"}, "UserExists"},
		{[]string{"user", "create", "no/slash"}, "InvalidArgument"},
		{[]string{"key", "create", "nobody"}, "NoSuchUser"},
		{[]string{"key", "delete", "STRKNOSUCHKEY0000000"}, "NoSuchKey"},
		{[]string{"user", "disable", "nobody"}, "NoSuchUser"},
	} {
		if out, err := strataCLI(t, append(c.args, "--server", "http://"+s.admin)...); err == nil || !strings.Contains(out, c.want) {
			t.Errorf("strata %v: %v %s, want %s", c.args, err, out, c.want)
		}
	}
}

// A key disabled through one gateway is refused by every gateway at once
// (each drops its cached keys when the store says a key changed).
func TestDisabledKeyIsRefusedOnEveryGateway(t *testing.T) {
	t.Parallel()
	requireTool(t, "etcd", "etcd")
	c := startCluster(t, 3, 3, "2+1")
	ctx := context.Background()
	c.cli(t, c.nodes[0], "user", "create", "gina")
	var k struct {
		AccessKey string `json:"access_key"`
		SecretKey string `json:"secret_key"`
	}
	if err := json.Unmarshal([]byte(c.cli(t, c.nodes[0], "key", "create", "gina", "-o", "json")), &k); err != nil {
		t.Fatal(err)
	}
	var clients []*minio.Client
	for _, nd := range c.nodes {
		mc, err := minio.New(nd.s3, &minio.Options{Creds: miniocreds.NewStaticV4(k.AccessKey, k.SecretKey, ""), Region: "us-east-1", MaxRetries: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mc.ListBuckets(ctx); err != nil {
			t.Fatalf("%s with gina's key: %v", nd.name, err)
		}
		clients = append(clients, mc)
	}
	c.cli(t, c.nodes[1], "key", "disable", k.AccessKey)
	start := time.Now()
	var slowest time.Duration
	for i, mc := range clients {
		for {
			_, err := mc.ListBuckets(ctx)
			if s3Code(err) == "InvalidAccessKeyId" {
				slowest = max(slowest, time.Since(start))
				break
			}
			if time.Since(start) > time.Second {
				t.Fatalf("%s still takes the disabled key after 1 s: %v", c.nodes[i].name, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Logf("every gateway refused the disabled key within %v of the CLI's answer", slowest)
}

// Issue 17 item 3: owners are who S3 says they are. Each user has a stable
// 64-hex canonical id (the admin API shows it); listings by anyone show a
// bucket's real owner, ListMultipartUploads and ListParts the real
// initiator, ACLs the owner, and root has an id of its own.
func TestOwnersAreCanonicalUsers(t *testing.T) {
	t.Parallel()
	s := startNode(t, t.TempDir())
	ctx := context.Background()
	alice, _ := userClient(t, s, "alice")
	var users []struct {
		Name        string `json:"name"`
		CanonicalID string `json:"canonical_id"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, "user", "list", "-o", "json", "--server", "http://"+s.admin)), &users); err != nil || len(users) != 1 {
		t.Fatalf("user list: %v %v", users, err)
	}
	aliceID := users[0].CanonicalID
	if len(aliceID) != 64 || strings.Trim(aliceID, "0123456789abcdef") != "" {
		t.Fatalf("alice's canonical id %q", aliceID)
	}
	if err := alice.MakeBucket(ctx, "alice-owned", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	alice.PutObject(ctx, "alice-owned", "k", strings.NewReader("v"), 1, minio.PutObjectOptions{})
	root := awsClient(s, testSecret, true)

	lb, err := root.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	rootID := aws.ToString(lb.Owner.ID)
	if len(rootID) != 64 || rootID == aliceID {
		t.Fatalf("root's canonical id %q (alice %q)", rootID, aliceID)
	}
	// root lists alice's bucket: the objects are alice's.
	l, err := root.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("alice-owned"), FetchOwner: aws.Bool(true)})
	if err != nil || len(l.Contents) != 1 || aws.ToString(l.Contents[0].Owner.ID) != aliceID || aws.ToString(l.Contents[0].Owner.DisplayName) != "alice" {
		t.Fatalf("fetch-owner as root: %+v %v", l, err)
	}
	acl, err := root.GetBucketAcl(ctx, &s3.GetBucketAclInput{Bucket: aws.String("alice-owned")})
	if err != nil || aws.ToString(acl.Owner.ID) != aliceID {
		t.Fatalf("bucket ACL owner: %+v %v", acl, err)
	}
	// alice starts an upload in her bucket; root lists it.
	core := minio.Core{Client: alice}
	uploadID, err := core.NewMultipartUpload(ctx, "alice-owned", "big", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ups, err := root.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("alice-owned")})
	if err != nil || len(ups.Uploads) != 1 || aws.ToString(ups.Uploads[0].Initiator.ID) != aliceID || aws.ToString(ups.Uploads[0].Owner.ID) != aliceID {
		t.Fatalf("uploads as root: %+v %v", ups, err)
	}
	parts, err := root.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("alice-owned"), Key: aws.String("big"), UploadId: aws.String(uploadID)})
	if err != nil || aws.ToString(parts.Initiator.ID) != aliceID || aws.ToString(parts.Owner.ID) != aliceID {
		t.Fatalf("parts as root: %+v %v", parts, err)
	}
	// The id is stable: read again once the cached one has expired.
	time.Sleep(2100 * time.Millisecond)
	if l2, _ := root.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("alice-owned"), FetchOwner: aws.Bool(true)}); aws.ToString(l2.Contents[0].Owner.ID) != aliceID {
		t.Fatal("alice's id changed")
	}
	// x-amz-expected-bucket-owner takes her canonical id.
	if _, err := root.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("alice-owned"), ExpectedBucketOwner: aws.String(aliceID)}); err != nil {
		t.Fatalf("expected owner = alice's id: %v", err)
	}
	if _, err := root.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("alice-owned"), ExpectedBucketOwner: aws.String(rootID)}); err == nil {
		t.Fatal("expected owner = root's id was accepted for alice's bucket")
	}
}
