package node

import (
	"fmt"
	"path/filepath"

	"github.com/strata-storage/strata/iam"
	"github.com/strata-storage/strata/users"
)

// Users and access keys beside the root user: the iam store (in etcd in a
// cluster, sealed with a key derived from the cluster secret; in pebble
// alone, sealed with <data-dir>/master.key), the S3 credentials that look
// keys up in it, and the admin API that manages it.

const masterKeyFile = "master.key"

func (n *Node) openIAM() (err error) {
	var key []byte
	if n.clustered() {
		key, err = iam.MasterKeyFromSecret(n.cfg.ClusterSecret)
	} else {
		key, err = iam.LoadOrCreateMasterKey(filepath.Join(n.cfg.DataDir, masterKeyFile))
	}
	if err != nil {
		return fmt.Errorf("iam master key: %w", err)
	}
	if n.iam, err = iam.New(n.claimMeta("iam"), key); err != nil {
		return err
	}
	n.users = users.New(users.Config{IAM: n.iam, RootKey: n.Root.AccessKey, RootSecret: n.Root.SecretKey, Buckets: n.store})
	if n.clustered() {
		n.goBackground(func() { n.users.Follow(n.bgCtx, n.etcd.Sub("iam/")) })
	}
	return nil
}
