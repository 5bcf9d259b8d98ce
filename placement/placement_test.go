package placement

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/cluster"
	"github.com/strata-storage/strata/devices"
	"github.com/strata-storage/strata/health"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/ring"
)

// single is one node's placement over four pool devices, 2+2.
func single(t *testing.T) (*Controller, *devices.Set, string) {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := OpenLocal(dir, Layout{EC: "2+2", PartPower: 4, Region: "r1", Node: "n1", Pools: 4})
	if err != nil {
		t.Fatal(err)
	}
	meta := metastore.OpenMirrored(filepath.Join(dir, "meta"), log, metastore.DefaultCacheSize)
	devs := devices.New(devices.Config{DataDir: dir, Node: "n1", ChunkVolume: 64 << 20, Meta: meta, Log: log})
	for _, d := range r.Devices {
		if err := devs.Open(d); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	pl := New(Config{Node: "n1", DataDir: dir, Devices: devs, Jobs: metastore.NewPebble(meta, "rebalance/"),
		Self: func() cluster.NodeInfo { return cluster.NodeInfo{Name: "n1"} },
		Go:   func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }, Log: log})
	cfg := objectstore.DefaultConfig()
	cfg.Logger = log
	store, err := objectstore.New(cfg, r, pl.DevicesFor(r), metastore.NewPebble(meta, "m/"))
	if err != nil {
		t.Fatal(err)
	}
	pl.Start(ctx, r, store, nil)
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		store.Close()
		devs.Close()
		meta.Close()
	})
	return pl, devs, dir
}

func healthOf(t *testing.T, pl *Controller) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	c := health.New(time.Second)
	c.AddSource("placement", pl.HealthSource)
	c.Healthz(rec, httptest.NewRequest("GET", "/healthz", nil))
	var out struct{ Status string }
	json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out.Status
}

// call runs one of the controller's admin handlers.
func call(t *testing.T, pl *Controller, op admin.Op, body string, path map[string]string) (*httptest.ResponseRecorder, error) {
	t.Helper()
	r := httptest.NewRequest("POST", "/", strings.NewReader(body))
	for k, v := range path {
		r.SetPathValue(k, v)
	}
	rec := httptest.NewRecorder()
	err := pl.Handlers()[op](rec, &admin.Request{Request: r, Body: []byte(body)})
	return rec, err
}

func TestHealthFollowsTheWriteQuorum(t *testing.T) {
	pl, devs, _ := single(t)
	for _, c := range []struct {
		offline string
		code    int
		status  string
	}{
		{"", http.StatusOK, "ok"},
		{"pool0", http.StatusOK, "degraded"}, // 3 of 4 still hold a 2+2 write quorum
		{"pool1", http.StatusServiceUnavailable, "critical"},
	} {
		if c.offline != "" {
			devs.Unreadable(c.offline, errors.New("test"))
		}
		if code, status := healthOf(t, pl); code != c.code || status != c.status {
			t.Fatalf("with %s offline too: %d %q, want %d %q", c.offline, code, status, c.code, c.status)
		}
	}
}

// A ring edit through the admin operations saves the ring file (the old
// one kept as ring.prev), puts the new ring in force and keeps the one
// before for diffs; a bad request changes nothing.
func TestRingEditsPutANewRingInForce(t *testing.T) {
	pl, _, dir := single(t)
	v := pl.Current().Version
	if _, err := call(t, pl, admin.RingSetWeight, `{"Weight":2}`, map[string]string{"id": "1"}); err != nil {
		t.Fatal(err)
	}
	if pl.Current().Version != v+1 || pl.Previous() == nil || pl.Previous().Version != v {
		t.Fatalf("versions: current %d, previous %v", pl.Current().Version, pl.Previous())
	}
	saved, err := ring.Load(filepath.Join(dir, "ring"))
	if err != nil || saved.Version != v+1 {
		t.Fatalf("ring file: %v %v", saved, err)
	}
	if prev, err := ring.Load(filepath.Join(dir, "ring.prev")); err != nil || prev.Version != v {
		t.Fatalf("ring.prev: %v", err)
	}
	for _, c := range []struct {
		op   admin.Op
		body string
		path map[string]string
		code string
	}{
		{admin.RingSetWeight, `{"Weight":2}`, map[string]string{"id": "x"}, admin.CodeInvalidArgument},
		{admin.RingSetWeight, `{}`, map[string]string{"id": "1"}, admin.CodeInvalidArgument},
		{admin.RingSetState, `{"State":"removing"}`, map[string]string{"id": "1"}, admin.CodeInvalidArgument},
		{admin.RingAddDevice, `{"Node":"elsewhere","Name":"d9","Weight":1}`, nil, admin.CodeInvalidArgument},
		{admin.RingRebuild, ``, map[string]string{"id": "0"}, "DeviceOnline"},
	} {
		if _, err := call(t, pl, c.op, c.body, c.path); !admin.HasCode(err, c.code) {
			t.Errorf("%s %s %v: %v, want %s", c.op, c.body, c.path, err, c.code)
		}
	}
	if pl.Current().Version != v+1 {
		t.Fatal("a refused edit changed the ring")
	}
}
