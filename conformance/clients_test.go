package conformance

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Scripted scenarios with real clients from Debian (python3-boto3, s3cmd,
// rclone), each checking byte-identical results. They skip when a client
// is missing, and fail then under STRATA_REQUIRE_TOOLS=1 (CI).

func writeTree(t *testing.T, dir string, files, size int) {
	t.Helper()
	for i := 0; i < files; i++ {
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i%10), fmt.Sprintf("sub%d", i%3), fmt.Sprintf("file-%04d.bin", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		b := make([]byte, size+i)
		rand.Read(b)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// clientEnv is the test's environment without AWS_* settings (a CA bundle
// or profile of the machine must not leak into the clients under test).
func clientEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "RCLONE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = clientEnv(env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

const boto3Script = `
import boto3, botocore, hashlib, os, sys
from boto3.s3.transfer import TransferConfig
endpoint, work = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id=os.environ["KEY"], aws_secret_access_key=os.environ["SECRET"],
                  config=botocore.config.Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
s3.create_bucket(Bucket="boto")
src = os.path.join(work, "big.bin")
with open(src, "wb") as f:
    f.write(os.urandom(40 * 1024 * 1024 + 12345))
cfg = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024, max_concurrency=4)
s3.upload_file(src, "boto", "dir/big.bin", Config=cfg)
head = s3.head_object(Bucket="boto", Key="dir/big.bin")
assert head["ETag"].endswith('-6"'), head["ETag"]
dst = os.path.join(work, "back.bin")
s3.download_file("boto", "dir/big.bin", dst, Config=cfg)
digest = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
assert digest(src) == digest(dst), "download differs"
for i in range(250):
    s3.put_object(Bucket="boto", Key="many/%04d" % i, Body=b"x" * i)
keys = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="boto", Prefix="many/", PaginationConfig={"PageSize": 40}):
    keys += [o["Key"] for o in page.get("Contents", [])]
assert keys == ["many/%04d" % i for i in range(250)], len(keys)
prefixes = []
for page in s3.get_paginator("list_objects").paginate(Bucket="boto", Delimiter="/"):
    prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
assert prefixes == ["dir/", "many/"], prefixes
s3.copy_object(Bucket="boto", Key="copy.bin", CopySource={"Bucket": "boto", "Key": "dir/big.bin"})
body = s3.get_object(Bucket="boto", Key="copy.bin")["Body"].read()
assert hashlib.sha256(body).hexdigest() == digest(src), "copy differs"
# Conditional put (this boto3 predates the IfNoneMatch parameter: set the header).
def if_none_match(request, **kw):
    request.headers["If-None-Match"] = "*"
s3.meta.events.register("before-sign.s3.PutObject", if_none_match)
s3.put_object(Bucket="boto", Key="once", Body=b"first")
try:
    s3.put_object(Bucket="boto", Key="once", Body=b"second")
    raise AssertionError("second create-only put succeeded")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "PreconditionFailed", e.response
s3.meta.events.unregister("before-sign.s3.PutObject", if_none_match)
assert s3.get_object(Bucket="boto", Key="once")["Body"].read() == b"first"
try:
    s3.get_object(Bucket="boto", Key="missing")
    raise AssertionError("missing key found")
except s3.exceptions.NoSuchKey:
    pass
# User metadata comes back under the names it was stored with, in lower case.
s3.put_object(Bucket="boto", Key="meta", Body=b"m", Metadata={"color": "blue", "Mixed-Case": "yes"})
got = s3.head_object(Bucket="boto", Key="meta")["Metadata"]
assert got == {"color": "blue", "mixed-case": "yes"}, got
assert s3.get_object(Bucket="boto", Key="meta")["Metadata"]["color"] == "blue"
# Deleting a bucket takes its unfinished uploads with it.
s3.create_bucket(Bucket="boto-uploads")
s3.create_multipart_upload(Bucket="boto-uploads", Key="left/behind")
s3.delete_bucket(Bucket="boto-uploads")
assert "boto-uploads" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
url = s3.generate_presigned_url("get_object", Params={"Bucket": "boto", "Key": "once"}, ExpiresIn=60)
import urllib.request
assert urllib.request.urlopen(url).read() == b"first"
print("boto3 OK")
`

// boto3Python is Debian's python3 with boto3.
func boto3Python(t *testing.T) string {
	py := requireTool(t, "python3-boto3", "/usr/bin/python3")
	if err := exec.Command(py, "-c", "import boto3").Run(); err != nil {
		requireTool(t, "python3-boto3", "/nonexistent/boto3")
	}
	return py
}

// runBoto3 runs a boto3 script against srv with the root key; the script
// gets the endpoint and a work directory as its arguments.
func runBoto3(t *testing.T, py string, srv *server, script, work string) string {
	file := filepath.Join(work, "scenario.py")
	os.WriteFile(file, []byte(script), 0o644)
	return run(t, []string{"KEY=" + testUser, "SECRET=" + testSecret, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}, py, file, "http://"+srv.s3, work)
}

func TestBoto3(t *testing.T) {
	t.Parallel()
	py := boto3Python(t)
	srv := startNode(t, t.TempDir())
	out := runBoto3(t, py, srv, boto3Script, t.TempDir())
	if !strings.Contains(out, "boto3 OK") {
		t.Fatalf("boto3 scenario: %s", out)
	}
}

func TestS3cmd(t *testing.T) {
	t.Parallel()
	s3cmd := requireTool(t, "s3cmd")
	srv := startNode(t, t.TempDir())
	work := t.TempDir()
	cfg := filepath.Join(work, "s3cfg")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = False\nsignature_v2 = False\nbucket_location = us-east-1\n",
		testUser, testSecret, srv.s3, srv.s3)), 0o600)
	c := func(args ...string) string { return run(t, nil, s3cmd, append([]string{"-c", cfg}, args...)...) }
	c("mb", "s3://s3cmd-bucket")
	big := filepath.Join(work, "big.bin")
	b := make([]byte, 33<<20)
	rand.Read(b)
	os.WriteFile(big, b, 0o644)
	c("put", big, "s3://s3cmd-bucket/big.bin") // multipart: s3cmd's chunk is 15 MiB
	back := filepath.Join(work, "back.bin")
	c("get", "s3://s3cmd-bucket/big.bin", back)
	if got, _ := os.ReadFile(back); string(got) != string(b) {
		t.Fatal("s3cmd get differs from put")
	}
	tree := filepath.Join(work, "tree")
	writeTree(t, tree, 120, 3000)
	c("sync", tree+"/", "s3://s3cmd-bucket/tree/")
	restored := filepath.Join(work, "restored")
	c("sync", "s3://s3cmd-bucket/tree/", restored+"/")
	if out, err := exec.Command("diff", "-r", tree, restored).CombinedOutput(); err != nil {
		t.Fatalf("tree after a sync round trip differs: %s", out)
	}
	if ls := c("ls", "-r", "s3://s3cmd-bucket/tree/"); strings.Count(ls, "\n") != 120 {
		t.Fatalf("s3cmd ls -r lists %d objects, want 120", strings.Count(ls, "\n"))
	}
	c("del", "--recursive", "--force", "s3://s3cmd-bucket/")
	c("rb", "s3://s3cmd-bucket")
}

