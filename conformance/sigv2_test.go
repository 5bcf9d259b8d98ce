package conformance

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/strata-storage/strata/node"
)

// boto3 with signature_version "s3" signs every request with Signature
// Version 2 (botocore's HmacV1, what aws-cli v1 uses), and its presigned
// URLs are V2 query strings, the kind `aws s3 presign` of aws-cli v1
// prints.
const boto3V2Script = `
import boto3, botocore, os, sys
endpoint, work = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id=os.environ["KEY"], aws_secret_access_key=os.environ["SECRET"],
                  config=botocore.config.Config(s3={"addressing_style": "path"}, signature_version="s3"))
s3.create_bucket(Bucket="sigv2")
s3.put_object(Bucket="sigv2", Key="dir/hello world.txt", Body=b"hello v2", ContentType="text/plain", Metadata={"k": "v"})
assert s3.get_object(Bucket="sigv2", Key="dir/hello world.txt")["Body"].read() == b"hello v2"
assert s3.head_object(Bucket="sigv2", Key="dir/hello world.txt")["Metadata"] == {"k": "v"}
src = os.path.join(work, "big.bin")
with open(src, "wb") as f:
    f.write(os.urandom(12 * 1024 * 1024))
# Sub-resources and query-routed operations (multipart, tagging, ACLs,
# ListObjectsV2) are s3cmd's part below: Debian's botocore 1.29 signs an
# operation's query template under V2 ("?uploads?uploads", "?list-type=2"),
# which AWS would refuse too; botocore 1.43 signs them right.
s3.put_object(Bucket="sigv2", Key="big.bin", Body=open(src, "rb"))
assert s3.head_object(Bucket="sigv2", Key="big.bin")["ContentLength"] == 12 * 1024 * 1024
s3.copy_object(Bucket="sigv2", Key="copy.txt", CopySource={"Bucket": "sigv2", "Key": "dir/hello world.txt"})
keys = [o["Key"] for o in s3.list_objects(Bucket="sigv2")["Contents"]]
assert keys == ["big.bin", "copy.txt", "dir/hello world.txt"], keys
s3.delete_object(Bucket="sigv2", Key="copy.txt")
bad = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id=os.environ["KEY"], aws_secret_access_key="wrong",
                   config=botocore.config.Config(s3={"addressing_style": "path"}, signature_version="s3"))
try:
    bad.get_object(Bucket="sigv2", Key="big.bin")
    raise AssertionError("a wrong secret read the object")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "SignatureDoesNotMatch", e.response
print("URL " + s3.generate_presigned_url("get_object", Params={"Bucket": "sigv2", "Key": "dir/hello world.txt"}, ExpiresIn=300))
print("boto3 v2 OK")
`

