package node

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-storage/strata/objectstore"
)

// Issue 16: nothing under the data dir is readable by other users, on a
// new data dir (metadata with inline object data included) and on one
// made open by an older version.
func TestDataDirIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	check := func(when string) {
		t.Helper()
		n := 0
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			info, _ := d.Info()
			if info.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s: %s is %v", when, path, info.Mode().Perm())
			}
			n++
			return nil
		})
		if n < 10 {
			t.Fatalf("%s: only %d entries under the data dir", when, n)
		}
	}
	run := func() {
		n, err := Start(testConfig(dir))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := n.Store().CreateBucket(ctx, "private"); err != nil && err != objectstore.ErrBucketExists {
			t.Fatal(err)
		}
		if _, err := n.Store().PutObject(ctx, "private", "small", bytes.NewReader([]byte("inline data")), 11, objectstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		n.Close(ctx)
	}
	run()
	check("new data dir")
	// As an older version left it: world-readable.
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if d.IsDir() {
			os.Chmod(path, 0o755)
		} else {
			os.Chmod(path, 0o644)
		}
		return nil
	})
	run()
	check("open data dir after a restart")
}

// NBD flags that would do nothing are refused at start, not ignored.
func TestNBDFlagsWithoutEffectAreRefused(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.NBDClientCA = "ca.pem"
	if n, err := Start(cfg); err == nil || !strings.Contains(err.Error(), "--nbd-client-ca") {
		if n != nil {
			n.Close(context.Background())
		}
		t.Fatalf("--nbd-client-ca without a certificate: %v", err)
	}
}
