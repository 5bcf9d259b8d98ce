package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// printed runs `strata server ARGS --print-config` and reads its output
// back as settings.
func printed(t *testing.T, args ...string) (map[string]string, error) {
	t.Helper()
	cmd := serverCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(append(args, "--print-config"))
	if err := cmd.Execute(); err != nil {
		return nil, err
	}
	m := map[string]string{}
	if err := yaml.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("--print-config is not YAML: %v\n%s", err, out.String())
	}
	return m, nil
}

func TestSettingsComeFromFlagsEnvFileDefaults(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "strata.yaml")
	os.WriteFile(file, []byte("data-dir: /from/file\nec: 4+2\nregion: file-region\ndomain: [a.example, b.example]\nsigv2: false\nchunk-volume-size: 2TiB\nscrub-rate: \"off\"\n"), 0o600)
	t.Setenv("STRATA_REGION", "env-region")
	t.Setenv("STRATA_EC", "")
	os.Unsetenv("STRATA_EC")
	m, err := printed(t, "--config", file, "--data-dir", "/from/flag")
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"data-dir":          "/from/flag", // the flag over the file
		"region":            "env-region", // the environment over the file
		"ec":                "4+2",        // the file over the default
		"domain":            "a.example,b.example",
		"sigv2":             "false",
		"chunk-volume-size": "2TiB",
		"scrub-rate":        "off",
		"s3-addr":           "127.0.0.1:9000", // the default
	} {
		if m[k] != want {
			t.Errorf("%s = %q, want %q", k, m[k], want)
		}
	}
	// What --print-config wrote reads back as the same settings.
	again := filepath.Join(dir, "again.yaml")
	var buf bytes.Buffer
	for k, v := range m {
		b, _ := yaml.Marshal(map[string]string{k: v})
		buf.Write(b)
	}
	os.WriteFile(again, buf.Bytes(), 0o600)
	os.Unsetenv("STRATA_REGION")
	m2, err := printed(t, "--config", again)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range m {
		if m2[k] != v {
			t.Errorf("read back %s = %q, want %q", k, m2[k], v)
		}
	}
}

func TestBadSettingsAreRefused(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ doc, say string }{
		{"data-dri: /x\n", `"data-dri" is not a setting`},
		{"chunk-volume-size: 1TX\n", "chunk-volume-size from"},
		{"- just\n- a list\n", "want a map of settings"},
	} {
		file := filepath.Join(dir, "bad.yaml")
		os.WriteFile(file, []byte(tc.doc), 0o600)
		if _, err := printed(t, "--config", file); err == nil || !strings.Contains(err.Error(), tc.say) {
			t.Errorf("%q: %v, want an error saying %q", tc.doc, err, tc.say)
		}
	}
	t.Setenv("STRATA_STALE_UPLOAD_AGE", "soon")
	if _, err := printed(t); err == nil || !strings.Contains(err.Error(), "$STRATA_STALE_UPLOAD_AGE") {
		t.Errorf("a bad environment setting: %v", err)
	}
}

// Values the server cannot honour are refused before it opens anything.
func TestServerRefusesUnusableSizes(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ flag, say string }{
		{"--metadata-cache=1MiB", "--metadata-cache"},
		{"--metadata-cache=0", "--metadata-cache"},
		{"--chunk-volume-size=1MiB", "--chunk-volume-size"},
	} {
		cmd := serverCommand()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs([]string{"--data-dir", filepath.Join(dir, "data"), tc.flag})
		if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), tc.say) {
			t.Errorf("%s: %v, want an error naming %s", tc.flag, err, tc.say)
		}
		if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
			t.Fatalf("%s: the data dir was made before the refusal", tc.flag)
		}
	}
}
