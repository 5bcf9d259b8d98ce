package metastore

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

func TestPebbleStore(t *testing.T) {
	ctx := context.Background()
	db, err := OpenPebble(t.TempDir(), slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, b := NewPebble(db, "a/"), NewPebble(db, "b/")
	if _, err := a.Get(ctx, "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	if ok, err := a.PutIfAbsent(ctx, "x", []byte("1")); !ok || err != nil {
		t.Fatalf("first PutIfAbsent: %v %v", ok, err)
	}
	if ok, err := a.PutIfAbsent(ctx, "x", []byte("2")); ok || err != nil {
		t.Fatalf("second PutIfAbsent: %v %v", ok, err)
	}
	a.Put(ctx, "y", []byte("3"))
	b.Put(ctx, "x", []byte("other"))
	kvs, err := a.List(ctx, "")
	if err != nil || len(kvs) != 2 || kvs[0].Key != "x" || string(kvs[0].Value) != "1" || kvs[1].Key != "y" {
		t.Fatalf("list: %+v %v", kvs, err)
	}
	a.Delete(ctx, "x")
	if _, err := a.Get(ctx, "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	if v, _ := b.Get(ctx, "x"); string(v) != "other" {
		t.Fatal("prefixes leak into each other")
	}
}

func TestPrefixEnd(t *testing.T) {
	for _, c := range []struct{ in, want string }{{"a", "b"}, {"a\xff", "b"}, {"\xff\xff", ""}} {
		if got := string(PrefixEnd([]byte(c.in))); got != c.want {
			t.Errorf("PrefixEnd(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestLogLimiterLetsOneLineAnInterval(t *testing.T) {
	l := &logLimiter{every: time.Hour, last: map[string]time.Time{}}
	if _, ok := l.allow("a"); !ok {
		t.Fatal("first line held back")
	}
	for i := 0; i < 5; i++ {
		if _, ok := l.allow("a"); ok {
			t.Fatal("a second line within the interval")
		}
	}
	if _, ok := l.allow("b"); !ok {
		t.Fatal("another key's first line held back")
	}
	l.last["a"] = time.Now().Add(-2 * time.Hour)
	if n, ok := l.allow("a"); !ok || n != 5 {
		t.Fatalf("after the interval: %v, %d held back, want 5", ok, n)
	}
}
