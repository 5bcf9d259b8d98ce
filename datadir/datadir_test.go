package datadir

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func perms(t *testing.T, dir string) map[string]fs.FileMode {
	t.Helper()
	out := map[string]fs.FileMode{}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		info, _ := d.Info()
		rel, _ := filepath.Rel(dir, path)
		out[rel] = info.Mode().Perm()
		return nil
	})
	return out
}

func TestMakePrivate(t *testing.T) {
	cases := []struct {
		name          string
		top, sub      fs.FileMode // modes of the top and a sub directory
		file          fs.FileMode
		wantTightened bool
		want          map[string]fs.FileMode
	}{
		{"open, as an older version left it", 0o755, 0o755, 0o644, true,
			map[string]fs.FileMode{".": 0o700, "pool0": 0o700, "pool0/ring": 0o600}},
		{"already private: left as it is", 0o700, 0o750, 0o640, false,
			map[string]fs.FileMode{".": 0o700, "pool0": 0o750, "pool0/ring": 0o640}},
		{"group-readable top", 0o750, 0o700, 0o600, true,
			map[string]fs.FileMode{".": 0o700, "pool0": 0o700, "pool0/ring": 0o600}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if err := os.MkdirAll(filepath.Join(dir, "pool0"), 0o700); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, "pool0", "ring"), []byte("x"), 0o600)
			os.Chmod(filepath.Join(dir, "pool0", "ring"), tc.file)
			os.Chmod(filepath.Join(dir, "pool0"), tc.sub)
			os.Chmod(dir, tc.top)
			tightened, err := MakePrivate(dir)
			if err != nil || tightened != tc.wantTightened {
				t.Fatalf("MakePrivate: tightened %v, %v; want %v", tightened, err, tc.wantTightened)
			}
			got := perms(t, dir)
			for path, want := range tc.want {
				if got[path] != want {
					t.Errorf("%s: %v, want %v", path, got[path], want)
				}
			}
		})
	}
	// A new data dir is made, private.
	dir := filepath.Join(t.TempDir(), "new", "data")
	if tightened, err := MakePrivate(dir); err != nil || tightened {
		t.Fatalf("new dir: %v, %v", tightened, err)
	}
	if got := perms(t, dir)["."]; got != 0o700 {
		t.Fatalf("new dir: %v", got)
	}
}
