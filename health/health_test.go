package health

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func get(t *testing.T, c *Checker, path string) (int, map[string]any) {
	t.Helper()
	mux := http.NewServeMux()
	c.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s: %v: %s", path, err, rec.Body)
	}
	return rec.Code, out
}

func source(rs ...Reason) Source {
	return func(context.Context) ([]Reason, map[string]any) { return rs, map[string]any{"ec": "2+2"} }
}

func TestStatusFollowsTheWorstReason(t *testing.T) {
	deg := Reason{Severity: Degraded, Component: "devices", Message: "1 of 4 devices down"}
	crit := Reason{Severity: Critical, Component: "volumes", Message: "volume v below its quorum"}
	cases := []struct {
		name    string
		sources []Source
		code    int
		status  string
		first   string // the first reason's message
	}{
		{"nothing wrong", []Source{source(), source()}, 200, OK, ""},
		{"a device down", []Source{source(deg), source()}, 200, Degraded, deg.Message},
		{"critical first", []Source{source(deg), source(crit)}, 503, Critical, crit.Message},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := New(time.Second)
			for i, s := range tc.sources {
				c.AddSource(string(rune('a'+i)), s)
			}
			for _, path := range []string{"/healthz", "/health"} {
				code, out := get(t, c, path)
				if code != tc.code || out["status"] != tc.status || out["ec"] != "2+2" {
					t.Fatalf("%s: %d %v", path, code, out)
				}
				reasons := out["reasons"].([]any)
				if tc.first == "" && len(reasons) != 0 || tc.first != "" && reasons[0].(map[string]any)["message"] != tc.first {
					t.Fatalf("%s reasons: %v", path, reasons)
				}
			}
		})
	}
}

// A check that hangs costs its timeout and is itself a reason; /livez
// answers at once all the same.
func TestAHungCheckIsBoundedAndLivezDoesNotWait(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	c := New(100 * time.Millisecond)
	c.AddSource("slow", func(ctx context.Context) ([]Reason, map[string]any) {
		<-block
		return nil, nil
	})
	c.AddReadiness("metadata", func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	start := time.Now()
	code, out := get(t, c, "/healthz")
	if code != 200 || out["status"] != Degraded || time.Since(start) > time.Second {
		t.Fatalf("healthz with a hung check: %d %v after %v", code, out, time.Since(start))
	}
	start = time.Now()
	if code, out := get(t, c, "/livez"); code != 200 || out["status"] != "alive" || time.Since(start) > 50*time.Millisecond {
		t.Fatalf("livez: %d %v after %v", code, out, time.Since(start))
	}
	code, out = get(t, c, "/readyz")
	if code != 503 || out["status"] != "not ready" || out["waiting_for"].(map[string]any)["metadata"] == nil {
		t.Fatalf("readyz with a hung metadata store: %d %v", code, out)
	}
}

func TestReadyz(t *testing.T) {
	c := New(time.Second)
	ready := errors.New("the ring is not in force yet")
	c.AddReadiness("ring", func(context.Context) error { return ready })
	c.AddReadiness("listeners", func(context.Context) error { return nil })
	if code, out := get(t, c, "/readyz"); code != 503 || out["waiting_for"].(map[string]any)["ring"] != ready.Error() || len(out["waiting_for"].(map[string]any)) != 1 {
		t.Fatalf("not ready: %d %v", code, out)
	}
	ready = nil
	if code, out := get(t, c, "/readyz"); code != 200 || out["status"] != "ready" {
		t.Fatalf("ready: %d %v", code, out)
	}
}
