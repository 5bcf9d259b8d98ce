// Package datadir keeps a node's data dir private to the user that runs
// it: the dir holds object data, metadata and keys.
package datadir

import (
	"io/fs"
	"os"
	"path/filepath"
)

// MakePrivate creates dir (0700) if need be and, when its top directory is
// open to others (a data dir from before this rule), makes everything
// under it readable by this user only: 0700 directories, 0600 files. It
// reports whether it had to tighten anything. Files created later are
// created private by the packages that write them.
func MakePrivate(dir string) (tightened bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	st, err := os.Stat(dir)
	if err != nil {
		return false, err
	}
	if st.Mode().Perm()&0o077 == 0 {
		return false, nil
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // what cannot be read is reported by whatever needs it
		}
		switch {
		case d.IsDir():
			return os.Chmod(path, 0o700)
		case d.Type().IsRegular():
			return os.Chmod(path, 0o600)
		}
		return nil
	})
	return err == nil, err
}
