package replicate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/strata-storage/strata/atomicfile"
	"github.com/strata-storage/strata/blockpool"
)

// Snapshots of a replica are full, thin copies of its data and sums taken
// while the primary holds all I/O (a point in time); they live in
// snapshots/<name>/ of the replica's directory.

// ErrNoSnapshot: the replica has no snapshot of that name.
var ErrNoSnapshot = errors.New("replicate: no such snapshot")

// ErrSnapshotExists: the name is taken.
var ErrSnapshotExists = errors.New("replicate: snapshot already exists")

// SnapshotInfo describes a replica's snapshot.
type SnapshotInfo struct {
	Name    string
	Size    int64
	Created time.Time
}

func (r *Replica) snapDir(name string) string { return filepath.Join(r.dir, "snapshots", name) }

// Snapshot copies the replica's current contents (flushed) to a snapshot.
func (r *Replica) Snapshot(epoch uint64, name string) error {
	if err := r.admit(epoch); err != nil {
		return err
	}
	if !validPeer(name) {
		return fmt.Errorf("replicate: invalid snapshot name %q", name)
	}
	r.volMu.Lock()
	defer r.volMu.Unlock()
	dir := r.snapDir(name)
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("%w: %s", ErrSnapshotExists, name)
	}
	if err := r.vol.Settle(); err != nil {
		return err
	}
	tmp := dir + ".partial"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	for _, f := range []string{"data.vol", "sums.vol"} {
		if err := blockpool.CopySparse(filepath.Join(tmp, f), filepath.Join(r.dir, f)); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("snapshot %s: %w", name, err)
		}
	}
	b, _ := json.Marshal(SnapshotInfo{Name: name, Size: r.vol.Size(), Created: time.Now().UTC()})
	if err := atomicfile.Write(filepath.Join(tmp, "info.json"), b, 0o600); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	return syncParent(dir)
}

// Snapshots lists the replica's snapshots by name.
func (r *Replica) Snapshots() []SnapshotInfo {
	entries, _ := os.ReadDir(filepath.Join(r.dir, "snapshots"))
	var out []SnapshotInfo
	for _, e := range entries {
		if info, err := readSnapInfo(filepath.Join(r.dir, "snapshots", e.Name())); err == nil {
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func readSnapInfo(dir string) (SnapshotInfo, error) {
	b, err := os.ReadFile(filepath.Join(dir, "info.json"))
	if err != nil {
		return SnapshotInfo{}, err
	}
	var info SnapshotInfo
	return info, json.Unmarshal(b, &info)
}

// SnapshotFiles returns the data and sums files of a snapshot (for a clone).
func (r *Replica) SnapshotFiles(name string) (data, sums string, info SnapshotInfo, err error) {
	dir := r.snapDir(name)
	info, err = readSnapInfo(dir)
	if err != nil {
		return "", "", info, fmt.Errorf("%w: %s", ErrNoSnapshot, name)
	}
	return filepath.Join(dir, "data.vol"), filepath.Join(dir, "sums.vol"), info, nil
}

// DeleteSnapshot removes a snapshot.
func (r *Replica) DeleteSnapshot(name string) error {
	if !validPeer(name) {
		return fmt.Errorf("%w: %s", ErrNoSnapshot, name)
	}
	dir := r.snapDir(name)
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("%w: %s", ErrNoSnapshot, name)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return syncParent(dir)
}

// Restore replaces the replica's contents with a snapshot's (same size).
func (r *Replica) Restore(epoch uint64, name string) error {
	if err := r.admit(epoch); err != nil {
		return err
	}
	data, sums, info, err := r.SnapshotFiles(name)
	if err != nil {
		return err
	}
	r.volMu.Lock()
	defer r.volMu.Unlock()
	if info.Size != r.vol.Size() {
		return fmt.Errorf("replicate: snapshot %s is %d bytes, the volume %d: resize it back first", name, info.Size, r.vol.Size())
	}
	if err := r.vol.Close(); err != nil {
		return err
	}
	errCopy := errors.Join(blockpool.CopySparse(filepath.Join(r.dir, "data.vol"), data), blockpool.CopySparse(filepath.Join(r.dir, "sums.vol"), sums))
	vol, err := r.openVolume()
	if err != nil {
		return errors.Join(errCopy, err)
	}
	r.vol = vol
	return errCopy
}

// Resize grows the replica to size bytes (a multiple of 4 KiB): data and
// sums grow thin, the bitmaps grow with them.
func (r *Replica) Resize(epoch uint64, size int64) error {
	if err := r.admit(epoch); err != nil {
		return err
	}
	r.volMu.Lock()
	defer r.volMu.Unlock()
	cur := r.vol.Size()
	switch {
	case size == cur:
		return nil
	case size < cur || size%BlockSize != 0:
		return fmt.Errorf("replicate: resize from %d to %d: volumes only grow, in 4 KiB steps", cur, size)
	}
	if err := r.vol.Close(); err != nil {
		return err
	}
	err := errors.Join(os.Truncate(filepath.Join(r.dir, "data.vol"), size), os.Truncate(filepath.Join(r.dir, "sums.vol"), blockpool.SumsSize(size)))
	if err == nil {
		r.mu.Lock()
		st := r.st
		st.Size = size
		if err = writeState(r.dir, st); err == nil {
			r.st = st
		}
		r.mu.Unlock()
	}
	r.bmMu.Lock()
	for _, bm := range r.bms {
		grown := make([]uint64, bitmapWords(size))
		copy(grown, bm.bits)
		bm.bits = grown
		if perr := bm.f.Truncate(bitmapHeader + int64(8*len(grown))); perr != nil && err == nil {
			err = perr
		}
	}
	r.bmMu.Unlock()
	vol, oerr := r.openVolume()
	if oerr != nil {
		return errors.Join(err, oerr)
	}
	r.vol = vol
	return err
}
