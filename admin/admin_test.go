package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/strata-storage/strata/s3api/sigv4"
)

// Every operation appears once in the table, with a distinct method and
// path, and the table makes a mux (ServeMux would refuse conflicting
// patterns).
func TestRouteTableIsConsistent(t *testing.T) {
	seenOp := map[Op]bool{}
	seenRoute := map[string]Op{}
	all := map[Op]Handler{}
	for _, r := range Routes {
		if seenOp[r.Op] {
			t.Errorf("%s has two routes", r.Op)
		}
		seenOp[r.Op] = true
		key := r.Method + " " + r.Path
		if other, dup := seenRoute[key]; dup {
			t.Errorf("%s and %s share %s", r.Op, other, key)
		}
		seenRoute[key] = r.Op
		all[r.Op] = func(http.ResponseWriter, *Request) error { return nil }
	}
	if _, err := NewMux(all); err != nil {
		t.Fatal(err)
	}
}

func TestMuxRefusesAMissingOrAnUnknownHandler(t *testing.T) {
	all := map[Op]Handler{}
	for _, r := range Routes {
		all[r.Op] = func(http.ResponseWriter, *Request) error { return nil }
	}
	delete(all, VolumeClone)
	if _, err := NewMux(all); err == nil || !strings.Contains(err.Error(), "VolumeClone") {
		t.Fatalf("a missing handler: %v", err)
	}
	all[VolumeClone] = all[RingGet]
	all["Explode"] = all[RingGet]
	if _, err := NewMux(all); err == nil || !strings.Contains(err.Error(), "Explode") {
		t.Fatalf("a handler without a route: %v", err)
	}
}

