package cli

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Sizes and durations as people write them. One parser serves every flag
// of the strata command, the server's included, so a size means the same
// everywhere:
//
//	1000000  1000000B                          bytes
//	10KB 10MB 10GB 10TB 10PB 10EB              SI: powers of 1000
//	10K 10M 10G 10T 10P 10E                    SI too (as Kubernetes reads them)
//	10KiB 10MiB 10GiB 10TiB 10PiB 10EiB        IEC: powers of 1024 (also 10Ki, 10Gi, …)
//
// Unit letters are case-insensitive (20gb, 1.5gib), the number may have a
// decimal fraction (1.5GiB; the bytes are rounded down to a whole one),
// and anything else — an unknown unit, a sign, an exponent, more than
// 2^63-1 bytes — is refused with an error naming what was given.

// sizeUnit is the multiplier of a unit (already lower case).
func sizeUnit(unit string) (int64, bool) {
	if unit == "" || unit == "b" {
		return 1, true
	}
	prefix, rest := unit[:1], unit[1:]
	exp := strings.Index("kmgtpe", prefix) + 1
	if exp == 0 {
		return 0, false
	}
	base := int64(1000)
	switch rest {
	case "", "b":
	case "i", "ib":
		base = 1024
	default:
		return 0, false
	}
	m := int64(1)
	for i := 0; i < exp; i++ {
		m *= base
	}
	return m, true
}

const sizeForms = "a number of bytes with an optional unit: B; KB MB GB TB PB (powers of 1000); KiB MiB GiB TiB PiB (powers of 1024)"

// ParseSize parses a size in bytes. Zero is a size; a caller that needs
// more says so.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" || strings.Count(num, ".") > 1 || num[0] == '.' || num[len(num)-1] == '.' {
		return 0, fmt.Errorf("invalid size %q: want %s", s, sizeForms)
	}
	mult, ok := sizeUnit(unit)
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (want %s)", s, t[i:], sizeForms)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("invalid size %q: want %s", s, sizeForms)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsInt64() {
		return 0, fmt.Errorf("invalid size %q: more than %d bytes", s, int64(1<<63-1))
	}
	return n.Int64(), nil
}

// ParseRate parses a bandwidth in bytes per second: a size, optionally
// followed by /s ("50MiB/s"); "0", "none" and "" are no limit (0).
func ParseRate(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if lower := strings.ToLower(t); lower == "none" || lower == "" || lower == "0" {
		return 0, nil
	}
	t = strings.TrimSuffix(strings.TrimSuffix(t, "/s"), "/S")
	v, err := ParseSize(t)
	if err != nil {
		return 0, fmt.Errorf("invalid rate %q: want a size per second, e.g. 50MiB/s, or none", s)
	}
	return v, nil
}

// ParseDuration parses a duration as Go writes them (90s, 1h30m, 500ms)
// with days and weeks added (7d, 2w, 1d12h). A bare number is refused:
// seconds or minutes?
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "0" {
		return 0, nil
	}
	if t == "" {
		return 0, fmt.Errorf("invalid duration %q: want e.g. 30s, 15m, 2h, 7d or 1h30m", s)
	}
	var total time.Duration
	rest := t
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		j := i
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') && rest[j] != '.' {
			j++
		}
		num, unit := rest[:i], rest[i:j]
		rest = rest[j:]
		if num == "" || unit == "" {
			return 0, fmt.Errorf("invalid duration %q: want e.g. 30s, 15m, 2h, 7d or 1h30m", s)
		}
		var d time.Duration
		switch unit {
		case "d", "w":
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("invalid duration %q: %v", s, err)
			}
			day := 24 * time.Hour
			if unit == "w" {
				day *= 7
			}
			d = time.Duration(f * float64(day))
		default:
			var err error
			if d, err = time.ParseDuration(num + unit); err != nil {
				return 0, fmt.Errorf("invalid duration %q: want e.g. 30s, 15m, 2h, 7d or 1h30m", s)
			}
		}
		total += d
	}
	return total, nil
}

// Flag values: every size, rate and duration flag parses with the
// functions above, and pflag names the flag in the error.

type parsedValue[T any] struct {
	p     *T
	text  string
	typ   string
	parse func(string) (T, error)
	show  func(T) string // nil: the text as given
}

func (v *parsedValue[T]) String() string {
	if v.show != nil {
		return v.show(*v.p)
	}
	return v.text
}
func (v *parsedValue[T]) Type() string { return v.typ }
func (v *parsedValue[T]) Set(s string) error {
	x, err := v.parse(s)
	if err != nil {
		return err
	}
	*v.p, v.text = x, s
	return nil
}

func parsedVar[T any](fs *pflag.FlagSet, v *parsedValue[T], name, def, usage string) {
	if err := v.Set(def); err != nil {
		panic(fmt.Sprintf("flag --%s: default %q: %v", name, def, err))
	}
	fs.Var(v, name, usage)
}

// SizeVar defines a size flag (10GiB, 500MB…) stored as bytes in p.
func SizeVar(fs *pflag.FlagSet, p *int64, name, def, usage string) {
	parsedVar(fs, &parsedValue[int64]{p: p, typ: "size", parse: ParseSize}, name, def, usage)
}

// RateVar defines a bandwidth flag (50MiB/s, none) stored as bytes per
// second in p.
func RateVar(fs *pflag.FlagSet, p *int64, name, def, usage string) {
	parsedVar(fs, &parsedValue[int64]{p: p, typ: "rate", parse: ParseRate}, name, def, usage)
}

// DurationVar defines a duration flag (30s, 7d, 1h30m) stored in p.
func DurationVar(fs *pflag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	parsedVar(fs, &parsedValue[time.Duration]{p: p, typ: "duration", parse: ParseDuration, show: formatDuration}, name, formatDuration(def), usage)
}

// formatDuration writes whole days as days (168h is 7d).
func formatDuration(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}
