package conformance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// userKey creates a user (with an email, if given) and a key through the
// CLI, and returns the key, its secret and the user's canonical id.
func userKey(t *testing.T, s *server, name, email string) (access, secret, id string) {
	t.Helper()
	args := []string{"user", "create", name, "--server", "http://" + s.admin}
	if email != "" {
		args = append(args, "--email", email)
	}
	mustCLI(t, args...)
	var k struct {
		AccessKey string `json:"access_key"`
		SecretKey string `json:"secret_key"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, "key", "create", name, "-o", "json", "--server", "http://"+s.admin)), &k); err != nil {
		t.Fatal(err)
	}
	var users []struct {
		Name        string `json:"name"`
		CanonicalID string `json:"canonical_id"`
	}
	json.Unmarshal([]byte(mustCLI(t, "user", "list", "-o", "json", "--server", "http://"+s.admin)), &users)
	for _, u := range users {
		if u.Name == name {
			id = u.CanonicalID
		}
	}
	return k.AccessKey, k.SecretKey, id
}

const aclScript = `
import boto3, botocore, os, sys, urllib.request
endpoint = sys.argv[1]
def client(who):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=os.environ[who + "_KEY"], aws_secret_access_key=os.environ[who + "_SECRET"],
                        config=botocore.config.Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
alice, bob, carol = client("ALICE"), client("BOB"), client("CAROL")
bob_id = os.environ["BOB_ID"]
def denied(f):
    try:
        f()
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "AccessDenied", e.response
        return
    raise AssertionError("allowed")

alice.create_bucket(Bucket="acl-grants")
# A grant to bob by canonical id.
alice.put_object(Bucket="acl-grants", Key="by-id", Body=b"for bob", GrantRead='id="%s"' % bob_id)
assert bob.get_object(Bucket="acl-grants", Key="by-id")["Body"].read() == b"for bob"
denied(lambda: carol.get_object(Bucket="acl-grants", Key="by-id"))
# A grant to bob by email, in an ACL document.
alice.put_object(Bucket="acl-grants", Key="by-email", Body=b"mailed")
denied(lambda: bob.get_object(Bucket="acl-grants", Key="by-email"))
owner = alice.get_object_acl(Bucket="acl-grants", Key="by-email")["Owner"]
alice.put_object_acl(Bucket="acl-grants", Key="by-email", AccessControlPolicy={"Owner": owner, "Grants": [
    {"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]}, "Permission": "FULL_CONTROL"},
    {"Grantee": {"Type": "AmazonCustomerByEmail", "EmailAddress": "bob@example.com"}, "Permission": "READ"}]})
assert bob.get_object(Bucket="acl-grants", Key="by-email")["Body"].read() == b"mailed"
grants = alice.get_object_acl(Bucket="acl-grants", Key="by-email")["Grants"]
assert {"ID": bob_id, "DisplayName": "bob", "Type": "CanonicalUser"} in [g["Grantee"] for g in grants if g["Permission"] == "READ"], grants
denied(lambda: bob.get_object_acl(Bucket="acl-grants", Key="by-email"))
denied(lambda: bob.put_object(Bucket="acl-grants", Key="intruder", Body=b"x"))
try:
    alice.put_object(Bucket="acl-grants", Key="nobody", Body=b"x", GrantRead='emailAddress="nobody@example.com"')
    raise AssertionError("a grant to an unknown email was taken")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "UnresolvableGrantByEmailAddress", e.response
# authenticated-read: any signed user reads and lists, anonymous callers do not.
alice.create_bucket(Bucket="acl-auth", ACL="authenticated-read")
alice.put_object(Bucket="acl-auth", Key="notice", Body=b"members", ACL="authenticated-read")
assert [o["Key"] for o in carol.list_objects_v2(Bucket="acl-auth")["Contents"]] == ["notice"]
assert carol.get_object(Bucket="acl-auth", Key="notice")["Body"].read() == b"members"
for url in (endpoint + "/acl-auth/notice", endpoint + "/acl-auth"):
    try:
        urllib.request.urlopen(url)
        raise AssertionError("anonymous read of " + url)
    except urllib.error.HTTPError as e:
        assert e.code == 403, e.code
# A bucket grant of WRITE lets bob upload into alice's bucket.
alice.put_bucket_acl(Bucket="acl-grants", GrantFullControl='id="%s"' % owner["ID"], GrantWrite='emailAddress="bob@example.com"')
bob.put_object(Bucket="acl-grants", Key="from-bob", Body=b"hi")
assert alice.get_object(Bucket="acl-grants", Key="from-bob")["Body"].read() == b"hi"
print("acl OK")
`

// Issue 17 must-show 2 (ACLs): boto3 grants a second user access by
// canonical id and by email (headers and an ACL document), authenticated-
// read lets every signed user in and no anonymous one; s3cmd setacl
// --acl-grant and s3cmd info show and use a grant.
func TestACLGrantsWithBoto3AndS3cmd(t *testing.T) {
	t.Parallel()
	py := boto3Python(t)
	s3cmd := requireTool(t, "s3cmd")
	srv := startNode(t, t.TempDir())
	aliceKey, aliceSecret, _ := userKey(t, srv, "alice", "alice@example.com")
	bobKey, bobSecret, bobID := userKey(t, srv, "bob", "bob@example.com")
	carolKey, carolSecret, _ := userKey(t, srv, "carol", "")
	work := t.TempDir()
	file := filepath.Join(work, "acl.py")
	os.WriteFile(file, []byte(aclScript), 0o644)
	out := run(t, []string{"ALICE_KEY=" + aliceKey, "ALICE_SECRET=" + aliceSecret, "BOB_KEY=" + bobKey, "BOB_SECRET=" + bobSecret, "BOB_ID=" + bobID,
		"CAROL_KEY=" + carolKey, "CAROL_SECRET=" + carolSecret, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}, py, file, "http://"+srv.s3)
	if !strings.Contains(out, "acl OK") {
		t.Fatalf("boto3 ACL scenario: %s", out)
	}

	cfg := func(who, key, secret string) string {
		p := filepath.Join(work, who+".s3cfg")
		os.WriteFile(p, []byte(fmt.Sprintf("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = False\nbucket_location = us-east-1\n",
			key, secret, srv.s3, srv.s3)), 0o600)
		return p
	}
	alice, bob := cfg("alice", aliceKey, aliceSecret), cfg("bob", bobKey, bobSecret)
	plain := filepath.Join(work, "plain.txt")
	os.WriteFile(plain, []byte("set by s3cmd"), 0o644)
	run(t, nil, s3cmd, "-c", alice, "put", plain, "s3://acl-grants/plain.txt")
	if out, err := exec.Command(s3cmd, "-c", bob, "get", "--force", "s3://acl-grants/plain.txt", filepath.Join(work, "denied.txt")).CombinedOutput(); err == nil {
		t.Fatalf("bob read before the grant:\n%s", out)
	}
	run(t, nil, s3cmd, "-c", alice, "setacl", "--acl-grant=read:bob@example.com", "s3://acl-grants/plain.txt")
	info := run(t, nil, s3cmd, "-c", alice, "info", "s3://acl-grants/plain.txt")
	if !strings.Contains(info, "bob: READ") {
		t.Fatalf("s3cmd info after setacl:\n%s", info)
	}
	got := filepath.Join(work, "got.txt")
	run(t, nil, s3cmd, "-c", bob, "get", "--force", "s3://acl-grants/plain.txt", got)
	if b, _ := os.ReadFile(got); string(b) != "set by s3cmd" {
		t.Fatalf("bob's read after the grant: %q", b)
	}
	// Revoking takes it back (by canonical id: S3 keeps an email grant as
	// the user's id, so that is what the ACL shows).
	run(t, nil, s3cmd, "-c", alice, "setacl", "--acl-revoke=read:"+bobID, "s3://acl-grants/plain.txt")
	resp, err := http.Get("http://" + srv.s3 + "/acl-grants/plain.txt")
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("anonymous read of a private object: %v %v", resp, err)
	}
	resp.Body.Close()
	if out, err := exec.Command(s3cmd, "-c", bob, "get", "--force", "s3://acl-grants/plain.txt", filepath.Join(work, "denied2.txt")).CombinedOutput(); err == nil {
		t.Fatalf("bob read after the revoke:\n%s", out)
	}
}
