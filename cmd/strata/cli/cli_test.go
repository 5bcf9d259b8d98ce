package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/node"
)

// startNode runs a single-node store on loopback for the CLI to talk to.
func startNode(t *testing.T, opts ...func(*node.Config)) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.S3Addr, cfg.AdminAddr, cfg.NBDAddr = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", "off"
	cfg.ChunkVolume = 1 << 30
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, o := range opts {
		o(&cfg)
	}
	n, err := node.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	return n
}

// run executes one strata command line and returns what it printed.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runIn(t, strings.NewReader(""), args...)
}

// runIn is run with stdin.
func runIn(t *testing.T, stdin io.Reader, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "strata", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(Commands(nil)...)
	Prepare(root)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(stdin)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// on is the connection flags for n.
func on(n *node.Node) []string {
	return []string{"--server", "http://" + n.AdminAddr(), "--access-key", n.Root.AccessKey, "--secret-key", n.Root.SecretKey}
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, args...)
	if err != nil {
		t.Fatalf("strata %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// noEnv clears what the CLI reads from the environment and points its
// config file at path (which need not exist).
func noEnv(t *testing.T, config string) {
	for _, v := range []string{"STRATA_SERVER", "STRATA_ROOT_USER", "STRATA_ROOT_PASSWORD", "STRATA_CA_FILE"} {
		t.Setenv(v, "")
	}
	t.Setenv("STRATA_CLI_CONFIG", config)
}

func TestConnectionFlags(t *testing.T) {
	noEnv(t, filepath.Join(t.TempDir(), "none.json"))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"node", "list"}, "http://127.0.0.1:9001 needs credentials"},
		{[]string{"user", "list"}, "http://127.0.0.1:9001 needs credentials"},
		{[]string{"user", "list", "--server", "127.0.0.1:9001", "--access-key", "a", "--secret-key", "b"}, "want http(s)://host:port"},
		{[]string{"ring", "rebuild-device", "1"}, "needs credentials"},
		{[]string{"ring", "show", "--ring", "f", "--server", "http://x:1"}, "one or the other"},
	} {
		_, err := run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("strata %s: %v, want an error saying %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

func TestUserAndKeyCommands(t *testing.T) {
	n := startNode(t)
	c := on(n)
	if out := mustRun(t, append([]string{"user", "create", "carol", "--email", "carol@example.com"}, c...)...); out != "user carol created\n" {
		t.Fatalf("create: %q", out)
	}
	table := mustRun(t, append([]string{"user", "list"}, c...)...)
	if !strings.Contains(table, "carol") || !strings.HasPrefix(table, "USER") {
		t.Fatalf("table:\n%s", table)
	}
	var users []admin.User
	if err := json.Unmarshal([]byte(mustRun(t, append([]string{"user", "list", "-o", "json"}, c...)...)), &users); err != nil || len(users) != 1 || users[0].Name != "carol" || users[0].Email != "carol@example.com" {
		t.Fatalf("json: %v %+v", err, users)
	}
	var key admin.NewKey
	if err := json.Unmarshal([]byte(mustRun(t, append([]string{"key", "create", "carol", "-o", "json"}, c...)...)), &key); err != nil || key.User != "carol" || key.SecretKey == "" {
		t.Fatalf("key: %v %+v", err, key)
	}
	env := mustRun(t, append([]string{"key", "create", "carol"}, c...)...)
	if !strings.HasPrefix(env, "AWS_ACCESS_KEY_ID=") || !strings.Contains(env, "\nAWS_SECRET_ACCESS_KEY=") {
		t.Fatalf("env output: %q", env)
	}
	if out := mustRun(t, append([]string{"key", "disable", key.AccessKey}, c...)...); !strings.Contains(out, "disabled") {
		t.Fatalf("disable: %q", out)
	}
	keys := mustRun(t, append([]string{"key", "list", "carol"}, c...)...)
	if !strings.Contains(keys, key.AccessKey) || !strings.Contains(keys, "disabled") {
		t.Fatalf("keys:\n%s", keys)
	}
	// The server's refusal comes back as its code.
	_, err := run(t, append([]string{"user", "delete", "nobody"}, c...)...)
	if !admin.HasCode(err, admin.CodeNoSuchUser) || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("delete unknown: %v", err)
	}
	if _, err := run(t, append([]string{"user", "create", "a b"}, c...)...); !admin.HasCode(err, admin.CodeInvalidArgument) {
		t.Fatalf("bad name: %v", err)
	}
	// Root's key signs; a wrong secret does not.
	bad := []string{"user", "list", "--server", "http://" + n.AdminAddr(), "--access-key", n.Root.AccessKey, "--secret-key", "wrong"}
	if _, err := run(t, bad...); !admin.HasCode(err, "SignatureDoesNotMatch") {
		t.Fatalf("wrong secret: %v", err)
	}
	audit := mustRun(t, append([]string{"audit", "-o", "json", "--limit", "3"}, c...)...)
	var entries []admin.AuditEntry
	if err := json.Unmarshal([]byte(audit), &entries); err != nil || len(entries) != 3 {
		t.Fatalf("audit: %v %d\n%s", err, len(entries), audit)
	}
}

func TestVolumeAndSnapshotCommands(t *testing.T) {
	n := startNode(t)
	c := on(n)
	mustRun(t, append([]string{"volume", "create", "vol", "16MiB", "--replicas", "1"}, c...)...)
	var list []admin.VolumeInfo
	if err := json.Unmarshal([]byte(mustRun(t, append([]string{"volume", "list", "-o", "json"}, c...)...)), &list); err != nil || len(list) != 1 || list[0].Name != "vol" || list[0].Size != 16<<20 {
		t.Fatalf("list: %v %+v", err, list)
	}
	mustRun(t, append([]string{"snapshot", "create", "vol", "s1"}, c...)...)
	if out := mustRun(t, append([]string{"snapshot", "list", "vol"}, c...)...); !strings.Contains(out, "s1") {
		t.Fatalf("snapshots:\n%s", out)
	}
	mustRun(t, append([]string{"volume", "access", "grant", "vol", "client-a"}, c...)...)
	if out := mustRun(t, append([]string{"volume", "access", "show", "vol"}, c...)...); out != "volume vol: client-a\n" {
		t.Fatalf("access: %q", out)
	}
	if _, err := run(t, append([]string{"volume", "create", "vol", "16MiB", "--replicas", "1"}, c...)...); !admin.HasCode(err, "VolumeExists") {
		t.Fatalf("create twice: %v", err)
	}
	if _, err := run(t, append([]string{"volume", "create", "big", "lots"}, c...)...); err == nil || !strings.Contains(err.Error(), "invalid size") {
		t.Fatalf("bad size: %v", err)
	}
	mustRun(t, append([]string{"snapshot", "delete", "vol", "s1"}, c...)...)
	mustRun(t, append([]string{"volume", "delete", "vol", "--yes"}, c...)...)
	if _, err := run(t, append([]string{"volume", "list", "vol"}, c...)...); !admin.HasCode(err, admin.CodeNoSuchVolume) {
		t.Fatalf("deleted volume: %v", err)
	}
}

func TestRingCommandsOnANode(t *testing.T) {
	n := startNode(t)
	c := on(n)
	var info admin.RingInfo
	if err := json.Unmarshal([]byte(mustRun(t, append([]string{"ring", "show", "-o", "json"}, c...)...)), &info); err != nil || len(info.Devices) != 4 || info.K != 2 || info.M != 2 {
		t.Fatalf("show: %v %+v", err, info)
	}
	if out := mustRun(t, append([]string{"ring", "show"}, c...)...); !strings.HasPrefix(out, "ring version ") || !strings.Contains(out, "DEVIATION") {
		t.Fatalf("table:\n%s", out)
	}
	if _, err := run(t, append([]string{"ring", "diff"}, c...)...); !admin.HasCode(err, admin.CodeNoPreviousRing) {
		t.Fatalf("diff before any change: %v", err)
	}
	if out := mustRun(t, append([]string{"ring", "set-weight", "1", "2"}, c...)...); !strings.Contains(out, "ring version") {
		t.Fatalf("set-weight:\n%s", out)
	}
	if out := mustRun(t, append([]string{"ring", "diff"}, c...)...); !strings.HasPrefix(out, "version ") {
		t.Fatalf("diff:\n%s", out)
	}
	if _, err := run(t, append([]string{"ring", "set-weight", "99", "2"}, c...)...); !admin.HasCode(err, admin.CodeNoSuchDevice) {
		t.Fatalf("unknown device: %v", err)
	}
	if _, err := run(t, append([]string{"ring", "create"}, c...)...); err == nil || !strings.Contains(err.Error(), "works on files") {
		t.Fatalf("create with --server: %v", err)
	}
}
