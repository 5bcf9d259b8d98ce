package node

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/strata-storage/strata/admin"
)

// Issue 16: unauthenticated admin requests are counted, never audit
// entries, so a flood of them cannot evict the record of real actions, and
// an address that keeps sending them is slowed down.
func TestUnauthenticatedAdminTrafficCannotEraseTheAuditLog(t *testing.T) {
	n, err := Start(testConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	if st, _ := adminDo(t, n, "POST", "users", `{"name":"alice"}`); st != http.StatusCreated && st != http.StatusOK {
		t.Fatalf("create user: %d", st)
	}
	statuses := map[int]int{}
	for i := 0; i < refusalsPerMinute+30; i++ {
		req, _ := http.NewRequest("POST", "http://"+n.AdminAddr()+"/admin/v1/users", strings.NewReader(`{"name":"mallory"}`))
		if i%2 == 1 {
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=nobody/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature="+strings.Repeat("0", 64))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses[resp.StatusCode]++
	}
	if statuses[http.StatusForbidden] != refusalsPerMinute || statuses[http.StatusServiceUnavailable] != 30 {
		t.Fatalf("answers to the flood: %v", statuses)
	}
	var counted float64
	for _, code := range []string{"AccessDenied", "InvalidAccessKeyId", "AuthorizationHeaderMalformed", "SignatureDoesNotMatch", "SlowDown"} {
		counted += testutil.ToFloat64(n.audit.refused.WithLabelValues(code))
	}
	if counted != float64(refusalsPerMinute+30) {
		t.Fatalf("counted %v refusals", counted)
	}
	// A signed request from the same address still goes through.
	if st, _ := adminDo(t, n, "POST", "users", `{"name":"bob"}`); st != http.StatusCreated && st != http.StatusOK {
		t.Fatalf("signed request after the flood: %d", st)
	}
	kvs, err := n.auditMeta().List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, kv := range kvs {
		var e admin.AuditEntry
		json.Unmarshal(kv.Value, &e)
		if e.Principal != "root" {
			t.Fatalf("an unauthenticated request is in the audit log: %+v", e)
		}
		paths = append(paths, e.Body)
	}
	if len(kvs) != 2 || !strings.Contains(paths[0], "alice") || !strings.Contains(paths[1], "bob") {
		t.Fatalf("audit log: %v", paths)
	}
}
