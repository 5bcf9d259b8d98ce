package replicate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/strata-storage/strata/blockpool"
)

// chainModel is what a replica and its snapshots must read as: plain
// byte images, changed by the same operations.
type chainModel struct {
	live  []byte
	snaps map[string][]byte
}

func (m *chainModel) resize(size int64) {
	grown := make([]byte, size)
	copy(grown, m.live)
	m.live = grown
}

// promoted opens a replica as its primary would: promoted at a new epoch.
func promoted(t *testing.T, r *Replica, epoch uint64) {
	t.Helper()
	if _, err := r.Promote(epoch, "p", Mode{}); err != nil {
		t.Fatal(err)
	}
}

// newPromoted is a new replica of size bytes, promoted at epoch 1 and
// closed when the test ends.
func newPromoted(t *testing.T, size int64) *Replica {
	t.Helper()
	r, err := CreateReplica(filepath.Join(t.TempDir(), "vol"), "n1", size, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	promoted(t, r, 1)
	return r
}

// checkAgainst compares the live volume and every snapshot with the model.
func checkAgainst(t *testing.T, step string, r *Replica, epoch uint64, m *chainModel) {
	t.Helper()
	if r.Size() != int64(len(m.live)) {
		t.Fatalf("%s: size %d, want %d", step, r.Size(), len(m.live))
	}
	got := make([]byte, len(m.live))
	if err := r.Read(epoch, 0, got); err != nil {
		t.Fatalf("%s: read: %v", step, err)
	}
	if !bytes.Equal(got, m.live) {
		t.Fatalf("%s: the live volume differs from the model", step)
	}
	var names []string
	for _, info := range r.Snapshots() {
		names = append(names, info.Name)
		want, ok := m.snaps[info.Name]
		if !ok {
			t.Fatalf("%s: snapshot %s should not exist", step, info.Name)
		}
		if info.Size != int64(len(want)) {
			t.Fatalf("%s: snapshot %s is %d bytes, want %d", step, info.Name, info.Size, len(want))
		}
		img := make([]byte, info.Size)
		if err := r.ReadSnapshot(info.Name, img, 0); err != nil {
			t.Fatalf("%s: read snapshot %s: %v", step, info.Name, err)
		}
		for b := 0; b < len(img); b += BlockSize {
			if !bytes.Equal(img[b:b+BlockSize], want[b:b+BlockSize]) {
				t.Fatalf("%s: snapshot %s differs at block %d", step, info.Name, b/BlockSize)
			}
		}
	}
	if len(names) != len(m.snaps) {
		t.Fatalf("%s: snapshots %v, the model has %d", step, names, len(m.snaps))
	}
}

// Random writes, trims, resizes, snapshots, deletions, restores and
// reopenings: every snapshot keeps reading as the volume did when it was
// taken, and the volume as the model says.
func TestCopyOnWriteSnapshotsFollowAModel(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 99))
			dir := filepath.Join(t.TempDir(), "vol")
			const startBlocks = 48
			r, err := CreateReplica(dir, "n1", startBlocks*BlockSize, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { r.Close() }()
			epoch := uint64(1)
			promoted(t, r, epoch)
			m := &chainModel{live: make([]byte, startBlocks*BlockSize), snaps: map[string][]byte{}}
			next := 0
			for step := 0; step < 300; step++ {
				size := int64(len(m.live))
				var what string
				switch op := rng.IntN(20); {
				case op < 9: // write, sometimes unaligned
					off := rng.Int64N(size)
					n := min(1+rng.Int64N(5*BlockSize), size-off)
					if rng.IntN(2) == 0 {
						off = off / BlockSize * BlockSize
						n = min((1+rng.Int64N(5))*BlockSize, size-off)
					}
					p := bytes.Repeat([]byte{byte(1 + rng.IntN(255))}, int(n))
					if err := r.Write(epoch, off, p, nil); err != nil {
						t.Fatal(err)
					}
					copy(m.live[off:], p)
					what = fmt.Sprintf("write %d+%d", off, n)
				case op < 11: // trim whole blocks
					b := rng.Int64N(size / BlockSize)
					n := min(1+rng.Int64N(8), size/BlockSize-b) * BlockSize
					if err := r.Trim(epoch, b*BlockSize, n, nil); err != nil {
						t.Fatal(err)
					}
					clear(m.live[b*BlockSize : b*BlockSize+n])
					what = fmt.Sprintf("trim block %d+%d", b, n/BlockSize)
				case op < 14:
					if len(m.snaps) >= 5 {
						continue
					}
					name := fmt.Sprint("s", next)
					next++
					if err := r.Snapshot(epoch, name); err != nil {
						t.Fatal(err)
					}
					m.snaps[name] = append([]byte(nil), m.live...)
					what = "snapshot " + name
				case op < 16:
					name := anySnap(rng, m)
					if name == "" {
						continue
					}
					if err := r.DeleteSnapshot(name); err != nil {
						t.Fatal(err)
					}
					delete(m.snaps, name)
					what = "delete " + name
				case op < 17:
					name := anySnap(rng, m)
					if name == "" {
						continue
					}
					if err := r.Restore(epoch, name); err != nil {
						t.Fatal(err)
					}
					m.live = append([]byte(nil), m.snaps[name]...)
					what = "restore " + name
				case op < 19:
					blocks := 16 + rng.Int64N(64)
					if err := r.Resize(epoch, blocks*BlockSize); err != nil {
						t.Fatal(err)
					}
					m.resize(blocks * BlockSize)
					what = fmt.Sprint("resize to ", blocks, " blocks")
				default:
					if err := r.Close(); err != nil {
						t.Fatal(err)
					}
					if r, err = OpenReplica(dir, "n1", time.Minute); err != nil {
						t.Fatal(err)
					}
					epoch++
					promoted(t, r, epoch)
					what = "reopen"
				}
				checkAgainst(t, fmt.Sprintf("step %d (%s)", step, what), r, epoch, m)
			}
			// A clone of each remaining snapshot is that snapshot.
			for name, want := range m.snaps {
				c, err := CloneReplica(filepath.Join(t.TempDir(), "clone"), "n1", time.Minute, r, name)
				if err != nil {
					t.Fatal(err)
				}
				promoted(t, c, 1)
				got := make([]byte, len(want))
				if err := c.Read(1, 0, got); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("clone of %s: %v, equal %v", name, err, bytes.Equal(got, want))
				}
				c.Close()
			}
		})
	}
}

