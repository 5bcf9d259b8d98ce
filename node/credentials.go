package node

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"

	"github.com/strata-storage/strata/atomicfile"
)

// Credentials are an access key pair.
type Credentials struct {
	AccessKey string `json:"accessKey"`
	SecretKey string `json:"secretKey"`
}

const credentialsFile = "root-credentials.json"

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	for i := range b {
		v, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[v.Int64()]
	}
	return string(b)
}

// rootCredentials returns the configured root credentials or, failing
// that, those stored in the data dir, generating new ones on first start.
// generated reports that they are new: they must then be stored with
// storeCredentials once the node is up (and printed), never before, or a
// failed first start would store keys nobody was shown.
func rootCredentials(dataDir string, configured Credentials) (c Credentials, generated bool, err error) {
	if configured.AccessKey != "" || configured.SecretKey != "" {
		if len(configured.AccessKey) < 3 || len(configured.SecretKey) < 8 {
			return c, false, errors.New("root user must be at least 3 and root password at least 8 characters")
		}
		return configured, false, nil
	}
	path := filepath.Join(dataDir, credentialsFile)
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
	return newCredentials(), true, nil
}

func newCredentials() Credentials {
	return Credentials{
		AccessKey: randomString(20, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
		SecretKey: randomString(40, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"),
	}
}

// storeCredentials writes generated credentials (mode 0600, fsync'd).
func storeCredentials(dataDir string, c Credentials) error {
	path := filepath.Join(dataDir, credentialsFile)
	b, _ := json.MarshalIndent(c, "", "  ")
	if err := atomicfile.Create(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("store credentials: %w", err)
	}
	return nil
}
