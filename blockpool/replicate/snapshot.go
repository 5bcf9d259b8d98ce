package replicate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/strata-storage/strata/blockpool"
)

// A replica's snapshots live in snapshots/<name>/ of its directory; the
// chain (snapchain.go) keeps them thin and copy-on-write.

// ErrNoSnapshot: the replica has no snapshot of that name.
var ErrNoSnapshot = errors.New("replicate: no such snapshot")

// ErrSnapshotExists: the name is taken.
var ErrSnapshotExists = errors.New("replicate: snapshot already exists")

// SnapshotInfo describes a replica's snapshot (its info.json).
type SnapshotInfo struct {
	Name    string
	Size    int64
	Created time.Time
	// Seq orders a replica's snapshots, oldest first.
	Seq uint64 `json:",omitempty"`
	// Thin: copy-on-write (held.bits says which blocks the snapshot's own
	// files hold). A snapshot without it is a full copy.
	Thin bool `json:",omitempty"`
}

// Snapshot takes a thin snapshot of the replica's current (flushed)
// contents. It writes three empty files whatever the volume's size.
func (r *Replica) Snapshot(epoch uint64, name string) error {
	if err := r.admit(epoch); err != nil {
		return err
	}
	if r.witness {
		return r.noData("snapshot")
	}
	if !validPeer(name) {
		return fmt.Errorf("replicate: invalid snapshot name %q", name)
	}
	r.volMu.Lock()
	defer r.volMu.Unlock()
	if err := r.vol.Settle(); err != nil {
		return err
	}
	return r.snaps.add(name, r.vol.Size(), SnapshotInfo{Created: time.Now().UTC()})
}

// Snapshots lists the replica's snapshots by name.
func (r *Replica) Snapshots() []SnapshotInfo { return r.snaps.list() }

func readSnapInfo(dir string) (SnapshotInfo, error) {
	b, err := os.ReadFile(filepath.Join(dir, "info.json"))
	if err != nil {
		return SnapshotInfo{}, err
	}
	var info SnapshotInfo
	return info, json.Unmarshal(b, &info)
}

// ReadSnapshot reads p (whole blocks) at off of the snapshot called name,
// verified, while the volume may be written.
func (r *Replica) ReadSnapshot(name string, p []byte, off int64) error {
	info, ok := r.snaps.info(name)
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoSnapshot, name)
	}
	if off%BlockSize != 0 || len(p)%BlockSize != 0 || off < 0 || off+int64(len(p)) > info.Size {
		return fmt.Errorf("%w: snapshot read at %d length %d size %d", blockpool.ErrOutOfRange, off, len(p), info.Size)
	}
	r.volMu.RLock()
	defer r.volMu.RUnlock()
	return r.snaps.read(name, r.vol, p, off)
}

// SnapshotInfo describes the snapshot called name.
func (r *Replica) SnapshotInfo(name string) (SnapshotInfo, error) {
	info, ok := r.snaps.info(name)
	if !ok {
		return SnapshotInfo{}, fmt.Errorf("%w: %s", ErrNoSnapshot, name)
	}
	return info, nil
}

// DeleteSnapshot removes a snapshot (handing what it holds to the next
// older one where that one needs it; I/O goes on meanwhile).
func (r *Replica) DeleteSnapshot(name string) error {
	if !validPeer(name) {
		return fmt.Errorf("%w: %s", ErrNoSnapshot, name)
	}
	return r.snaps.remove(name)
}

// Restore rolls the replica back to a snapshot, in place: the volume takes
// the snapshot's size (growing, or shrinking as an operator allowed), and
// the blocks changed since are written back; the newer snapshots keep
// what they saw.
func (r *Replica) Restore(epoch uint64, name string) error {
	if err := r.admit(epoch); err != nil {
		return err
	}
	info, ok := r.snaps.info(name)
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoSnapshot, name)
	}
	r.volMu.Lock()
	defer r.volMu.Unlock()
	if err := r.resizeLocked(info.Size); err != nil {
		return err
	}
	return r.snaps.rollback(name, r.vol)
}

// Resize grows or shrinks the replica to size bytes (a multiple of 4 KiB):
// data and sums change thin, the bitmaps with them. A shrink first has the
// newest snapshot preserve what it cuts off.
func (r *Replica) Resize(epoch uint64, size int64) error {
	if err := r.admit(epoch); err != nil {
		return err
	}
	if r.witness {
		return r.resizeWitness(size)
	}
	r.volMu.Lock()
	defer r.volMu.Unlock()
	return r.resizeLocked(size)
}

func (r *Replica) resizeLocked(size int64) error {
	cur := r.vol.Size()
	switch {
	case size == cur:
		return nil
	case size <= 0 || size%BlockSize != 0:
		return fmt.Errorf("replicate: resize from %d to %d: sizes go in 4 KiB steps", cur, size)
	case size < cur:
		if err := r.snaps.preserve(r.vol, size, cur-size); err != nil {
			return err
		}
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
		if perr := bm.resize(size); perr != nil && err == nil {
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

// CloneReplica makes a new replica in dir from the snapshot called
// snapshot of src: its blocks are read through src's chain (while src is
// written) and only those that are not zeroes are written, so the clone is
// as thin as the snapshot.
func CloneReplica(dir, node string, lease time.Duration, src *Replica, snapshot string) (*Replica, error) {
	info, err := src.SnapshotInfo(snapshot)
	if err != nil {
		return nil, err
	}
	r, err := CreateReplica(dir, node, info.Size, lease)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Replica, error) {
		r.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("clone of %s: %w", snapshot, err)
	}
	buf := make([]byte, snapChunk*BlockSize)
	for off := int64(0); off < info.Size; off += int64(len(buf)) {
		p := buf[:min(int64(len(buf)), info.Size-off)]
		if err := src.ReadSnapshot(snapshot, p, off); err != nil {
			return fail(err)
		}
		for at := int64(0); at < int64(len(p)); {
			if allZero(p[at : at+BlockSize]) {
				at += BlockSize
				continue
			}
			end := at + BlockSize
			for end < int64(len(p)) && !allZero(p[end:end+BlockSize]) {
				end += BlockSize
			}
			if _, err := r.vol.WriteAt(p[at:end], off+at); err != nil {
				return fail(err)
			}
			at = end
		}
	}
	if err := r.vol.Sync(); err != nil {
		return fail(err)
	}
	return r, nil
}
