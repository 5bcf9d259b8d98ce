package cli

import (
	"encoding/json"
	"errors"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strata-storage/strata/admin"
)

// adminClient is the admin API client of a command group: its flags, and
// the client they make once parsed (connect).
type adminClient struct {
	*admin.Client
	opts admin.Options
}

// newAdminClient adds the connection flags to cmd (defaultServer: the
// local node's admin address, or "" to require --server) and connects
// before any of its subcommands runs.
func newAdminClient(cmd *cobra.Command, defaultServer string) *adminClient {
	c := &adminClient{}
	c.flags(cmd.PersistentFlags(), defaultServer)
	cmd.PersistentPreRunE = func(*cobra.Command, []string) error { return c.connect() }
	return c
}

func (c *adminClient) flags(pf *pflag.FlagSet, defaultServer string) {
	pf.StringVar(&c.opts.Server, "server", defaultServer, "admin address of a running node, e.g. http://127.0.0.1:9001")
	pf.StringVar(&c.opts.AccessKey, "access-key", os.Getenv("STRATA_ROOT_USER"), "root access key for --server")
	pf.StringVar(&c.opts.SecretKey, "secret-key", os.Getenv("STRATA_ROOT_PASSWORD"), "root secret key for --server")
	pf.StringVar(&c.opts.Region, "region", "us-east-1", "signing region for --server")
	pf.StringVar(&c.opts.CAFile, "ca-file", "", "CA certificate (PEM) to verify an https --server")
}

func (c *adminClient) connect() error {
	if c.opts.Server == "" {
		return errors.New("give --server: the admin address of a running node, e.g. http://127.0.0.1:9001")
	}
	if c.opts.AccessKey == "" || c.opts.SecretKey == "" {
		return errors.New("--server needs the root credentials: --access-key/--secret-key or STRATA_ROOT_USER/STRATA_ROOT_PASSWORD")
	}
	cl, err := admin.New(c.opts)
	if err != nil {
		return err
	}
	c.Client = cl
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

// emit writes v as JSON with -o json, else as the table print writes.
func emit(cmd *cobra.Command, output string, v any, print func(io.Writer)) error {
	if output == "json" {
		return json.NewEncoder(cmd.OutOrStdout()).Encode(v)
	}
	print(cmd.OutOrStdout())
	return nil
}
