package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/node"
)

// Issue 19: a command line that cannot run exits 2, a failure exits 1,
// and nothing prints help and succeeds in place of an error.
func TestExitCodes(t *testing.T) {
	n := startNode(t)
	c := on(n)
	mustRun(t, append([]string{"volume", "create", "kept", "1MiB"}, c...)...)
	cases := []struct {
		args []string
		code int
		say  string
	}{
		{[]string{"volume", "craete", "x", "1GiB"}, 2, `unknown command "craete" for "strata volume"`},
		{[]string{"volume", "list", "--bogus"}, 2, "unknown flag: --bogus"},
		{[]string{"volume", "create", "only-a-name"}, 2, "accepts 2 arg(s)"},
		{append([]string{"bucket", "quota", "b", "--max-size", "10XB"}, c...), 2, `"--max-size" flag: invalid size "10XB": unknown unit`},
		{append([]string{"user", "list", "-o", "xml"}, c...), 2, `"-o, --output" flag: want table, json, yaml`},
		{append([]string{"volume", "delete", "nope", "--yes"}, c...), 1, "NoSuchVolume"},
		{append([]string{"volume", "list"}, c...), 0, ""},
		{[]string{"volume"}, 0, ""}, // a bare group shows its help
	}
	for _, tc := range cases {
		out, err := run(t, tc.args...)
		if got := ExitCode(err); got != tc.code || tc.say != "" && !strings.Contains(err.Error(), tc.say) {
			t.Errorf("strata %s: exit %d (%v), want %d saying %q\n%s", strings.Join(tc.args, " "), got, err, tc.code, tc.say, out)
		}
	}
	// Nothing was made by the refused command lines.
	var vols []admin.VolumeInfo
	json.Unmarshal([]byte(mustRun(t, append([]string{"volume", "list", "-o", "json"}, c...)...)), &vols)
	if len(vols) != 1 || vols[0].Name != "kept" {
		t.Fatalf("volumes after refused commands: %+v", vols)
	}
}

var snakeKey = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// checkKeys fails for a JSON object key that is not snake_case (values
// of maps keyed by data are passed over by name).
func checkKeys(t *testing.T, what string, v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, sub := range v {
			if !snakeKey.MatchString(k) {
				t.Errorf("%s: key %q is not snake_case", what, k)
			}
			if k == "headers" || k == "tags" || k == "devices" && isMapOfScalars(sub) {
				continue
			}
			checkKeys(t, what, sub)
		}
	case []any:
		for _, sub := range v {
			checkKeys(t, what, sub)
		}
	}
}

func isMapOfScalars(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	for _, sub := range m {
		switch sub.(type) {
		case map[string]any, []any:
			return false
		}
	}
	return true
}

// -o json and -o yaml say the same thing, with snake_case keys, on every
// command that lists something.
func TestOutputFormats(t *testing.T) {
	n := startNode(t)
	c := on(n)
	mustRun(t, append([]string{"user", "create", "dora"}, c...)...)
	mustRun(t, append([]string{"volume", "create", "v1", "4MiB"}, c...)...)
	mustRun(t, append([]string{"snapshot", "create", "v1", "s1"}, c...)...)
	yamlToJSON := func(y string) (any, bool) {
		if _, err := exec.LookPath("python3"); err != nil {
			return nil, false
		}
		cmd := exec.Command("python3", "-c", "import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)")
		cmd.Stdin = strings.NewReader(y)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			if strings.Contains(stderr.String(), "No module named") && os.Getenv("STRATA_REQUIRE_TOOLS") == "" {
				return nil, false
			}
			t.Fatalf("python3 reading the yaml: %v\n%s\nyaml:\n%s", err, stderr.String(), y)
		}
		var v any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatal(err)
		}
		return v, true
	}
	for _, cmd := range [][]string{
		{"ring", "show"}, {"ring", "dispersion"}, {"node", "list"}, {"pool", "list"}, {"volume", "list"}, {"snapshot", "list", "v1"},
		{"user", "list"}, {"key", "list"}, {"bucket", "list"}, {"scrub", "status"}, {"rebalance", "plan"}, {"audit", "--limit", "2"},
		{"storageclass", "list"}, {"claim", "list"}, {"cluster", "verify"},
	} {
		name := strings.Join(cmd, " ")
		js := mustRun(t, append(append(append([]string{}, cmd...), "-o", "json"), c...)...)
		var fromJSON any
		if err := json.Unmarshal([]byte(js), &fromJSON); err != nil {
			t.Errorf("%s -o json: %v\n%s", name, err, js)
			continue
		}
		checkKeys(t, name, fromJSON)
		y := mustRun(t, append(append(append([]string{}, cmd...), "-o", "yaml"), c...)...)
		if strings.HasPrefix(strings.TrimSpace(y), "{") || strings.HasPrefix(strings.TrimSpace(y), "[") && len(y) > 3 {
			t.Errorf("%s -o yaml printed JSON:\n%s", name, y)
		}
		// Two calls may differ in what changes by the second (heartbeats,
		// free space, the audit log), so the printed YAML must parse to
		// the same keys, and the JSON of the same call must read back from
		// its YAML exactly.
		if fromYAML, ok := yamlToJSON(y); ok {
			if a, b := keysOf(fromJSON), keysOf(fromYAML); a != b {
				t.Errorf("%s: -o yaml has the keys\n%s\n-o json has\n%s", name, b, a)
			}
			var buf strings.Builder
			if err := writeYAML(&buf, []byte(js)); err != nil {
				t.Fatal(err)
			}
			again, _ := yamlToJSON(buf.String())
			a, _ := json.Marshal(fromJSON)
			b, _ := json.Marshal(again)
			if string(a) != string(b) {
				t.Errorf("%s: the YAML of\n%s\nreads back as\n%s\nyaml:\n%s", name, a, b, buf.String())
			}
		}
	}
}

