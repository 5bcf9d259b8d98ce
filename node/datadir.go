package node

import (
	"io/fs"
	"os"
	"path/filepath"
)

// privateDataDir makes the data dir readable by this user only (0700
// directories, 0600 files): it holds object data, metadata and keys. New
// files are created so; a data dir from before is tightened once, at the
// first start that finds its top directory open to others.
func (n *Node) privateDataDir() error {
	dir := n.cfg.DataDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o077 == 0 {
		return nil
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
	if err == nil {
		n.log.Info("data dir made private to this user (0700 directories, 0600 files)", "dir", dir)
	}
	return err
}