// Issue 17 must-show 2 (SigV2): boto3 signing V2 does its everyday work,
// its V2 presigned URL fetched with curl reads the object, a tampered one
// is refused; s3cmd in V2 mode, its signurl and info; a V2-signed POST
// form; and --sigv2=false refuses them all.
func TestSigV2Clients(t *testing.T) {
	t.Parallel()
	py := boto3Python(t)
	curl := requireTool(t, "curl")
	s3cmd := requireTool(t, "s3cmd")
	srv := startNode(t, t.TempDir())
	work := t.TempDir()
	out := runBoto3(t, py, srv, boto3V2Script, work)
	if !strings.Contains(out, "boto3 v2 OK") {
		t.Fatalf("boto3 V2 scenario: %s", out)
	}
	var url string
	for _, line := range strings.Split(out, "\n") {
		if u, ok := strings.CutPrefix(line, "URL "); ok {
			url = u
		}
	}
	if !strings.Contains(url, "AWSAccessKeyId=") || !strings.Contains(url, "Signature=") {
		t.Fatalf("not a V2 presigned URL: %q", url)
	}
	if got := run(t, nil, curl, "-sf", url); got != "hello v2" {
		t.Fatalf("curl of the V2 URL: %q", got)
	}
	if got, err := exec.Command(curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", strings.Replace(url, "hello%20world", "hello%20there", 1)).Output(); err != nil || string(got) != "403" {
		t.Fatalf("a V2 URL for another key: %s %v", got, err)
	}

	// s3cmd signing V2 (it sends x-amz-date, not Date).
	cfg := filepath.Join(work, "s3cfg")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = False\nsignature_v2 = True\nbucket_location = us-east-1\n",
		testUser, testSecret, srv.s3, srv.s3)), 0o600)
	c := func(args ...string) string { return run(t, nil, s3cmd, append([]string{"-c", cfg}, args...)...) }
	c("mb", "s3://s3cmd-v2")
	file := filepath.Join(work, "f.txt")
	os.WriteFile(file, []byte("from s3cmd v2"), 0o644)
	c("put", "--mime-type=text/plain", file, "s3://s3cmd-v2/f.txt")
	big := filepath.Join(work, "big.bin")
	bigData := bytes.Repeat([]byte("0123456789abcdef"), 11<<16) // 11 MiB: three parts of 5 MiB
	os.WriteFile(big, bigData, 0o644)
	c("put", "--multipart-chunk-size-mb=5", big, "s3://s3cmd-v2/big.bin")
	back := filepath.Join(work, "back.bin")
	c("get", "s3://s3cmd-v2/big.bin", back)
	if got, _ := os.ReadFile(back); !bytes.Equal(got, bigData) {
		t.Fatal("s3cmd V2 multipart round trip differs")
	}
	if info := c("info", "s3://s3cmd-v2/f.txt"); !strings.Contains(info, "text/plain") || !strings.Contains(info, "File size: 13") {
		t.Fatalf("s3cmd info:\n%s", info)
	}
	signed := strings.TrimSpace(c("signurl", "s3://s3cmd-v2/f.txt", "+300"))
	if got := run(t, nil, curl, "-sf", signed); got != "from s3cmd v2" {
		t.Fatalf("curl of s3cmd's signurl %s: %q", signed, got)
	}
	if ls := c("ls", "s3://s3cmd-v2/"); !strings.Contains(ls, "f.txt") {
		t.Fatalf("s3cmd ls: %s", ls)
	}

	// A POST form signed V2: signature = base64(HMAC-SHA1(secret, policy)).
	policy := base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf(`{"expiration":"%s","conditions":[{"bucket":"sigv2"},["starts-with","$key","forms/"],{"success_action_status":"201"}]}`,
		time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05.000Z"))))
	mac := hmac.New(sha1.New, []byte(testSecret))
	mac.Write([]byte(policy))
	post := func(sig string) *http.Response {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		for _, kv := range [][2]string{{"key", "forms/v2.txt"}, {"AWSAccessKeyId", testUser}, {"policy", policy}, {"signature", sig}, {"success_action_status", "201"}} {
			mw.WriteField(kv[0], kv[1])
		}
		fw, _ := mw.CreateFormFile("file", "v2.txt")
		fw.Write([]byte("posted with v2"))
		mw.Close()
		resp, err := http.Post("http://"+srv.s3+"/sigv2", mw.FormDataContentType(), &body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post(base64.StdEncoding.EncodeToString(mac.Sum(nil))); resp.StatusCode != 201 {
		t.Fatalf("V2 POST form: %d", resp.StatusCode)
	}
	if resp := post(base64.StdEncoding.EncodeToString(make([]byte, 20))); resp.StatusCode != 403 {
		t.Fatalf("V2 POST form with a wrong signature: %d", resp.StatusCode)
	}
	mc := minioClient(t, srv, testSecret)
	if _, err := mc.StatObject(t.Context(), "sigv2", "forms/v2.txt", minio.StatObjectOptions{}); err != nil {
		t.Fatalf("the V2 form's object: %v", err)
	}

	// --sigv2=false: the same URL and clients are refused.
	off := startNodeWith(t, t.TempDir(), func(c *node.Config) { c.SigV2 = false })
	offURL := strings.Replace(url, srv.s3, off.s3, 1)
	if got, _ := exec.Command(curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", offURL).Output(); string(got) != "403" {
		t.Fatalf("a V2 URL with --sigv2=false: %s", got)
	}
	offCfg := filepath.Join(work, "s3cfg-off")
	os.WriteFile(offCfg, []byte(fmt.Sprintf("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = False\nsignature_v2 = True\nbucket_location = us-east-1\n",
		testUser, testSecret, off.s3, off.s3)), 0o600)
	if out, err := exec.Command(s3cmd, "-c", offCfg, "mb", "s3://refused-v2").CombinedOutput(); err == nil {
		t.Fatalf("s3cmd V2 with --sigv2=false made a bucket:\n%s", out)
	}
}