// keysOf lists every object key of a JSON value, by path, sorted.
func keysOf(v any) string {
	var out []string
	var walk func(string, any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, sub := range v {
				out = append(out, path+"."+k)
				walk(path+"."+k, sub)
			}
		case []any:
			for _, sub := range v {
				walk(path+"[]", sub)
			}
		}
	}
	walk("", v)
	slices.Sort(out)
	return strings.Join(slices.Compact(out), "\n")
}

// walkCommands calls f for every command of the tree.
func walkCommands(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, sub := range c.Commands() {
		walkCommands(sub, f)
	}
}

// A secret in the environment or the config file never shows in help.
func TestHelpShowsNoSecrets(t *testing.T) {
	const secret = "zz-root-secret-Q9x"
	cfg := filepath.Join(t.TempDir(), "cli.json")
	os.WriteFile(cfg, []byte(`{"secret_key":"cfg-secret-K7w","access_key":"AKCFG"}`), 0o600)
	noEnv(t, cfg)
	t.Setenv("STRATA_ROOT_PASSWORD", secret)
	t.Setenv("STRATA_ROOT_USER", "AKENV")
	root := &cobra.Command{Use: "strata"}
	root.AddCommand(Commands(nil)...)
	n := 0
	walkCommands(root, func(c *cobra.Command) {
		out, _ := run(t, append(strings.Fields(strings.TrimPrefix(c.CommandPath(), "strata")), "--help")...)
		n++
		for _, s := range []string{secret, "cfg-secret-K7w"} {
			if strings.Contains(out, s) {
				t.Errorf("%s --help shows a secret:\n%s", c.CommandPath(), out)
			}
		}
	})
	if n < 40 {
		t.Fatalf("only %d commands' help read", n)
	}
	out, _ := run(t, "volume", "list", "--help")
	if !strings.Contains(out, "$STRATA_ROOT_PASSWORD") {
		t.Fatalf("help does not say where the secret comes from:\n%s", out)
	}
}

