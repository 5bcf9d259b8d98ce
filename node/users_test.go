package node

import (
	"context"
	"testing"
)

// Bad user, key and quota requests get their errors.
func TestUserAdminRefusesBadRequests(t *testing.T) {
	n, err := Start(testConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	if st, _ := adminDo(t, n, "POST", "users", `{"Name":"carol"}`); st != 201 {
		t.Fatalf("create: %d", st)
	}
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"user exists", "POST", "users", `{"Name":"carol"}`, 409, "UserExists"},
		{"bad user name", "POST", "users", `{"Name":"a b"}`, 400, "InvalidArgument"},
		{"unknown field", "POST", "users", `{"Nam":"x"}`, 400, "InvalidArgument"},
		{"get unknown user", "GET", "users/nobody", ``, 404, "NoSuchUser"},
		{"delete unknown user", "DELETE", "users/nobody", ``, 404, "NoSuchUser"},
		{"key for unknown user", "POST", "users/nobody/keys", ``, 404, "NoSuchUser"},
		{"disable unknown key", "POST", "keys/STRKNOPE/disable", ``, 404, "NoSuchKey"},
		{"delete unknown key", "DELETE", "keys/STRKNOPE", ``, 404, "NoSuchKey"},
		{"quota of unknown bucket", "PUT", "buckets/nope/quota", `{"max_bytes":1}`, 404, "NoSuchBucket"},
		{"quota of unknown user", "PUT", "users/nobody/quota", `{"max_bytes":1}`, 404, "NoSuchUser"},
		{"negative quota", "PUT", "users/carol/quota", `{"max_objects":-1}`, 400, "InvalidArgument"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, code := adminDo(t, n, c.method, c.path, c.body)
			if st != c.status || code != c.code {
				t.Fatalf("%s %s: %d %s, want %d %s", c.method, c.path, st, code, c.status, c.code)
			}
		})
	}
}
