package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

// UsageError is a command line that cannot run as given: an unknown
// command or flag, a wrong number of arguments, a value that does not
// parse. The program exits 2 for it and 1 for any other failure.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usageErrorf(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// IsUsage reports whether err is a UsageError.
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}

// ExitCode is the process's exit status for err: 0, 2 for a usage error,
// else 1.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case IsUsage(err):
		return 2
	}
	return 1
}

// Prepare makes root and every command under it refuse what they cannot
// run instead of printing help and succeeding: a group (a command with
// subcommands) given an unknown subcommand or stray arguments, flags that
// do not parse and wrong arguments are usage errors.
func Prepare(root *cobra.Command) {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &UsageError{Err: err} })
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.HasSubCommands() {
			if c.Args == nil {
				c.Args = func(c *cobra.Command, args []string) error {
					if len(args) > 0 {
						return fmt.Errorf("unknown command %q for %q; see %s --help", args[0], c.CommandPath(), c.CommandPath())
					}
					return nil
				}
			}
			if c.Run == nil && c.RunE == nil {
				c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
			}
		}
		if args := c.Args; args != nil {
			c.Args = func(c *cobra.Command, a []string) error {
				if err := args(c, a); err != nil {
					return &UsageError{Err: err}
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
