package conformance

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
)

// strataCLI runs the built binary as a client with the root credentials.
func strataCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(strataBinary(t), args...)
	cmd.Env = cliEnv(t)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// cliEnv is the CLI's environment in tests: the root credentials, and no
// CLI config file of whoever runs them.
func cliEnv(t *testing.T) []string {
	return append(os.Environ(), "STRATA_ROOT_USER="+testUser, "STRATA_ROOT_PASSWORD="+testSecret,
		"STRATA_SERVER=", "STRATA_CLI_CONFIG="+filepath.Join(t.TempDir(), "no-cli-config.json"))
}

func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := strataCLI(t, args...)
	if err != nil {
		t.Fatalf("strata %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// A running node takes a new device through the admin API, rebalances
// onto it, and keeps serving every object; the ring file on disk follows.
func TestRingAdminOnRunningNode(t *testing.T) {
	t.Parallel()
	srv := startBinaryServer(t, t.TempDir())
	mc := minioClient(t, srv.server, testSecret)
	ctx := context.Background()
	if err := mc.MakeBucket(ctx, "ring", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	want := putObjects(t, mc, "ring", 30)
	admin := "http://" + srv.admin

	out := mustCLI(t, "ring", "show", "--server", admin)
	if !strings.Contains(out, "EC 2+2") || !strings.Contains(out, "pool3") {
		t.Fatalf("ring show:\n%s", out)
	}
	// Bad input: unknown device, bad weight, wrong credentials.
	if out, err := strataCLI(t, "ring", "set-weight", "--server", admin, "42", "2"); err == nil || !strings.Contains(out, "NoSuchDevice") {
		t.Fatalf("set-weight of a missing device: %v\n%s", err, out)
	}
	if out, err := strataCLI(t, "ring", "set-weight", "--server", admin, "--", "1", "-3"); err == nil || !strings.Contains(out, "InvalidArgument") {
		t.Fatalf("negative weight: %v\n%s", err, out)
	}
	if out, err := strataCLI(t, "ring", "show", "--server", admin, "--secret-key", "wrong"); err == nil || !strings.Contains(out, "SignatureDoesNotMatch") {
		t.Fatalf("wrong secret: %v\n%s", err, out)
	}

	mustCLI(t, "ring", "add-device", "--server", admin, "--zone", "zone1", "--name", "pool4", "--weight", "1")
	out = mustCLI(t, "ring", "rebalance", "--server", admin)
	if !strings.Contains(out, "pool4") || strings.Contains(out, "moved 0 of") {
		t.Fatalf("rebalance moved nothing onto the new device:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(srv.dataDir, "pools", "pool4", "chunk.vol")); err != nil {
		t.Fatalf("the new device's pool was not created: %v", err)
	}
	// Every object is still readable (moved shards decode from the rest)
	// and new writes land on the new placement.
	verifyObjects(t, mc, "ring", want)
	extra := putObjects(t, mc, "ring", 5)
	verifyObjects(t, mc, "ring", extra)
	out = mustCLI(t, "ring", "diff", "--server", admin)
	if !strings.Contains(out, "pool4") {
		t.Fatalf("diff of previous and current ring:\n%s", out)
	}

	// The ring survives a restart and still places everything.
	srv.restart(t)
	verifyObjects(t, mc, "ring", want)
	verifyObjects(t, mc, "ring", extra)
	out = mustCLI(t, "ring", "show", "--ring", filepath.Join(srv.dataDir, "ring"))
	if !strings.Contains(out, "pool4") {
		t.Fatalf("ring file after restart:\n%s", out)
	}
}

// The offline commands on a ring file, end to end.
func TestRingCLIOffline(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ring")
	mustCLI(t, "ring", "create", "--ring", path, "--part-power", "10", "--ec", "4+2")
	if out, err := strataCLI(t, "ring", "create", "--ring", path); err == nil {
		t.Fatalf("create over an existing ring succeeded:\n%s", out)
	}
	for _, z := range []string{"a", "b", "c"} {
		for _, n := range []string{"1", "2"} {
			mustCLI(t, "ring", "add-device", "--ring", path, "--zone", "rack-"+z, "--node", z+n, "--name", "sda", "--weight", "4")
		}
	}
	out := mustCLI(t, "ring", "rebalance", "--ring", path, "--stored", "6T")
	if !strings.Contains(out, "moved 0 of 6144") {
		t.Fatalf("first rebalance:\n%s", out)
	}
	old := path + ".old"
	b, _ := os.ReadFile(path)
	os.WriteFile(old, b, 0o600)
	mustCLI(t, "ring", "add-device", "--ring", path, "--zone", "rack-d", "--node", "d1", "--name", "sda", "--weight", "4")
	mustCLI(t, "ring", "drain", "--ring", path, "0")
	out = mustCLI(t, "ring", "rebalance", "--ring", path, "--stored", "6T")
	if !strings.Contains(out, "at most 2 in one") && !strings.Contains(out, "at most 1 in one") {
		t.Fatalf("rebalance moved more than M=2 of a partition:\n%s", out)
	}
	out = mustCLI(t, "ring", "diff", old, path)
	if !strings.Contains(out, "d1") {
		t.Fatalf("diff:\n%s", out)
	}
	out = mustCLI(t, "ring", "dispersion", "--ring", path)
	if !strings.Contains(out, "UNREADABLE") || !strings.Contains(out, "zone region1/rack-a") {
		t.Fatalf("dispersion:\n%s", out)
	}
}
