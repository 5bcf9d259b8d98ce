package users

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"

	"github.com/strata-storage/strata/atomicfile"
	"github.com/strata-storage/strata/metastore"
)

// Credentials are an access key pair.
type Credentials struct {
	AccessKey string `json:"accessKey"`
	SecretKey string `json:"secretKey"`
}

// CredentialsFile holds a single node's root credentials in its data dir.
const CredentialsFile = "root-credentials.json"

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	for i := range b {
		v, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[v.Int64()]
	}
	return string(b)
}

// RootCredentials returns the configured root credentials or, failing
// that, those stored in the data dir, generating new ones on first start.
// generated reports that they are new: they must then be stored with
// StoreRoot once the node is up (and printed), never before, or a
// failed first start would store keys nobody was shown.
func RootCredentials(dataDir string, configured Credentials) (c Credentials, generated bool, err error) {
	if configured.AccessKey != "" || configured.SecretKey != "" {
		if len(configured.AccessKey) < 3 || len(configured.SecretKey) < 8 {
			return c, false, errors.New("root user must be at least 3 and root password at least 8 characters")
		}
		return configured, false, nil
	}
	path := filepath.Join(dataDir, CredentialsFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(b, &c); err != nil || c.AccessKey == "" || c.SecretKey == "" {
			return c, false, fmt.Errorf("%s is damaged; remove it to generate new credentials", path)
		}
		return c, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return c, false, fmt.Errorf("read credentials: %w", err)
	}
	return NewCredentials(), true, nil
}

func NewCredentials() Credentials {
	return Credentials{
		AccessKey: randomString(20, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
		SecretKey: randomString(40, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"),
	}
}

// StoreRoot writes generated credentials (mode 0600, fsync'd).
func StoreRoot(dataDir string, c Credentials) error {
	path := filepath.Join(dataDir, CredentialsFile)
	b, _ := json.MarshalIndent(c, "", "  ")
	if err := atomicfile.Create(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("store credentials: %w", err)
	}
	return nil
}

// keyRoot holds the cluster's root credentials in etcd.
const keyRoot = "root-credentials"

// ClusterRoot makes every node use the same root credentials: the first
// node's (configured or generated) are stored in meta; others must match.
// created reports that they were generated here (to be shown once).
func ClusterRoot(ctx context.Context, meta metastore.Store, configured Credentials) (c Credentials, created bool, err error) {
	want := configured
	if want.AccessKey == "" || want.SecretKey == "" {
		want = NewCredentials()
	}
	v, _ := json.Marshal(want)
	created, err = meta.PutIfAbsent(ctx, keyRoot, v)
	if err != nil {
		return c, false, err
	}
	b, err := meta.Get(ctx, keyRoot)
	if err != nil {
		return c, false, err
	}
	var have Credentials
	if err := json.Unmarshal(b, &have); err != nil {
		return c, false, fmt.Errorf("cluster root credentials: %w", err)
	}
	if configured.AccessKey != "" && have != configured {
		return c, false, errors.New("STRATA_ROOT_USER/STRATA_ROOT_PASSWORD differ from the cluster's root credentials")
	}
	return have, created && configured.AccessKey == "", nil
}
