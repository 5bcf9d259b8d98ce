package devices

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/ring"
)

func newSet(t *testing.T) (*Set, string) {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	meta := metastore.OpenMirrored(filepath.Join(dir, "meta"), log, metastore.DefaultCacheSize)
	s := New(Config{DataDir: dir, Node: "n1", ChunkVolume: 64 << 20, Meta: meta, Registry: prometheus.NewRegistry(), Log: log})
	t.Cleanup(func() {
		meta.Close()
		s.Close()
	})
	return s, dir
}

func TestOpenPublishesTheDevice(t *testing.T) {
	s, _ := newSet(t)
	if len(s.Snapshot()) != 0 || s.LocalDevice(0) != nil {
		t.Fatal("a new set has devices")
	}
	for i, name := range []string{"d0", "d1"} {
		if err := s.Open(ring.Device{ID: uint32(i), Node: "n1", Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	if ids := s.LocalDeviceIDs(); len(ids) != 2 || ids[0] != 0 || ids[1] != 1 {
		t.Fatalf("ids %v", ids)
	}
	d, ok := s.Get(1)
	if !ok || d.Store == nil || d.Name != "d1" || d.Fault != "" || d.Pool == nil {
		t.Fatalf("device 1: %+v", d)
	}
	r := &ring.Ring{Devices: []ring.Device{{ID: 0, Node: "n1", Name: "d0"}, {ID: 7, Node: "n2", Name: "x"}, {ID: 1, Node: "n1", Name: "d1"}}}
	devs := s.ForRing(r, func(ring.Device) objectstore.Device { return nil })
	if devs[0] == nil || devs[1] != nil || devs[2] == nil {
		t.Fatalf("ForRing: %v", devs)
	}
}

// A reader never waits for a change in progress (which, in a cluster, may
// be waiting on etcd under the caller's lock).
func TestLookupsDoNotWaitForAChange(t *testing.T) {
	s, _ := newSet(t)
	if err := s.Open(ring.Device{ID: 3, Node: "n1", Name: "d3"}); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	done := make(chan bool)
	go func() { done <- s.LocalDevice(3) != nil && len(s.LocalDeviceIDs()) == 1 }()
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("the open device is not visible")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a lookup waited for the change lock")
	}
}

// A device whose database is damaged opens offline, says why, and a
// rebuild brings it back empty with a new generation and the damaged
// database kept aside.
func TestDamagedDeviceIsOfflineUntilRebuilt(t *testing.T) {
	s, dir := newSet(t)
	d := ring.Device{ID: 0, Node: "n1", Name: "d0"}
	if err := s.Open(d); err != nil {
		t.Fatal(err)
	}
	gen := s.LocalDevice(0).Generation()
	s.Close()
	// Damage the database: its manifest is garbage.
	metaDir := filepath.Join(dir, "pools", "d0", "meta")
	ents, err := os.ReadDir(metaDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if len(e.Name()) > 8 && e.Name()[:8] == "MANIFEST" {
			os.WriteFile(filepath.Join(metaDir, e.Name()), []byte("not a manifest"), 0o644)
		}
	}
	if err := s.Open(d); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(0)
	if got.Store != nil || got.Fault == "" {
		t.Fatalf("a damaged device is online: %+v", got)
	}
	if _, err := s.Rebuild(ring.Device{ID: 0, Node: "n2", Name: "d0"}); !admin.HasCode(err, admin.CodeNotLocalDevice) {
		t.Fatalf("rebuild of another node's device: %v", err)
	}
	ans, err := s.Rebuild(d)
	if err != nil {
		t.Fatal(err)
	}
	if s.LocalDevice(0) == nil || ans.Generation == gen || ans.Kept == "" {
		t.Fatalf("after rebuild: %+v (generation was %d)", ans, gen)
	}
	if _, err := s.Rebuild(d); !admin.HasCode(err, "DeviceOnline") {
		t.Fatalf("rebuild of an online device: %v", err)
	}
}

// Before the node opens its devices (a cluster joins first) the RPC and
// the heartbeat already ask: a nil set is empty.
func TestANilSetIsEmpty(t *testing.T) {
	var s *Set
	if s.LocalDevice(1) != nil || len(s.LocalDeviceIDs()) != 0 || len(s.Snapshot()) != 0 {
		t.Fatal("a nil set has devices")
	}
}
