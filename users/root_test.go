package users

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRootCredentials(t *testing.T) {
	dir := t.TempDir()
	c1, gen, err := RootCredentials(dir, Credentials{})
	if err != nil || !gen || len(c1.AccessKey) != 20 || len(c1.SecretKey) != 40 {
		t.Fatalf("generate: %+v %v %v", c1, gen, err)
	}
	if _, err := os.Stat(filepath.Join(dir, CredentialsFile)); err == nil {
		t.Fatal("credentials stored before the node was up")
	}
	if err := StoreRoot(dir, c1); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(dir, CredentialsFile))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file mode %v", st.Mode())
	}
	c2, gen, err := RootCredentials(dir, Credentials{})
	if err != nil || gen || c2 != c1 {
		t.Fatalf("reload: %+v %v %v", c2, gen, err)
	}
	env := Credentials{AccessKey: "admin", SecretKey: "password1"}
	if c3, _, _ := RootCredentials(dir, env); c3 != env {
		t.Fatal("configured credentials not used")
	}
	if _, _, err := RootCredentials(dir, Credentials{AccessKey: "admin", SecretKey: "short"}); err == nil {
		t.Fatal("short password accepted")
	}
}