func TestRclone(t *testing.T) {
	t.Parallel()
	rclone := requireTool(t, "rclone")
	srv := startNode(t, t.TempDir())
	work := t.TempDir()
	env := []string{"RCLONE_CONFIG=" + filepath.Join(work, "none.conf"),
		"RCLONE_CONFIG_STRATA_TYPE=s3", "RCLONE_CONFIG_STRATA_PROVIDER=Other", "RCLONE_CONFIG_STRATA_ENV_AUTH=false",
		"RCLONE_CONFIG_STRATA_ACCESS_KEY_ID=" + testUser, "RCLONE_CONFIG_STRATA_SECRET_ACCESS_KEY=" + testSecret,
		"RCLONE_CONFIG_STRATA_ENDPOINT=http://" + srv.s3, "RCLONE_CONFIG_STRATA_REGION=us-east-1", "RCLONE_CONFIG_STRATA_FORCE_PATH_STYLE=true"}
	tree := filepath.Join(work, "tree")
	writeTree(t, tree, 1000, 1500)
	run(t, env, rclone, "mkdir", "strata:rclone-bucket")
	run(t, env, rclone, "copy", "--transfers", "16", tree, "strata:rclone-bucket/tree")
	run(t, env, rclone, "check", tree, "strata:rclone-bucket/tree") // compares sizes and MD5s
	// Change the tree: delete, modify and add files, then sync and check again.
	os.RemoveAll(filepath.Join(tree, "d03"))
	os.WriteFile(filepath.Join(tree, "d01", "sub0", "file-0001.bin"), []byte("modified"), 0o644)
	os.WriteFile(filepath.Join(tree, "new.txt"), []byte("new file"), 0o644)
	run(t, env, rclone, "sync", "--transfers", "16", tree, "strata:rclone-bucket/tree")
	run(t, env, rclone, "check", tree, "strata:rclone-bucket/tree")
	// Download everything and compare bytes, not only hashes.
	back := filepath.Join(work, "back")
	run(t, env, rclone, "copy", "--transfers", "16", "strata:rclone-bucket/tree", back)
	if out, err := exec.Command("diff", "-r", tree, back).CombinedOutput(); err != nil {
		t.Fatalf("rclone round trip differs: %s", out)
	}
	// A large file goes up as multipart (rclone's cutoff is 200 MiB; lower it).
	big := filepath.Join(work, "big.bin")
	b := make([]byte, 30<<20)
	rand.Read(b)
	os.WriteFile(big, b, 0o644)
	run(t, env, rclone, "copyto", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", big, "strata:rclone-bucket/big.bin")
	run(t, env, rclone, "copyto", "strata:rclone-bucket/big.bin", filepath.Join(work, "big.back"))
	if got, _ := os.ReadFile(filepath.Join(work, "big.back")); string(got) != string(b) {
		t.Fatal("rclone multipart round trip differs")
	}
	run(t, env, rclone, "purge", "strata:rclone-bucket")
}
