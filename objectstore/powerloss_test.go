package objectstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/strata-storage/strata/blockpool"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore/devfault"
	"github.com/strata-storage/strata/objectstore/shard"
	"github.com/strata-storage/strata/ring"
)

// TestPowerLoss cuts the power (only fsync'd bytes survive, in pebble and
// on the chunk volumes) at random moments while writers are busy, and
// proves on the recovered store that every acknowledged write is intact
// and that every listed object reads back as one that was written.
func TestPowerLoss(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for round := 0; round < 4; round++ {
		// As on a node: the bucket metadata in one database, each device's
		// records in a database of its own, each on a filesystem that
		// loses what was not synced.
		fs := vfs.NewCrashableMem()
		db, err := pebble.Open("db", &pebble.Options{FS: fs, Logger: quietLog{}})
		if err != nil {
			t.Fatal(err)
		}
		var rdevs []ring.Device
		vols := make([]*blockpool.MemVolume, 4)
		devFS := make([]*vfs.MemFS, 4)
		devDB := make([]*pebble.DB, 4)
		devs := make([]Device, 4)
		inj := devfault.New() // its Quiesce stops commits and frees for the crash images
		for i := range vols {
			rdevs = append(rdevs, ring.Device{ID: uint32(i), Zone: "z", Node: "n", Name: fmt.Sprint(i), Weight: 1})
			vols[i] = blockpool.NewMemVolume(48 << 20)
			devFS[i] = vfs.NewCrashableMem()
			if devDB[i], err = pebble.Open("db", &pebble.Options{FS: devFS[i], Logger: quietLog{}}); err != nil {
				t.Fatal(err)
			}
			st, err := shard.Open(uint32(i), fmt.Sprint("d", i), vols[i], devDB[i], nil, log)
			if err != nil {
				t.Fatal(err)
			}
			devs[i] = inj.Wrap(st)
		}
		r, _ := ring.Build(rdevs, 4, 2, 2)
		cfg := DefaultConfig()
		cfg.BlockSize, cfg.InlineLimit, cfg.Logger = 64<<10, 1000, log
		s, err := New(cfg, r, devs, metastore.NewPebble(db, "meta/"))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		s.CreateBucket(ctx, "bucket")

		var mu sync.Mutex
		acked := map[string][32]byte{}
		attempted := map[string][32]byte{}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rnd := rand.New(rand.NewPCG(uint64(round), uint64(w)))
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					key := fmt.Sprintf("w%d-%04d", w, i)
					data := randBytes([]int{10, 900, 70000, 200000}[rnd.IntN(4)])
					sum := sha256.Sum256(data)
					mu.Lock()
					attempted[key] = sum
					mu.Unlock()
					if _, err := s.PutObject(ctx, "bucket", key, bytes.NewReader(data), int64(len(data)), PutOptions{}); err == nil {
						mu.Lock()
						acked[key] = sum
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(time.Duration(20+rand.IntN(80)) * time.Millisecond)
		// The power cut: no commit or free runs while the images are taken.
		resume := inj.Quiesce()
		mu.Lock()
		mustSurvive := map[string][32]byte{}
		for k, v := range acked {
			mustSurvive[k] = v
		}
		mu.Unlock()
		crashFS := fs.CrashClone(vfs.CrashCloneCfg{})
		images := make([]*blockpool.MemVolume, 4)
		devImages := make([]*vfs.MemFS, 4)
		for i, v := range vols {
			images[i] = v.CrashClone()
			devImages[i] = devFS[i].CrashClone(vfs.CrashCloneCfg{})
		}
		resume()
		close(stop)
		wg.Wait()
		s.Close()
		db.Close()
		for _, d := range devDB {
			d.Close()
		}

		// Recover from the images alone.
		db2, err := pebble.Open("db", &pebble.Options{FS: crashFS, Logger: quietLog{}})
		if err != nil {
			t.Fatal(err)
		}
		devs2 := make([]Device, 4)
		devDB2 := make([]*pebble.DB, 4)
		for i := range images {
			if devDB2[i], err = pebble.Open("db", &pebble.Options{FS: devImages[i], Logger: quietLog{}}); err != nil {
				t.Fatalf("round %d: reopen device %d's database: %v", round, i, err)
			}
			st, err := shard.Open(uint32(i), fmt.Sprint("d", i), images[i], devDB2[i], nil, log)
			if err != nil {
				t.Fatalf("round %d: reopen device %d: %v", round, i, err)
			}
			devs2[i] = st
		}
		s2, err := New(cfg, r, devs2, metastore.NewPebble(db2, "meta/"))
		if err != nil {
			t.Fatal(err)
		}
		if len(mustSurvive) == 0 {
			t.Fatalf("round %d: nothing acknowledged before the cut", round)
		}
		for k, sum := range mustSurvive {
			got, err := readAll(t, s2, k, 0, -1)
			if err != nil || sha256.Sum256(got) != sum {
				t.Fatalf("round %d: acknowledged %s lost or damaged by the power cut: %v", round, k, err)
			}
		}
		res, err := s2.ListObjects(ctx, "bucket", ListOptions{MaxKeys: 100000})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range res.Objects {
			got, err := readAll(t, s2, o.Key, 0, -1)
			if err != nil || sha256.Sum256(got) != attempted[o.Key] {
				t.Fatalf("round %d: listed %s is unreadable or torn after the cut: %v", round, o.Key, err)
			}
		}
		t.Logf("round %d: %d writes acknowledged before the cut all survived; %d objects listed after recovery, all intact", round, len(mustSurvive), len(res.Objects))
		// New writes work on the recovered store and do not clobber old data.
		if _, err := s2.PutObject(ctx, "bucket", "after", bytes.NewReader(randBytes(300000)), 300000, PutOptions{}); err != nil {
			t.Fatal(err)
		}
		for k, sum := range mustSurvive {
			if got, _ := readAll(t, s2, k, 0, -1); sha256.Sum256(got) != sum {
				t.Fatalf("round %d: %s damaged by a write after recovery", round, k)
			}
		}
		s2.Close()
		db2.Close()
		for _, d := range devDB2 {
			d.Close()
		}
	}
}
