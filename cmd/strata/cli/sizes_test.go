package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		bad  string // part of the error, "" when it parses
	}{
		// Issue 19's examples, each once misread.
		{"10GB", 10_000_000_000, ""},
		{"20gb", 20_000_000_000, ""},
		{"1.5GiB", 1_610_612_736, ""},
		{"1TB", 1_000_000_000_000, ""},
		{"10GiB", 10 << 30, ""},
		// SI and IEC, any case, with or without B.
		{"1000", 1000, ""}, {"1000B", 1000, ""}, {"1000b", 1000, ""}, {"0", 0, ""},
		{"4KiB", 4096, ""}, {"4kib", 4096, ""}, {"4Ki", 4096, ""}, {"4KB", 4000, ""}, {"4k", 4000, ""},
		{"2M", 2_000_000, ""}, {"2Mi", 2 << 20, ""}, {"2MiB", 2 << 20, ""},
		{"1TiB", 1 << 40, ""}, {"40T", 40_000_000_000_000, ""}, {"1PiB", 1 << 50, ""}, {"1EiB", 1 << 60, ""},
		{"0.5KiB", 512, ""}, {"1.1KB", 1100, ""}, {"1.0001KiB", 1024, ""}, // rounded down to a byte
		{" 512 MiB ", 512 << 20, ""},
		{"8EiB", 0, "more than"}, {"9.3EB", 0, "more than"},
		{"-5", 0, "want a number"}, {"+5", 0, "want a number"}, {"", 0, "want a number"},
		{"lots", 0, "want a number"}, {".5GB", 0, "want a number"}, {"5.GB", 0, "want a number"}, {"1.2.3GB", 0, "want a number"},
		{"10XB", 0, "unknown unit"}, {"10GiBs", 0, "unknown unit"}, {"10 gigabytes", 0, "unknown unit"}, {"1e9", 0, "unknown unit"},
		{"10iB", 0, "unknown unit"}, {"5/2", 0, "unknown unit"},
	}
	for _, c := range cases {
		got, err := ParseSize(c.in)
		switch {
		case c.bad == "" && (err != nil || got != c.want):
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)):
			t.Errorf("ParseSize(%q) = %d, %v; want an error saying %q", c.in, got, err, c.bad)
		}
	}
}

func TestParseRateAndDuration(t *testing.T) {
	for in, want := range map[string]int64{"none": 0, "": 0, "0": 0, "50MiB": 50 << 20, "50MiB/s": 50 << 20, "1gb/s": 1e9, "128Mi": 128 << 20} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"fast", "10XB/s", "-1MiB"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
	for in, want := range map[string]time.Duration{
		"30s": 30 * time.Second, "1h30m": 90 * time.Minute, "7d": 7 * 24 * time.Hour, "2w": 14 * 24 * time.Hour,
		"1d12h": 36 * time.Hour, "1.5d": 36 * time.Hour, "500ms": 500 * time.Millisecond, "0": 0, "168h": 7 * 24 * time.Hour,
	} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "10", "soon", "5y", "1h-5m", "d"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) accepted", in)
		}
	}
}

// A bad value is refused by the flag set, naming the flag; a good one is
// stored in bytes.
func TestSizeFlags(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	var size, rate int64
	var d time.Duration
	SizeVar(fs, &size, "chunk-volume-size", "1TiB", "")
	RateVar(fs, &rate, "limit", "none", "")
	DurationVar(fs, &d, "stale-upload-age", 7*24*time.Hour, "")
	if size != 1<<40 || rate != 0 || d != 7*24*time.Hour {
		t.Fatalf("defaults: %d %d %v", size, rate, d)
	}
	if f := fs.Lookup("stale-upload-age"); f.DefValue != "7d" {
		t.Fatalf("duration default shown as %q", f.DefValue)
	}
	if err := fs.Parse([]string{"--chunk-volume-size", "1TB", "--limit", "50MiB/s", "--stale-upload-age", "2d"}); err != nil {
		t.Fatal(err)
	}
	if size != 1e12 || rate != 50<<20 || d != 48*time.Hour {
		t.Fatalf("parsed: %d %d %v", size, rate, d)
	}
	err := fs.Parse([]string{"--chunk-volume-size", "1TX"})
	if err == nil || !strings.Contains(err.Error(), "--chunk-volume-size") || !strings.Contains(err.Error(), "unknown unit") {
		t.Fatalf("a bad size: %v", err)
	}
}
