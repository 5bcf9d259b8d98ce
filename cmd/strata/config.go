package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// A server's settings come from, first match wins: its flags, the
// environment (STRATA_ and the flag's name in capitals, dashes as
// underscores: STRATA_DATA_DIR), the config file (--config: YAML, the
// flags' names as keys), the defaults. --print-config writes what is in
// force as such a file.

// notSettings are flags that are not the server's settings.
var notSettings = map[string]bool{"config": true, "print-config": true, "help": true}

// envName is the environment variable of a setting.
func envName(flag string) string {
	return "STRATA_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applySettings sets the flags not given on the command line from the
// environment and the config file at path ("" for none).
func applySettings(fs *pflag.FlagSet, path string) error {
	fromFile := map[string]string{}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("--config: %w", err)
		}
		j, err := yaml.YAMLToJSON(b)
		if err != nil {
			return fmt.Errorf("--config %s: %w", path, err)
		}
		var doc map[string]any
		if err := json.Unmarshal(j, &doc); err != nil {
			return fmt.Errorf("--config %s: want a map of settings: %w", path, err)
		}
		for k, v := range doc {
			if fs.Lookup(k) == nil || notSettings[k] {
				return fmt.Errorf("--config %s: %q is not a setting (the settings are strata server's flags, e.g. data-dir)", path, k)
			}
			s, err := settingValue(v)
			if err != nil {
				return fmt.Errorf("--config %s: %s: %w", path, k, err)
			}
			fromFile[k] = s
		}
	}
	var errs []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || notSettings[f.Name] {
			return
		}
		v, ok := os.LookupEnv(envName(f.Name))
		where := "$" + envName(f.Name)
		if !ok {
			if v, ok = fromFile[f.Name]; !ok {
				return
			}
			where = path
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Sprintf("%s from %s: %v", f.Name, where, err))
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("settings: %s", strings.Join(errs, "; "))
	}
	return nil
}

// settingValue is a YAML value as a flag's text: a scalar, or a list
// joined with commas (domain: [a, b]).
func settingValue(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			s, err := settingValue(x)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	case nil:
		return "", nil
	}
	return "", fmt.Errorf("a %T is not a setting's value", v)
}

// printSettings writes every setting in force as a config file.
func printSettings(w io.Writer, fs *pflag.FlagSet) error {
	m := map[string]string{}
	var names []string
	fs.VisitAll(func(f *pflag.Flag) {
		if !notSettings[f.Name] {
			m[f.Name] = f.Value.String()
			names = append(names, f.Name)
		}
	})
	sort.Strings(names)
	fmt.Fprintln(w, "# strata server settings in force (flags > $STRATA_<FLAG> > --config > defaults); secrets are not settings")
	for _, n := range names {
		b, err := yaml.Marshal(map[string]string{n: m[n]})
		if err != nil {
			return err
		}
		w.Write(b)
	}
	return nil
}
