package cli

import (
	"go/build"
	"strings"
	"testing"
)

// The operator commands speak to a node only through the admin API's
// typed client: besides it, this package may import cobra, pflag and the
// standard library, nothing of the server.
func TestImportsOnlyTheAdminClient(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{
		"github.com/strata-storage/strata/admin": true,
		"github.com/spf13/cobra":                 true,
		"github.com/spf13/pflag":                 true,
	}
	for _, imp := range pkg.Imports {
		first, _, _ := strings.Cut(imp, "/")
		if !allowed[imp] && strings.Contains(first, ".") {
			t.Errorf("cmd/strata/cli imports %s", imp)
		}
	}
	if len(pkg.Imports) < 5 {
		t.Fatalf("only %d imports read: %v", len(pkg.Imports), pkg.Imports)
	}
}
