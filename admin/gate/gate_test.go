package gate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/s3api/sigv4"
)

type keys map[string]string

func (k keys) SecretKey(a string) (string, bool) { s, ok := k[a]; return s, ok }

// start serves a gate whose only working operation is UserCreate (201);
// "ROOT" is root, "ADMIN" belongs to the admin user ann, "PLAIN" to a
// user who may not call the admin API.
func start(t *testing.T) (*Gate, *httptest.Server, metastore.Store) {
	t.Helper()
	db, err := metastore.OpenPebble(filepath.Join(t.TempDir(), "db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	audit := metastore.NewPebble(db, "audit/")
	g := New(Config{
		Credentials: keys{"ROOT": "root-secret", "ADMIN": "admin-secret", "PLAIN": "plain-secret"},
		RootKey:     "ROOT",
		AdminUser: func(_ context.Context, access string) (string, error) {
			if access == "ADMIN" {
				return "ann", nil
			}
			return "bob", errors.New("not an admin")
		},
		Audit: audit, Node: "n1", Registry: prometheus.NewRegistry(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	handlers := g.Handlers()
	for _, rt := range admin.Routes {
		if _, ok := handlers[rt.Op]; !ok {
			handlers[rt.Op] = func(w http.ResponseWriter, r *admin.Request) error {
				return admin.Errorf(http.StatusNotImplemented, "NotHere", "only users are served here")
			}
		}
	}
	handlers[admin.UserCreate] = func(w http.ResponseWriter, r *admin.Request) error {
		return admin.WriteJSONStatus(w, http.StatusCreated, map[string]string{"body": string(r.Body)})
	}
	mux, err := admin.NewMux(handlers)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Serve(mux))
	t.Cleanup(srv.Close)
	return g, srv, audit
}

func signed(t *testing.T, srv *httptest.Server, access, secret, method, path, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+admin.Prefix+path, strings.NewReader(body))
	if err := sigv4.Sign(req, access, secret, "us-east-1", []byte(body), time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func entries(t *testing.T, audit metastore.Store) []admin.AuditEntry {
	t.Helper()
	kvs, err := audit.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var out []admin.AuditEntry
	for _, kv := range kvs {
		var e admin.AuditEntry
		if err := json.Unmarshal(kv.Value, &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// Unauthenticated admin requests are counted, never audit entries, so a
// flood of them cannot evict the record of real actions, and an address
// that keeps sending them is slowed down.
func TestUnauthenticatedTrafficCannotEraseTheAuditLog(t *testing.T) {
	g, srv, audit := start(t)
	if st := signed(t, srv, "ROOT", "root-secret", "POST", "users", `{"Name":"alice"}`); st != http.StatusCreated {
		t.Fatalf("create: %d", st)
	}
	statuses := map[int]int{}
	for i := 0; i < RefusalsPerMinute+30; i++ {
		req, _ := http.NewRequest("POST", srv.URL+admin.Prefix+"users", strings.NewReader(`{"Name":"mallory"}`))
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
	if statuses[http.StatusForbidden] != RefusalsPerMinute || statuses[http.StatusServiceUnavailable] != 30 {
		t.Fatalf("answers to the flood: %v", statuses)
	}
	var counted float64
	for _, code := range []string{"AccessDenied", "InvalidAccessKeyId", "AuthorizationHeaderMalformed", "SignatureDoesNotMatch", "SlowDown"} {
		counted += g.Refused(code)
	}
	if counted != float64(RefusalsPerMinute+30) {
		t.Fatalf("counted %v refusals", counted)
	}
	// A signed request from the same address still goes through.
	if st := signed(t, srv, "ROOT", "root-secret", "POST", "users", `{"Name":"bob"}`); st != http.StatusCreated {
		t.Fatalf("signed request after the flood: %d", st)
	}
	es := entries(t, audit)
	if len(es) != 2 || !strings.Contains(es[0].Body, "alice") || !strings.Contains(es[1].Body, "bob") {
		t.Fatalf("audit log: %+v", es)
	}
	for _, e := range es {
		if e.Principal != "root" || e.Node != "n1" || e.Status != http.StatusCreated {
			t.Fatalf("entry: %+v", e)
		}
	}
}

// Who signed decides: root and admin users pass, another user is refused
// (and that refusal, by someone identified, is an entry); an unsigned
// body, one that is not the one signed, or one too large, is refused.
func TestWhoMayCallAndWhatIsRecorded(t *testing.T) {
	_, srv, audit := start(t)
	if st := signed(t, srv, "ADMIN", "admin-secret", "POST", "users", `{"Name":"x"}`); st != http.StatusCreated {
		t.Fatalf("admin user: %d", st)
	}
	if st := signed(t, srv, "PLAIN", "plain-secret", "POST", "users", `{"Name":"y"}`); st != http.StatusForbidden {
		t.Fatalf("plain user: %d", st)
	}
	if st := signed(t, srv, "ROOT", "root-secret", "GET", "ring", ``); st != http.StatusNotImplemented {
		t.Fatalf("a GET: %d", st)
	}
	// The body sent is not the body signed.
	req, _ := http.NewRequest("POST", srv.URL+admin.Prefix+"users", strings.NewReader(`{"Name":"z"}`))
	sigv4.Sign(req, "ROOT", "root-secret", "us-east-1", []byte(`{"Name":"other"}`), time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e admin.Error
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || e.Code != admin.CodeBodyHashMismatch {
		t.Fatalf("swapped body: %d %s", resp.StatusCode, e.Code)
	}
	big := bytes.Repeat([]byte("a"), maxBody+1)
	if st := signed(t, srv, "ROOT", "root-secret", "POST", "users", string(big)); st != http.StatusBadRequest {
		t.Fatalf("a body over the limit: %d", st)
	}
	long := `{"Name":"` + strings.Repeat("a", 3000) + `"}`
	if st := signed(t, srv, "ROOT", "root-secret", "POST", "users", long); st != http.StatusCreated {
		t.Fatalf("a long body: %d", st)
	}
	es := entries(t, audit)
	if len(es) != 5 {
		t.Fatalf("want 5 entries (no GET), got %d", len(es))
	}
	if es[0].Principal != "ann" || es[1].Principal != "bob" || es[1].Code != admin.CodeAccessDenied || es[2].Code != admin.CodeBodyHashMismatch {
		t.Fatalf("entries: %+v", es)
	}
	if es[3].Body != "" || len(es[4].Body) != bodyMax+len("…") || !strings.HasPrefix(long, es[4].Body[:bodyMax]) {
		t.Fatalf("bodies kept: %d and %d bytes", len(es[3].Body), len(es[4].Body))
	}
}
