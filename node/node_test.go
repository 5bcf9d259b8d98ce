package node

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-storage/strata/users"
)

func testConfig(dir string) Config {
	cfg := DefaultConfig()
	cfg.DataDir, cfg.S3Addr, cfg.AdminAddr, cfg.NBDAddr = dir, "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.ChunkVolume = 1 << 30
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return cfg
}

func TestRefusesLayoutsTheDevicesCannotHold(t *testing.T) {
	for _, c := range []struct {
		ec    string
		pools int
		want  string
	}{
		{"3+2", 4, "needs 5 active devices with weight > 0, have 4"},
		{"4+4", 4, "needs 8 active devices with weight > 0, have 4"},
		{"2", 4, "invalid erasure coding layout"},
		{"0+2", 4, "invalid erasure coding layout"},
		{"2+x", 4, "invalid erasure coding layout"},
	} {
		cfg := testConfig(t.TempDir())
		cfg.EC, cfg.Pools = c.ec, c.pools
		n, err := Start(cfg)
		if err == nil {
			n.Close(context.Background())
			t.Fatalf("EC %s on %d pools was accepted", c.ec, c.pools)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("EC %s: %v, want %q", c.ec, err, c.want)
		}
	}
	// A failed first start leaves no credentials nobody was shown.
	failed := testConfig(t.TempDir())
	failed.EC = "3+2"
	Start(failed)
	if _, err := os.Stat(filepath.Join(failed.DataDir, users.CredentialsFile)); err == nil {
		t.Fatal("a failed first start stored generated credentials")
	}
	// A layout that fits with more pools.
	cfg := testConfig(t.TempDir())
	cfg.EC, cfg.Pools = "3+2", 5
	n, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n.Ring.K != 3 || n.Ring.M != 2 || len(n.Ring.Devices) != 5 {
		t.Fatalf("ring %d+%d on %d", n.Ring.K, n.Ring.M, len(n.Ring.Devices))
	}
	n.Close(context.Background())
	// The data dir keeps its layout; asking for another one is refused.
	cfg.EC = "2+2"
	if _, err := Start(cfg); err == nil || !strings.Contains(err.Error(), "cannot be changed") {
		t.Fatalf("layout change on restart: %v", err)
	}
}
