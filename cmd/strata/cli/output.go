package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// Output formats of every command that shows something: one for people
// (a table, or env lines for credentials, or text) and JSON and YAML for
// programs, with the same snake_case keys.

// outputValue is -o/--output: a format the command has, or a usage error
// when the flags are parsed, before anything is done.
type outputValue struct {
	p       *string
	formats []string
}

func (v *outputValue) String() string { return *v.p }
func (v *outputValue) Type() string   { return "format" }
func (v *outputValue) Set(s string) error {
	if !slices.Contains(v.formats, s) {
		return fmt.Errorf("want %s", strings.Join(v.formats, ", "))
	}
	*v.p = s
	return nil
}

// outputFlag adds -o/--output to cmd: human (table, env or text, the
// default), json or yaml.
func outputFlag(cmd *cobra.Command, p *string, human string) {
	*p = human
	formats := []string{human, "json", "yaml"}
	cmd.Flags().VarP(&outputValue{p: p, formats: formats}, "output", "o", "output format: "+strings.Join(formats, ", "))
}

// emit writes v as JSON or YAML with -o json|yaml, else as print writes
// it.
func emit(cmd *cobra.Command, output string, v any, print func(io.Writer)) error {
	switch output {
	case "json":
		return json.NewEncoder(cmd.OutOrStdout()).Encode(v)
	case "yaml":
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return writeYAML(cmd.OutOrStdout(), b)
	}
	print(cmd.OutOrStdout())
	return nil
}

// writeYAML writes a JSON document as YAML (block style, keys in the
// order JSON has them), so -o yaml says exactly what -o json says.
func writeYAML(w io.Writer, doc []byte) error {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var buf bytes.Buffer
	if err := yamlValue(&buf, dec, 0, false); err != nil {
		return fmt.Errorf("yaml output: %w", err)
	}
	if buf.Len() == 0 || buf.Bytes()[buf.Len()-1] != '\n' {
		buf.WriteByte('\n')
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// yamlValue writes the next JSON value; inline is true when it follows a
// "key:" or "- " on the same line.
func yamlValue(b *bytes.Buffer, dec *json.Decoder, indent int, inline bool) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	pad := strings.Repeat("  ", indent)
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			if !dec.More() {
				dec.Token()
				b.WriteString(sep(inline) + "{}\n")
				return nil
			}
			if inline {
				b.WriteString("\n")
			}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				b.WriteString(pad + yamlScalar(k.(string)) + ":")
				if err := yamlValue(b, dec, indent+1, true); err != nil {
					return err
				}
			}
			_, err := dec.Token() // }
			return err
		case '[':
			if !dec.More() {
				dec.Token()
				b.WriteString(sep(inline) + "[]\n")
				return nil
			}
			if inline {
				b.WriteString("\n")
			}
			for dec.More() {
				b.WriteString(pad + "-")
				if err := yamlValue(b, dec, indent+1, true); err != nil {
					return err
				}
			}
			_, err := dec.Token() // ]
			return err
		}
	case string:
		b.WriteString(sep(inline) + yamlScalar(t) + "\n")
	case json.Number:
		n := t.String()
		// YAML 1.1 readers (PyYAML among them) take 1e-7 for a string:
		// an exponent needs a mantissa with a point.
		if i := strings.IndexAny(n, "eE"); i >= 0 && !strings.Contains(n[:i], ".") {
			n = n[:i] + ".0" + n[i:]
		}
		b.WriteString(sep(inline) + n + "\n")
	case bool:
		b.WriteString(sep(inline) + strconv.FormatBool(t) + "\n")
	case nil:
		b.WriteString(sep(inline) + "null\n")
	}
	return nil
}

func sep(inline bool) string {
	if inline {
		return " "
	}
	return ""
}

// yamlScalar quotes a string unless YAML would read it back as the same
// string.
func yamlScalar(s string) string {
	if s == "" || needsQuotes(s) {
		q, _ := json.Marshal(s) // a JSON string is a YAML double-quoted scalar
		return string(q)
	}
	return s
}

func needsQuotes(s string) bool {
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "null", "~", "y", "n":
		return true
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil || s[0] >= '0' && s[0] <= '9' {
		return true // numbers, and what YAML may read as a date or time
	}
	if strings.ContainsAny(s[:1], "-?:,[]{}#&*!|>'\"%@` \t") || strings.ContainsAny(s, "\n\t") ||
		strings.Contains(s, ": ") || strings.Contains(s, " #") || strings.HasSuffix(s, ":") || strings.HasSuffix(s, " ") {
		return true
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}