// server answers every route with the op it matched, its path values and
// its body, after checking the client's signature.
func server(t *testing.T) *httptest.Server {
	t.Helper()
	all := map[Op]Handler{}
	for _, rt := range Routes {
		op := rt.Op
		all[op] = func(w http.ResponseWriter, r *Request) error {
			vals := map[string]string{"op": string(op), "body": string(r.Body), "query": r.URL.RawQuery}
			for _, seg := range []string{"id", "name", "node", "snapshot", "action", "access", "namespace", "zone"} {
				if v := r.PathValue(seg); v != "" {
					vals[seg] = v
				}
			}
			if op == UserDelete && r.PathValue("name") == "missing" {
				return Errorf(http.StatusNotFound, CodeNoSuchUser, "no user %s", r.PathValue("name"))
			}
			return WriteJSON(w, vals)
		}
	}
	mux, err := NewMux(all)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		creds := staticCreds{"AK": "SK"}
		if _, err := sigv4.Verify(r, creds, time.Now()); err != nil {
			WriteError(w, Errorf(http.StatusForbidden, CodeAccessDenied, "%v", err))
			return
		}
		if err := mux.Serve(w, r, body); err != nil {
			var e *Error
			if !errors.As(err, &e) {
				e = Errorf(500, CodeInternalError, "%v", err)
			}
			WriteError(w, e)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestClientCallsTheRouteItNames(t *testing.T) {
	srv := server(t)
	c, err := New(Options{Server: srv.URL, AccessKey: "AK", SecretKey: "SK"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var got map[string]string
	cases := []struct {
		op   Op
		call func() error
		want map[string]string
	}{
		{RingSetWeight, func() error { return c.call(ctx, RingSetWeight, nil, WeightRequest{Weight: ptr(2.5)}, &got, "7") }, map[string]string{"id": "7", "body": `{"weight":2.5}`}},
		{SnapshotRestore, func() error { return c.call(ctx, SnapshotRestore, nil, nil, &got, "vol a/b", "s1") }, map[string]string{"name": "vol a/b", "snapshot": "s1"}},
		{ScrubObject, func() error { return c.call(ctx, ScrubObject, nil, ObjectRequest{Bucket: "b"}, &got) }, map[string]string{"body": `{"bucket":"b","key":""}`}},
		{ScrubControl, func() error { return c.call(ctx, ScrubControl, nil, nil, &got, "pause") }, map[string]string{"action": "pause"}},
		{UserEnable, func() error { return c.call(ctx, UserEnable, nil, nil, &got, "carol", enableAction(true)) }, map[string]string{"name": "carol", "action": "disable"}},
		{ClaimDelete, func() error { return c.call(ctx, ClaimDelete, nil, nil, &got, "ns", "claim") }, map[string]string{"namespace": "ns", "name": "claim"}},
		{AuditList, func() error { return c.call(ctx, AuditList, url.Values{"limit": {"5"}}, nil, &got) }, map[string]string{"query": "limit=5"}},
		{UserPolicySet, func() error {
			return c.call(ctx, UserPolicySet, nil, json.RawMessage(`{"Version":"2012-10-17"}`), &got, "carol")
		}, map[string]string{"body": `{"Version":"2012-10-17"}`}},
	}
	for _, tc := range cases {
		got = nil
		if err := tc.call(); err != nil {
			t.Fatalf("%s: %v", tc.op, err)
		}
		if tc.want == nil {
			continue
		}
		if got["op"] != string(tc.op) {
			t.Errorf("%s reached %s", tc.op, got["op"])
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", tc.op, k, got[k], v)
			}
		}
	}
	if err := c.call(ctx, RingSetWeight, nil, nil, nil); err == nil {
		t.Error("a call short of its path arguments was sent")
	}
}

func ptr[T any](v T) *T { return &v }

type staticCreds map[string]string

func (c staticCreds) SecretKey(access string) (string, bool) {
	s, ok := c[access]
	return s, ok
}

func TestClientReturnsTheServersError(t *testing.T) {
	srv := server(t)
	c, _ := New(Options{Server: srv.URL, AccessKey: "AK", SecretKey: "SK"})
	err := c.DeleteUser(context.Background(), "missing")
	var e *Error
	if !errors.As(err, &e) || e.Status != 404 || e.Code != CodeNoSuchUser || !HasCode(err, CodeNoSuchUser) {
		t.Fatalf("got %v", err)
	}
	bad, _ := New(Options{Server: srv.URL, AccessKey: "AK", SecretKey: "wrong"})
	if _, err := bad.Ring(context.Background()); !HasCode(err, CodeAccessDenied) {
		t.Fatalf("a wrong secret: %v", err)
	}
	// An operation the server does not know answers NoSuchAdminOperation.
	req, _ := http.NewRequest("POST", srv.URL+Prefix+"volumes/v/explode", nil)
	sigv4.Sign(req, "AK", "SK", "us-east-1", nil, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out Error
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 404 || out.Code != CodeNoSuchOperation {
		t.Fatalf("unknown operation: %d %s", resp.StatusCode, out.Code)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	for _, o := range []Options{
		{Server: "http://127.0.0.1:9001"},
		{Server: "127.0.0.1:9001", AccessKey: "a", SecretKey: "b"},
		{Server: "ftp://127.0.0.1:9001", AccessKey: "a", SecretKey: "b"},
		{Server: "http://127.0.0.1:9001", AccessKey: "a", SecretKey: "b", CAFile: "/nonexistent/ca.pem"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func TestDecodeRefusesUnknownFieldsAndAMissingBody(t *testing.T) {
	var v WeightRequest
	r := &Request{Body: []byte(`{"Wieght":1}`)}
	if err := r.Decode(&v, false); !HasCode(err, CodeInvalidArgument) {
		t.Errorf("unknown field: %v", err)
	}
	r.Body = nil
	if err := r.Decode(&v, false); !HasCode(err, CodeInvalidArgument) {
		t.Errorf("missing body: %v", err)
	}
	if err := r.Decode(&v, true); err != nil {
		t.Errorf("optional body: %v", err)
	}
}