// --server (and the credentials) come from the flag, else the
// environment, else the CLI config file, else the local node.
func TestServerResolution(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "cli.json")
	os.WriteFile(cfgFile, []byte(`{"server":"https://from-file:9001","access_key":"AKFILE","secret_key":"SKFILE","region":"eu-west-1"}`), 0o600)
	cases := []struct {
		name                string
		config, env, flag   string
		server, access, reg string
	}{
		{"nothing set: the local node", filepath.Join(dir, "absent.json"), "", "", localAdmin, "", "us-east-1"},
		{"the config file", cfgFile, "", "", "https://from-file:9001", "AKFILE", "eu-west-1"},
		{"the environment over the file", cfgFile, "http://from-env:9001", "", "http://from-env:9001", "AKFILE", "eu-west-1"},
		{"the flag over both", cfgFile, "http://from-env:9001", "http://from-flag:9001", "http://from-flag:9001", "AKFILE", "eu-west-1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			noEnv(t, tc.config)
			t.Setenv("STRATA_SERVER", tc.env)
			cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
			c := &adminClient{}
			c.flags(cmd.Flags())
			args := []string{}
			if tc.flag != "" {
				args = append(args, "--server", tc.flag)
			}
			if err := cmd.Flags().Parse(args); err != nil {
				t.Fatal(err)
			}
			if err := c.resolve(); err != nil {
				t.Fatal(err)
			}
			if c.opts.Server != tc.server || c.opts.AccessKey != tc.access || c.opts.Region != tc.reg {
				t.Fatalf("resolved %+v", c.opts)
			}
		})
	}
	// A config file holding a secret must be private.
	open := filepath.Join(dir, "open.json")
	os.WriteFile(open, []byte(`{"secret_key":"x"}`), 0o644)
	os.Chmod(open, 0o644)
	noEnv(t, open)
	if _, err := run(t, "volume", "list"); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable config with a secret: %v", err)
	}
	// An unknown key in it is refused.
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"sever":"http://typo:1"}`), 0o600)
	noEnv(t, bad)
	if _, err := run(t, "volume", "list"); err == nil || !strings.Contains(err.Error(), "unknown field") {
		t.Fatalf("a config with a misspelled key: %v", err)
	}
}

// A command that takes something away names the store and asks; only
// "yes" (or --yes) goes on.
func TestDestructiveCommandsAsk(t *testing.T) {
	n := startNode(t)
	c := on(n)
	mustRun(t, append([]string{"volume", "create", "doomed", "1MiB"}, c...)...)
	out, err := runIn(t, strings.NewReader("no\n"), append([]string{"volume", "delete", "doomed"}, c...)...)
	if err == nil || !strings.Contains(out, "http://"+n.AdminAddr()) || !strings.Contains(out, "Delete volume doomed") {
		t.Fatalf("answered no: %v\n%s", err, out)
	}
	if _, err := n.Volumes().Info(t.Context(), "doomed"); err != nil {
		t.Fatalf("the volume after answering no: %v", err)
	}
	if out, err := runIn(t, strings.NewReader("yes\n"), append([]string{"volume", "delete", "doomed"}, c...)...); err != nil {
		t.Fatalf("answered yes: %v\n%s", err, out)
	}
	if _, err := n.Volumes().Info(t.Context(), "doomed"); err == nil {
		t.Fatal("the volume is still there after yes")
	}
	for _, args := range [][]string{{"zone", "fail", "zone9"}, {"drill", "rack-failure", "zone9"}, {"volume", "discard", "v", "n2"}, {"snapshot", "restore", "v", "s"}} {
		if _, err := runIn(t, strings.NewReader("\n"), append(args, c...)...); err == nil || !strings.Contains(err.Error(), "not confirmed") {
			t.Errorf("strata %s without yes: %v", strings.Join(args, " "), err)
		}
	}
}

// The YAML writer's output reads back (with a real YAML parser) as the
// JSON it was given, for the strings YAML would otherwise misread.
func TestYAMLReadsBackAsItsJSON(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		if os.Getenv("STRATA_REQUIRE_TOOLS") != "" {
			t.Fatal("python3 not found")
		}
		t.Skip("python3 (with python3-yaml) not found")
	}
	doc := `{"plain":"word","yes":"yes","no":"No","null":"null","tilde":"~","num":"007","float":"1.5","date":"2026-12-03",` +
		`"colon":"a: b","hash":"a #b","dash":"-x","q":"?x","quote":"'x","dq":"\"x","empty":"","space":" x ","nl":"a\nb","tab":"a\tb",` +
		`"uni":"ümlaut ✓","star":"*","pct":"%x","at":"@x","emptyobj":{},"emptylist":[],"list":[1,"two",{"three":[3.5,true,null]}],` +
		`"nested":{"a":{"b":{"c":"d"}}},"big":12345678901234567,"neg":-3,"exp":1e-7}`
	var buf strings.Builder
	if err := writeYAML(&buf, []byte(doc)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("python3", "-c", "import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout, sort_keys=True)")
	cmd.Stdin = strings.NewReader(buf.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3 yaml: %v\n%s", err, buf.String())
	}
	var want, got any
	json.Unmarshal([]byte(doc), &want)
	json.Unmarshal(out, &got)
	a, _ := json.Marshal(want)
	b, _ := json.Marshal(got)
	if string(a) != string(b) {
		t.Fatalf("read back as\n%s\nwant\n%s\nyaml:\n%s", b, a, buf.String())
	}
}

// Issue 19: a claim as kubectl exports it applies through the CLI, and
// the workload is given the advertised S3 endpoint, not the listen address.
func TestKubectlExportedClaimApplies(t *testing.T) {
	n := startNode(t, func(cfg *node.Config) { cfg.S3Advertise = "s3.example.com:443" })
	c := on(n)
	mustRun(t, append([]string{"storageclass", "create", "strata-bucket"}, c...)...)
	doc := `apiVersion: objectbucket.io/v1alpha1
kind: ObjectBucketClaim
metadata:
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: |
      {"apiVersion":"objectbucket.io/v1alpha1","kind":"ObjectBucketClaim","metadata":{"annotations":{},"name":"photos","namespace":"apps"},"spec":{"generateBucketName":"photos","storageClassName":"strata-bucket"}}
  creationTimestamp: "2026-12-01T10:00:00Z"
  finalizers:
  - objectbucket.io/finalizer
  generation: 1
  labels:
    app: gallery
  name: photos
  namespace: apps
  resourceVersion: "123456"
  uid: 0f7d6c1e-6a52-4c8e-9d3b-7d6f0a1b2c3d
spec:
  generateBucketName: photos
  storageClassName: strata-bucket
status:
  phase: Pending
`
	file := filepath.Join(t.TempDir(), "photos.yaml")
	os.WriteFile(file, []byte(doc), 0o600)
	out := mustRun(t, append([]string{"claim", "apply", "-f", file, "--env"}, c...)...)
	if !strings.Contains(out, "BUCKET_HOST=s3.example.com\n") || !strings.Contains(out, "BUCKET_PORT=443\n") || !strings.Contains(out, "BUCKET_NAME=photos-") {
		t.Fatalf("claim apply:\n%s", out)
	}
}
