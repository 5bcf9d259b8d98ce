package cli

import (
	"fmt"
	"strings"
)

// ParseRate parses a bandwidth like 50MiB (per second), "0" or "none".
func ParseRate(s string) (int64, error) {
	s = strings.TrimSuffix(strings.TrimSuffix(s, "/s"), "ps")
	if s == "none" || s == "" || s == "0" {
		return 0, nil
	}
	return ParseSize(s)
}

// ParseSize parses sizes like 1TiB, 512GiB, 1000000.
func ParseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			var n int64
			if _, err := fmt.Sscanf(num, "%d", &n); err != nil || n <= 0 {
				return 0, fmt.Errorf("invalid size %q", s)
			}
			return n * u.mult, nil
		}
	}
	var n int64
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return n, nil
}
