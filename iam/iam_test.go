package iam

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/strata-storage/strata/metastore"
)

type quiet struct{}

func (quiet) Infof(string, ...any)  {}
func (quiet) Errorf(string, ...any) {}
func (quiet) Fatalf(string, ...any) {}

func newStore(t *testing.T) (*Store, metastore.Store, []byte) {
	t.Helper()
	db, err := pebble.Open("db", &pebble.Options{FS: vfs.NewMem(), Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	meta := metastore.NewPebble(db, "iam/")
	key, err := LoadOrCreateMasterKey(filepath.Join(t.TempDir(), "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(meta, key)
	if err != nil {
		t.Fatal(err)
	}
	return s, meta, key
}

func TestUsersKeysAndSealedSecrets(t *testing.T) {
	s, meta, _ := newStore(t)
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	k, secret, err := s.CreateKey(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(k.AccessKey) != 20 || len(secret) != 40 || k.Sealed != nil {
		t.Fatalf("key %+v, secret of %d chars", k, len(secret))
	}
	if got, user, ok := s.Lookup(ctx, k.AccessKey); !ok || got != secret || user != "alice" {
		t.Fatalf("lookup: %q %q %v", got, user, ok)
	}
	// The secret is nowhere in the store in the clear.
	kvs, err := meta.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range kvs {
		if bytes.Contains(kv.Value, []byte(secret)) {
			t.Fatalf("%s holds the secret in the clear", kv.Key)
		}
	}
	// Another master key cannot open it.
	other, err := New(meta, bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := other.Lookup(ctx, k.AccessKey); ok {
		t.Fatal("a wrong master key opened the secret")
	}
	// Disabling a key, then its user, stops lookups at once on this node.
	if _, err := s.SetKeyDisabled(ctx, k.AccessKey, true); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := s.Lookup(ctx, k.AccessKey); ok {
		t.Fatal("a disabled key still signs")
	}
	s.SetKeyDisabled(ctx, k.AccessKey, false)
	if _, err := s.SetUserDisabled(ctx, "alice", true); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := s.Lookup(ctx, k.AccessKey); ok {
		t.Fatal("a disabled user's key still signs")
	}
	if err := s.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if keys, _ := s.ListKeys(ctx, ""); len(keys) != 0 {
		t.Fatalf("keys left after the user was deleted: %+v", keys)
	}
}

func TestRefusals(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"duplicate user", func() error { _, err := s.CreateUser(ctx, "bob"); return err }(), ErrUserExists},
		{"empty name", func() error { _, err := s.CreateUser(ctx, ""); return err }(), ErrInvalidName},
		{"slash in name", func() error { _, err := s.CreateUser(ctx, "a/b"); return err }(), ErrInvalidName},
		{"long name", func() error { _, err := s.CreateUser(ctx, string(bytes.Repeat([]byte("x"), 65))); return err }(), ErrInvalidName},
		{"key of nobody", func() error { _, _, err := s.CreateKey(ctx, "nobody"); return err }(), ErrNoSuchUser},
		{"disable unknown key", func() error { _, err := s.SetKeyDisabled(ctx, "STRKNOPE", true); return err }(), ErrNoSuchKey},
		{"delete unknown user", s.DeleteUser(ctx, "nobody"), ErrNoSuchUser},
		{"delete unknown key", s.DeleteKey(ctx, "STRKNOPE"), ErrNoSuchKey},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
	if _, _, ok := s.Lookup(ctx, "STRKNOPE"); ok {
		t.Fatal("an unknown key looked up")
	}
}

func TestMasterKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	a, err := LoadOrCreateMasterKey(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateMasterKey(path)
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("reloaded master key differs: %v", err)
	}
	x, _ := MasterKeyFromSecret("cluster secret")
	y, _ := MasterKeyFromSecret("cluster secret")
	z, _ := MasterKeyFromSecret("another secret")
	if !bytes.Equal(x, y) || bytes.Equal(x, z) || len(x) != 32 {
		t.Fatal("derived master keys are not a function of the secret")
	}
	if _, err := MasterKeyFromSecret(""); err == nil {
		t.Fatal("derived a key from no secret")
	}
}
