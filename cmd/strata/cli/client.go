package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strata-storage/strata/admin"
)

// localAdmin is the admin address of a node started with the defaults.
const localAdmin = "http://127.0.0.1:9001"

// Where a command finds its node and credentials, first match wins:
//
//	--server, --access-key, --secret-key, --region, --ca-file
//	STRATA_SERVER, STRATA_ROOT_USER, STRATA_ROOT_PASSWORD, STRATA_CA_FILE
//	the CLI config file: $STRATA_CLI_CONFIG, else <user config dir>/strata/cli.json
//	the local node's defaults: http://127.0.0.1:9001, region us-east-1
//
// A value from the environment or the file is never a flag's default, so
// --help cannot print a secret.

// cliConfig is the CLI config file: JSON, these keys only. A file that
// holds a secret must be private to its user (mode 0600).
type cliConfig struct {
	Server    string `json:"server"`
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
	Region    string `json:"region"`
	CAFile    string `json:"ca_file"`
}

// configPath is the CLI config file's path ("" if there is no home).
func configPath() string {
	if p := os.Getenv("STRATA_CLI_CONFIG"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "strata", "cli.json")
}

func loadConfig(path string) (cliConfig, error) {
	var cfg cliConfig
	if path == "" {
		return cfg, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("CLI config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("CLI config %s: %w (keys: server, access_key, secret_key, region, ca_file)", path, err)
	}
	if cfg.SecretKey != "" {
		if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
			return cfg, fmt.Errorf("CLI config %s holds a secret and is readable by others (mode %v): chmod 600 it", path, st.Mode().Perm())
		}
	}
	return cfg, nil
}

// adminClient is the admin API client of a command group: its flags, and
// the client they make once parsed (connect).
type adminClient struct {
	*admin.Client
	opts admin.Options
	pf   *pflag.FlagSet
}

// newAdminClient adds the connection flags to cmd and connects before any
// of its subcommands runs.
func newAdminClient(cmd *cobra.Command) *adminClient {
	c := &adminClient{}
	c.flags(cmd.PersistentFlags())
	cmd.PersistentPreRunE = func(run *cobra.Command, _ []string) error {
		if run.HasSubCommands() {
			return nil // a group only shows its help
		}
		return c.connect()
	}
	return c
}

func (c *adminClient) flags(pf *pflag.FlagSet) {
	c.pf = pf
	pf.StringVar(&c.opts.Server, "server", "", "admin address of a running node (default: $STRATA_SERVER, the CLI config file, else "+localAdmin+")")
	pf.StringVar(&c.opts.AccessKey, "access-key", "", "root (or admin user's) access key (default: $STRATA_ROOT_USER, else the CLI config file)")
	pf.StringVar(&c.opts.SecretKey, "secret-key", "", "its secret key (default: $STRATA_ROOT_PASSWORD, else the CLI config file)")
	pf.StringVar(&c.opts.Region, "region", "", "signing region (default: the CLI config file, else us-east-1)")
	pf.StringVar(&c.opts.CAFile, "ca-file", "", "CA certificate (PEM) to verify an https server (default: $STRATA_CA_FILE, else the CLI config file)")
}

// resolve fills in what the flags left empty from the environment, the
// config file and the defaults.
func (c *adminClient) resolve() error {
	cfg, err := loadConfig(configPath())
	if err != nil {
		return err
	}
	first := func(p *string, values ...string) {
		for _, v := range values {
			if *p != "" {
				return
			}
			*p = v
		}
	}
	first(&c.opts.Server, os.Getenv("STRATA_SERVER"), cfg.Server, localAdmin)
	first(&c.opts.AccessKey, os.Getenv("STRATA_ROOT_USER"), cfg.AccessKey)
	first(&c.opts.SecretKey, os.Getenv("STRATA_ROOT_PASSWORD"), cfg.SecretKey)
	first(&c.opts.Region, cfg.Region, "us-east-1")
	first(&c.opts.CAFile, os.Getenv("STRATA_CA_FILE"), cfg.CAFile)
	return nil
}

func (c *adminClient) connect() error {
	if err := c.resolve(); err != nil {
		return err
	}
	if c.opts.AccessKey == "" || c.opts.SecretKey == "" {
		return fmt.Errorf("%s needs credentials: --access-key/--secret-key, STRATA_ROOT_USER/STRATA_ROOT_PASSWORD, or the CLI config file %s", c.opts.Server, configPath())
	}
	cl, err := admin.New(c.opts)
	if err != nil {
		return err
	}
	c.Client = cl
	return nil
}

// yesFlag adds --yes to a command that takes something away.
func yesFlag(cmd *cobra.Command, p *bool) {
	cmd.Flags().BoolVarP(p, "yes", "y", false, "do it without asking")
}

// confirm asks before a command that takes something away: it names the
// store it acts on and what will happen, and goes on only on "yes". With
// --yes it does not ask; with nobody to ask (stdin not a terminal) it
// refuses.
func (c *adminClient) confirm(cmd *cobra.Command, yes bool, what string) error {
	if yes {
		return nil
	}
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && !isTerminal(f) {
		return usageErrorf("%s on %s: not confirmed (no terminal to ask; give --yes)", what, c.opts.Server)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s on the store at %s. Type yes to go on: ", what, c.opts.Server)
	line, err := bufio.NewReader(io.LimitReader(in, 1024)).ReadString('\n')
	if err != nil && line == "" {
		return fmt.Errorf("%s: not confirmed", what)
	}
	if strings.TrimSpace(line) != "yes" {
		return fmt.Errorf("%s: not confirmed", what)
	}
	return nil
}

// set stores a call's answer in dst, so a call reads as
// `if err := set(&x)(c.Op(ctx)); err != nil`.
func set[T any](dst *T) func(T, error) error {
	return func(v T, err error) error {
		if err == nil {
			*dst = v
		}
		return err
	}
}

// isTerminal reports whether f is a terminal someone can answer on: a
// character device other than /dev/null.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(st, null)
}