func anySnap(rng *rand.Rand, m *chainModel) string {
	var names []string
	for n := range m.snaps {
		names = append(names, n)
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return names[rng.IntN(len(names))]
}

// Taking a snapshot writes nothing of the volume's data: its store stays
// empty until a block is overwritten, and then holds just that block.
func TestSnapshotIsThinUntilWritten(t *testing.T) {
	const size = 256 << 20
	r := newPromoted(t, size)
	full := bytes.Repeat([]byte{0x5a}, 8<<20)
	for off := int64(0); off < 64<<20; off += int64(len(full)) {
		if err := r.Write(1, off, full, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Snapshot(1, "s"); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(r.dir, "snapshots", "s", "data.vol")
	if a := allocated(t, store); a != 0 {
		t.Fatalf("a new snapshot of 64 MiB of data allocates %d bytes", a)
	}
	if err := r.Write(1, 4096, []byte{1}, nil); err != nil {
		t.Fatal(err)
	}
	if a := allocated(t, store); a != BlockSize {
		t.Fatalf("after one small write the snapshot allocates %d bytes, want one block", a)
	}
	got := make([]byte, BlockSize)
	if err := r.ReadSnapshot("s", got, 4096); err != nil || !bytes.Equal(got, full[:BlockSize]) {
		t.Fatalf("snapshot block: %v", err)
	}
	// An overwrite of a never-written block preserves its zeroes without
	// storing them.
	if err := r.Write(1, 128<<20, full[:BlockSize], nil); err != nil {
		t.Fatal(err)
	}
	if a := allocated(t, store); a != BlockSize {
		t.Fatalf("preserving a hole allocated %d bytes", a)
	}
}

func allocated(t *testing.T, path string) int64 {
	t.Helper()
	pool, err := blockpool.OpenFilePool("x", filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	list, err := pool.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range list {
		if v.Name+".vol" == filepath.Base(path) {
			return v.Allocated
		}
	}
	t.Fatalf("%s not found", path)
	return 0
}

// A snapshot written before snapshots were thin (a full copy, no held
// blocks) still reads and restores, and what a crash left half built or
// half deleted is cleaned away on open.
func TestFullCopySnapshotsAndLeftoversOnOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	r, err := CreateReplica(dir, "n1", 1<<20, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	promoted(t, r, 1)
	old := bytes.Repeat([]byte{7}, 1<<20)
	if err := r.Write(1, 0, old, nil); err != nil {
		t.Fatal(err)
	}
	r.Close()
	full := filepath.Join(dir, "snapshots", "old")
	if err := os.MkdirAll(full, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"data.vol", "sums.vol"} {
		if err := blockpool.CopySparse(filepath.Join(full, f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := json.Marshal(map[string]any{"Name": "old", "Size": 1 << 20, "Created": time.Now()})
	os.WriteFile(filepath.Join(full, "info.json"), b, 0o600)
	for _, leftover := range []string{"new.partial", "gone.deleted"} {
		os.MkdirAll(filepath.Join(dir, "snapshots", leftover), 0o700)
	}
	if r, err = OpenReplica(dir, "n1", time.Minute); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	promoted(t, r, 2)
	for _, leftover := range []string{"new.partial", "gone.deleted"} {
		if _, err := os.Stat(filepath.Join(dir, "snapshots", leftover)); !os.IsNotExist(err) {
			t.Errorf("%s left after open: %v", leftover, err)
		}
	}
	if err := r.Snapshot(2, "thin"); err != nil {
		t.Fatal(err)
	}
	if err := r.Write(2, 0, bytes.Repeat([]byte{9}, 1<<20), nil); err != nil {
		t.Fatal(err)
	}
	m := &chainModel{live: bytes.Repeat([]byte{9}, 1<<20), snaps: map[string][]byte{"old": old, "thin": old}}
	checkAgainst(t, "old and thin", r, 2, m)
	if err := r.DeleteSnapshot("thin"); err != nil {
		t.Fatal(err)
	}
	delete(m.snaps, "thin")
	if err := r.Restore(2, "old"); err != nil {
		t.Fatal(err)
	}
	m.live = old
	checkAgainst(t, "restored from the full copy", r, 2, m)
}

// While writers overwrite the volume, a snapshot read and a deletion of a
// newer snapshot never show a block the snapshot did not hold.
func TestSnapshotReadsAndDeletesDuringWrites(t *testing.T) {
	const size = 8 << 20
	r := newPromoted(t, size)
	a := bytes.Repeat([]byte{0xaa}, size)
	if err := r.Write(1, 0, a, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Snapshot(1, "s1"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	errs := make(chan error, 4)
	for w := range 3 {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			p := bytes.Repeat([]byte{byte(0xb0 + w)}, 2*BlockSize)
			for i := 0; i < 400; i++ {
				if err := r.Write(1, rng.Int64N(size/BlockSize-1)*BlockSize, p, nil); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	go func() {
		defer close(done)
		img := make([]byte, size)
		for i := 0; i < 6; i++ {
			if i == 2 {
				if err := r.Snapshot(1, "s2"); err != nil {
					errs <- err
					return
				}
			}
			if i == 4 {
				if err := r.DeleteSnapshot("s2"); err != nil {
					errs <- err
					return
				}
			}
			if err := r.ReadSnapshot("s1", img, 0); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(img, a) {
				errs <- fmt.Errorf("read %d of s1 during writes differs", i)
				return
			}
		}
	}()
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	<-done
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}
