package metastore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

type mirrorRig struct {
	t      *testing.T
	dir    string
	copies map[string]*pebble.DB
	log    *slog.Logger
}

func newMirrorRig(t *testing.T, names ...string) *mirrorRig {
	r := &mirrorRig{t: t, dir: t.TempDir(), copies: map[string]*pebble.DB{}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, name := range names {
		r.openCopy(name)
	}
	t.Cleanup(func() {
		for _, db := range r.copies {
			db.Close()
		}
	})
	return r
}

func (r *mirrorRig) openCopy(name string) *pebble.DB {
	db, err := OpenPebble(filepath.Join(r.dir, "dev-"+name), r.log)
	if err != nil {
		r.t.Fatal(err)
	}
	r.copies[name] = db
	return db
}

func (r *mirrorRig) closeCopy(name string) {
	if err := CloseFlushed(r.copies[name]); err != nil {
		r.t.Fatal(err)
	}
	delete(r.copies, name)
}

// open opens the node database with the named copies attached and checked.
func (r *mirrorRig) open(names ...string) (*Mirrored, error) {
	m := OpenMirrored(filepath.Join(r.dir, "meta"), r.log, DefaultCacheSize)
	for _, name := range names {
		if err := m.AddMirror(name, r.copies[name]); err != nil {
			r.t.Fatal(err)
		}
	}
	if err := m.Check(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func (r *mirrorRig) mustOpen(names ...string) *Mirrored {
	m, err := r.open(names...)
	if err != nil {
		r.t.Fatal(err)
	}
	return m
}

func putKeys(t *testing.T, s Store, from, to int) {
	for i := from; i < to; i++ {
		if err := s.Put(context.Background(), fmt.Sprintf("k%05d", i), []byte(strings.Repeat(fmt.Sprint(i), 40))); err != nil {
			t.Fatal(err)
		}
	}
}

func checkKeys(t *testing.T, s Store, n int) {
	t.Helper()
	kvs, err := s.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(kvs) != n {
		t.Fatalf("%d keys, want %d", len(kvs), n)
	}
	for i, kv := range kvs {
		if kv.Key != fmt.Sprintf("k%05d", i) || string(kv.Value) != strings.Repeat(fmt.Sprint(i), 40) {
			t.Fatalf("entry %d: %q = %.20q", i, kv.Key, kv.Value)
		}
	}
}

// flipTableBytes corrupts every table file of a database a quarter to
// three quarters of the way in, where the data blocks are.
func flipTableBytes(t *testing.T, dir string) {
	t.Helper()
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(tables) == 0 {
		t.Fatalf("%s holds no table file", dir)
	}
	for _, p := range tables {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for at := len(b) / 4; at < len(b)*3/4; at += 97 {
			b[at] ^= 0x5a
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDamagedPrimaryIsRebuiltFromTheNewestCopy(t *testing.T) {
	for _, damage := range []struct {
		name string
		do   func(t *testing.T, dir string)
	}{
		{"corrupt table blocks", flipTableBytes},
		{"unopenable", func(t *testing.T, dir string) {
			manifests, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
			for _, p := range manifests {
				if err := os.WriteFile(p, []byte("not a manifest"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"gone", func(t *testing.T, dir string) { os.RemoveAll(dir) }},
	} {
		t.Run(damage.name, func(t *testing.T) {
			r := newMirrorRig(t, "a", "b")
			m := r.mustOpen("a", "b")
			s := NewPebble(m, "x/")
			putKeys(t, s, 0, 500)
			// b misses the last writes: the rebuild must take a, the newest.
			m.RemoveMirror("b")
			putKeys(t, s, 500, 600)
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			damage.do(t, filepath.Join(r.dir, "meta"))

			m = r.mustOpen("a", "b")
			defer m.Close()
			checkKeys(t, NewPebble(m, "x/"), 600)
			kept, _ := filepath.Glob(filepath.Join(r.dir, "meta.damaged-*"))
			if damage.name != "gone" && len(kept) != 1 {
				t.Fatalf("the damaged database was not kept aside: %v", kept)
			}
			// The rebuilt primary is in step with both copies again: each
			// alone can rebuild it once more.
			putKeys(t, NewPebble(m, "x/"), 600, 610)
			m.Close()
			for _, only := range []string{"a", "b"} {
				os.RemoveAll(filepath.Join(r.dir, "meta"))
				m := r.mustOpen(only)
				checkKeys(t, NewPebble(m, "x/"), 610)
				m.Close()
			}
		})
	}
}

func TestDamagedPrimaryWithoutACopyIsAnError(t *testing.T) {
	r := newMirrorRig(t, "a")
	m := r.mustOpen()
	putKeys(t, NewPebble(m, "x/"), 0, 500)
	m.Close()
	flipTableBytes(t, filepath.Join(r.dir, "meta"))
	// a was never attached: it holds no copy to rebuild from.
	if _, err := r.open("a"); err == nil || !strings.Contains(err.Error(), "no device holds a readable copy") {
		t.Fatalf("open with a damaged primary and no copy: %v", err)
	}
}

func TestCopyThatMissedWritesIsRefreshed(t *testing.T) {
	r := newMirrorRig(t, "a", "b")
	m := r.mustOpen("a", "b")
	s := NewPebble(m, "x/")
	putKeys(t, s, 0, 100)
	// b goes offline; writes and deletes go on without it.
	m.RemoveMirror("b")
	r.closeCopy("b")
	putKeys(t, s, 100, 200)
	if err := s.Delete(context.Background(), "k00000"); err != nil {
		t.Fatal(err)
	}
	putKeys(t, s, 0, 1)
	// b comes back: attaching it brings it in step at once.
	if err := m.AddMirror("b", r.openCopy("b")); err != nil {
		t.Fatal(err)
	}
	m.Close()
	os.RemoveAll(filepath.Join(r.dir, "meta"))
	m = r.mustOpen("b")
	defer m.Close()
	checkKeys(t, NewPebble(m, "x/"), 200)
}

func TestReadsFallBackToACopy(t *testing.T) {
	r := newMirrorRig(t, "a")
	m := r.mustOpen("a")
	putKeys(t, NewPebble(m, "x/"), 0, 2000)
	m.Close()
	// Reopen the primary unchecked (as between open and Check) and damage
	// it underneath: reads must still be answered.
	flipTableBytes(t, filepath.Join(r.dir, "meta"))
	var logged strings.Builder
	m = OpenMirrored(filepath.Join(r.dir, "meta"), slog.New(slog.NewTextHandler(&logged, nil)), DefaultCacheSize)
	defer m.Close()
	m.AddMirror("a", r.copies["a"])
	m.mu.Lock()
	m.checked, m.mirrors["a"].stale = true, false // in step: its sequence matched when last closed
	m.mu.Unlock()
	checkKeys(t, NewPebble(m, "x/"), 2000)
	for _, i := range []int{0, 999, 1999} {
		v, err := NewPebble(m, "x/").Get(context.Background(), fmt.Sprintf("k%05d", i))
		if err != nil || string(v) != strings.Repeat(fmt.Sprint(i), 40) {
			t.Fatalf("get k%05d: %.20q %v", i, v, err)
		}
	}
	if _, err := NewPebble(m, "x/").Get(context.Background(), "absent"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of an absent key: %v", err)
	}
	for _, what := range []string{"could not serve a listing", "could not serve a read"} {
		if !strings.Contains(logged.String(), what) {
			t.Fatalf("the damaged primary answered by itself (no %q logged):\n%s", what, logged.String())
		}
	}
}
