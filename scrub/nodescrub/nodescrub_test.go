package nodescrub

import (
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/devices"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/ring"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func localDevices(t *testing.T, names ...string) *devices.Set {
	t.Helper()
	dir := t.TempDir()
	meta := metastore.OpenMirrored(filepath.Join(dir, "meta"), quiet, metastore.DefaultCacheSize)
	s := devices.New(devices.Config{DataDir: dir, Node: "n1", ChunkVolume: 64 << 20, Meta: meta, Log: quiet})
	for i, name := range names {
		if err := s.Open(ring.Device{ID: uint32(i), Node: "n1", Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		s.Close()
		meta.Close()
	})
	return s
}

// A node scrubs each of its online devices, and placement only where it
// is the checker; an offline device is left out.
func TestTargets(t *testing.T) {
	devs := localDevices(t, "d0", "d1", "d2")
	devs.Unreadable("d1", errors.New("test"))
	for _, checker := range []bool{true, false} {
		sc := New(Config{Node: "n1", Rate: 1 << 20, Devices: devs, Checker: func() bool { return checker }, Busy: func() bool { return false }, Registry: prometheus.NewRegistry(), Log: quiet})
		var names []string
		for _, tg := range sc.targets() {
			names = append(names, tg.Name())
		}
		sort.Strings(names)
		want := []string{"device/d0", "device/d2"}
		if checker {
			want = append(want, "placement")
		}
		if len(names) != len(want) {
			t.Fatalf("checker %v: targets %v, want %v", checker, names, want)
		}
		for i := range want {
			if names[i] != want[i] {
				t.Fatalf("checker %v: targets %v, want %v", checker, names, want)
			}
		}
	}
}

// With scrubbing off every scrub operation answers ScrubDisabled, and an
// unknown action is not an operation.
func TestHandlersWhenOff(t *testing.T) {
	sc := New(Config{Rate: -1, Log: quiet})
	for op, h := range sc.Handlers() {
		r := httptest.NewRequest("POST", "/", nil)
		r.SetPathValue("action", "now")
		r.SetPathValue("name", "v")
		if err := h(httptest.NewRecorder(), &admin.Request{Request: r}); !admin.HasCode(err, "ScrubDisabled") {
			t.Errorf("%s with scrubbing off: %v", op, err)
		}
	}
	on := New(Config{Rate: 1 << 20, Checker: func() bool { return false }, Busy: func() bool { return false }, Registry: prometheus.NewRegistry(), Log: quiet})
	r := httptest.NewRequest("POST", "/", nil)
	r.SetPathValue("action", "explode")
	if err := on.Handlers()[admin.ScrubControl](httptest.NewRecorder(), &admin.Request{Request: r}); !admin.HasCode(err, admin.CodeNoSuchOperation) {
		t.Fatalf("an unknown scrub action: %v", err)
	}
}
