package node

import (
	"fmt"
	"path/filepath"

	"github.com/strata-storage/strata/iam"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/users"
)

// Users and access keys beside the root user: the iam store (in etcd in a
// cluster, sealed with a key derived from the cluster secret; in pebble
// alone, sealed with <data-dir>/master.key), the S3 credentials that look
// keys up in it, and the admin API that manages it.

const masterKeyFile = "master.key"

func (n *Node) openIAM() error {
	var meta metastore.Store
	var key []byte
	var err error
	if n.clustered() {
		meta = n.etcd.Sub("iam/")
		key, err = iam.MasterKeyFromSecret(n.cfg.ClusterSecret)
	} else {
		meta = metastore.NewPebble(n.db, "iam/")
		key, err = iam.LoadOrCreateMasterKey(filepath.Join(n.cfg.DataDir, masterKeyFile))
	}
	if err != nil {
		return fmt.Errorf("iam master key: %w", err)
	}
	if n.iam, err = iam.New(meta, key); err != nil {
		return err
	}
	n.users = users.New(users.Config{IAM: n.iam, RootKey: n.Root.AccessKey, RootSecret: n.Root.SecretKey, Buckets: n.store})
	if w, ok := meta.(metastore.Watcher); ok {
		// A key or user disabled on another node stops signing here at
		// once, not when the cache entry ages out.
		n.goBackground(func() {
			w.Watch(n.bgCtx, "", func(string, []byte) {
				n.users.Invalidate()
			})
		})
	}
	return nil
}
