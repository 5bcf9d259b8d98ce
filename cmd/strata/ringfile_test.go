package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/strata-storage/strata/cmd/strata/cli"
)

// The offline ring editor: create, add devices, rebalance, show and diff
// a ring file, through the same commands as on a node.
func TestRingFileCommands(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ring")
	run := func(args ...string) (string, error) {
		root := &cobra.Command{Use: "strata", SilenceUsage: true, SilenceErrors: true}
		root.AddCommand(cli.Commands(ringFiles{})...)
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(append(args, "--ring", file))
		err := root.Execute()
		return out.String(), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("strata %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	if out := must("ring", "create", "--part-power", "6", "--ec", "2+1"); !strings.Contains(out, "64 partitions, EC 2+1") {
		t.Fatalf("create: %q", out)
	}
	if _, err := run("ring", "create"); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("create over a file: %v", err)
	}
	for _, z := range []string{"a", "b", "c"} {
		must("ring", "add-device", "--zone", z, "--node", "n"+z, "--name", "d", "--weight", "1")
	}
	must("ring", "rebalance")
	old := filepath.Join(dir, "ring.v1")
	must("ring", "show") // the file reads back
	if out, err := run("ring", "show", "-o", "json"); err != nil || !strings.Contains(out, `"k":2`) {
		t.Fatalf("show json: %v %s", err, out)
	}
	copyFile(t, file, old)
	must("ring", "add-device", "--zone", "c", "--node", "nd", "--name", "d", "--weight", "1")
	if out := must("ring", "rebalance", "--stored", "1GiB"); !strings.Contains(out, "to move") {
		t.Fatalf("rebalance with --stored: %s", out)
	}
	if out := must("ring", "diff", old, file); !strings.Contains(out, "slots moved") {
		t.Fatalf("diff: %s", out)
	}
	if _, err := run("ring", "set-weight", "42", "1"); err == nil {
		t.Fatal("set-weight of an unknown device")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
