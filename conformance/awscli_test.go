package conformance

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAWSCLI drives the built binary with the real aws CLI (Debian's
// awscli): bucket creation, a multipart upload (100 MiB) and a parallel
// ranged download, sync of a tree both ways, presign, a versioning round
// trip with s3api, listing, and S3 errors.
func TestAWSCLI(t *testing.T) {
	t.Parallel()
	aws := requireTool(t, "aws", "/usr/bin/aws")
	srv := startBinaryServer(t, t.TempDir())
	dir := t.TempDir()
	run := func(secret string, args ...string) (string, error) {
		if len(args) > 1 && args[0] == "s3" && args[1] == "cp" {
			args = append(args, "--no-progress")
		}
		cmd := exec.Command(aws, append([]string{"--endpoint-url", "http://" + srv.s3}, args...)...)
		cmd.Env = clientEnv("AWS_ACCESS_KEY_ID="+testUser, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_DEFAULT_REGION=us-east-1",
			"AWS_CONFIG_FILE="+filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"), "AWS_EC2_METADATA_DISABLED=true")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(testSecret, "s3", "mb", "s3://cli-bucket"); err != nil {
		t.Fatalf("mb: %v\n%s", err, out)
	}
	src := filepath.Join(dir, "big.bin")
	data := make([]byte, 100<<20)
	rand.Read(data)
	os.WriteFile(src, data, 0o600)
	if out, err := run(testSecret, "s3", "cp", src, "s3://cli-bucket/big.bin"); err != nil {
		t.Fatalf("cp up: %v\n%s", err, out)
	}
	back := filepath.Join(dir, "back.bin")
	if out, err := run(testSecret, "s3", "cp", "s3://cli-bucket/big.bin", back); err != nil {
		t.Fatalf("cp down: %v\n%s", err, out)
	}
	got, _ := os.ReadFile(back)
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatal("100 MiB round trip through aws s3 cp differs")
	}
	// sync a directory tree up and back down.
	tree := filepath.Join(dir, "tree")
	writeTree(t, tree, 150, 2000)
	if out, err := run(testSecret, "s3", "sync", tree, "s3://cli-bucket/tree"); err != nil {
		t.Fatalf("sync up: %v\n%s", err, out)
	}
	restored := filepath.Join(dir, "restored")
	if out, err := run(testSecret, "s3", "sync", "s3://cli-bucket/tree", restored); err != nil {
		t.Fatalf("sync down: %v\n%s", err, out)
	}
	if out, err := exec.Command("diff", "-r", tree, restored).CombinedOutput(); err != nil {
		t.Fatalf("tree after aws s3 sync round trip differs: %s", out)
	}
	// A second sync finds nothing to do.
	if out, err := run(testSecret, "s3", "sync", tree, "s3://cli-bucket/tree"); err != nil || strings.Contains(out, "upload:") {
		t.Fatalf("second sync uploaded again: %v\n%s", err, out)
	}
	// presign, then fetch with a plain HTTP client.
	url, err := run(testSecret, "s3", "presign", "s3://cli-bucket/tree/d01/sub1/file-0001.bin", "--expires-in", "300")
	if err != nil {
		t.Fatalf("presign: %v\n%s", err, url)
	}
	resp, err := http.Get(strings.TrimSpace(url))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET presigned URL: %v %v", err, resp)
	}
	want, _ := os.ReadFile(filepath.Join(tree, "d01", "sub1", "file-0001.bin"))
	if readAllString(resp.Body) != string(want) {
		t.Fatal("presigned URL returned other bytes")
	}
	out, err := run(testSecret, "s3", "ls", "s3://cli-bucket")
	if err != nil || !strings.Contains(out, "104857600 big.bin") || !strings.Contains(out, "PRE tree/") {
		t.Fatalf("ls: %v\n%s", err, out)
	}
	for _, c := range []struct {
		secret string
		args   []string
		want   string
	}{
		{"wrong-secret", []string{"s3api", "list-buckets"}, "SignatureDoesNotMatch"},
		{testSecret, []string{"s3api", "create-bucket", "--bucket", "Bad_Name"}, "InvalidBucketName"},
		{testSecret, []string{"s3api", "get-object", "--bucket", "cli-bucket", "--key", "missing", filepath.Join(dir, "x")}, "NoSuchKey"},
		{testSecret, []string{"s3api", "delete-bucket", "--bucket", "cli-bucket"}, "BucketNotEmpty"},
	} {
		out, err := run(c.secret, c.args...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("aws %s: want %s, got %v\n%s", strings.Join(c.args, " "), c.want, err, out)
		}
	}
	// Versioning round trip with s3api.
	if out, err := run(testSecret, "s3", "mb", "s3://cli-versions"); err != nil {
		t.Fatalf("mb: %v\n%s", err, out)
	}
	if out, err := run(testSecret, "s3api", "put-bucket-versioning", "--bucket", "cli-versions", "--versioning-configuration", "Status=Enabled"); err != nil {
		t.Fatalf("put-bucket-versioning: %v\n%s", err, out)
	}
	var firstVersion string
	for i, body := range []string{"first", "second"} {
		f := filepath.Join(dir, fmt.Sprint("v", i))
		os.WriteFile(f, []byte(body), 0o600)
		out, err := run(testSecret, "s3api", "put-object", "--bucket", "cli-versions", "--key", "doc", "--body", f, "--query", "VersionId", "--output", "text")
		if err != nil {
			t.Fatalf("put-object: %v\n%s", err, out)
		}
		if i == 0 {
			firstVersion = strings.TrimSpace(out)
		}
	}
	out, err = run(testSecret, "s3api", "list-object-versions", "--bucket", "cli-versions", "--query", "length(Versions)", "--output", "text")
	if err != nil || strings.TrimSpace(out) != "2" {
		t.Fatalf("list-object-versions: %v\n%s", err, out)
	}
	old := filepath.Join(dir, "old")
	if out, err := run(testSecret, "s3api", "get-object", "--bucket", "cli-versions", "--key", "doc", "--version-id", firstVersion, old); err != nil {
		t.Fatalf("get-object --version-id: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(old); string(b) != "first" {
		t.Fatalf("old version reads %q", b)
	}
	if out, err := run(testSecret, "s3", "rm", "--recursive", "s3://cli-bucket"); err != nil {
		t.Fatalf("rm: %v\n%s", err, out)
	}
	if out, err := run(testSecret, "s3", "rb", "s3://cli-bucket"); err != nil {
		t.Fatalf("rb: %v\n%s", err, out)
	}
}
