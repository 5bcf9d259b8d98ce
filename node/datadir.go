package node

import "github.com/strata-storage/strata/datadir"

// privateDataDir makes the data dir readable by this user only (package
// datadir): it holds object data, metadata and keys.
func (n *Node) privateDataDir() error {
	tightened, err := datadir.MakePrivate(n.cfg.DataDir)
	if tightened {
		n.log.Info("data dir made private to this user (0700 directories, 0600 files)", "dir", n.cfg.DataDir)
	}
	return err
}
