package blockpool

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// volumeSuffix marks volume files inside a pool directory.
const volumeSuffix = ".vol"

// ErrVolumeExists and ErrNoSuchVolume report name clashes and misses.
var (
	ErrVolumeExists = errors.New("blockpool: volume already exists")
	ErrNoSuchVolume = errors.New("blockpool: no such volume")
	ErrBadName      = errors.New("blockpool: invalid volume name")
)

// FilePool is a file-thin pool: a directory holding one sparse file per volume.
type FilePool struct {
	name string
	dir  string
}

// OpenFilePool opens (creating if needed) the pool directory.
func OpenFilePool(name, dir string) (*FilePool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pool %s: %w", name, err)
	}
	return &FilePool{name: name, dir: dir}, nil
}

// Name is the pool's name.
func (p *FilePool) Name() string { return p.name }

// Dir is the directory backing the pool.
func (p *FilePool) Dir() string { return p.dir }

// Capacity reports the total and free bytes of the filesystem under the pool.
func (p *FilePool) Capacity() (total, free uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(p.dir, &st); err != nil {
		return 0, 0, fmt.Errorf("pool %s: statfs: %w", p.name, err)
	}
	return st.Blocks * uint64(st.Bsize), st.Bavail * uint64(st.Bsize), nil
}

func validVolumeName(name string) bool {
	if name == "" || len(name) > 128 || strings.HasPrefix(name, ".") {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func (p *FilePool) path(name string) string { return filepath.Join(p.dir, name+volumeSuffix) }

// Create makes a new thin volume of the given size. Nothing is allocated
// until written.
func (p *FilePool) Create(name string, size int64) (*FileVolume, error) {
	if !validVolumeName(name) {
		return nil, fmt.Errorf("%w: %q", ErrBadName, name)
	}
	if size <= 0 {
		return nil, fmt.Errorf("pool %s: volume %s: size must be positive", p.name, name)
	}
	f, err := os.OpenFile(p.path(name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%w: %s/%s", ErrVolumeExists, p.name, name)
	}
	if err != nil {
		return nil, fmt.Errorf("pool %s: create volume %s: %w", p.name, name, err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		os.Remove(p.path(name))
		return nil, fmt.Errorf("pool %s: size volume %s: %w", p.name, name, err)
	}
	// The new directory entry must survive a crash as well as the file.
	if err := f.Sync(); err == nil {
		err = syncDir(p.dir)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("pool %s: sync volume %s: %w", p.name, name, err)
	}
	return &FileVolume{f: f, size: size}, nil
}

// Open opens an existing volume.
func (p *FilePool) Open(name string) (*FileVolume, error) {
	if !validVolumeName(name) {
		return nil, fmt.Errorf("%w: %q", ErrBadName, name)
	}
	f, err := os.OpenFile(p.path(name), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s/%s", ErrNoSuchVolume, p.name, name)
	}
	if err != nil {
		return nil, fmt.Errorf("pool %s: open volume %s: %w", p.name, name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("pool %s: stat volume %s: %w", p.name, name, err)
	}
	return &FileVolume{f: f, size: st.Size()}, nil
}

// Delete removes a volume and its data.
func (p *FilePool) Delete(name string) error {
	if !validVolumeName(name) {
		return fmt.Errorf("%w: %q", ErrBadName, name)
	}
	err := os.Remove(p.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s/%s", ErrNoSuchVolume, p.name, name)
	}
	if err != nil {
		return fmt.Errorf("pool %s: delete volume %s: %w", p.name, name, err)
	}
	return syncDir(p.dir)
}

// VolumeInfo describes a volume in a pool listing.
type VolumeInfo struct {
	Name      string
	Size      int64 // logical size
	Allocated int64 // bytes actually allocated in the pool
}

// List returns the pool's volumes sorted by name.
func (p *FilePool) List() ([]VolumeInfo, error) {
	entries, err := os.ReadDir(p.dir)
	if err != nil {
		return nil, fmt.Errorf("pool %s: list: %w", p.name, err)
	}
	var out []VolumeInfo
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), volumeSuffix)
		if !ok || e.IsDir() {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(p.dir, e.Name()), &st); err != nil {
			continue // removed while listing
		}
		out = append(out, VolumeInfo{Name: name, Size: st.Size, Allocated: st.Blocks * 512})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// FileVolume is a volume stored as a sparse file.
type FileVolume struct {
	f    *os.File
	size int64
}

func (v *FileVolume) ReadAt(p []byte, off int64) (int, error) {
	if err := checkRange(off, int64(len(p)), v.size); err != nil {
		return 0, err
	}
	return v.f.ReadAt(p, off)
}

func (v *FileVolume) WriteAt(p []byte, off int64) (int, error) {
	if err := checkRange(off, int64(len(p)), v.size); err != nil {
		return 0, err
	}
	n, err := v.f.WriteAt(p, off)
	if err == nil && n >= writebackFrom {
		// Start writing a large write's pages out now, without waiting:
		// the Sync that makes it durable then finds them on their way
		// instead of flushing every writer's pages at once, and a sync
		// shared by many writers stays short. An error here only loses
		// the head start: Sync reports the real ones.
		unix.SyncFileRange(int(v.f.Fd()), off, int64(n), unix.SYNC_FILE_RANGE_WRITE)
	}
	return n, err
}

// writebackFrom is the least write whose pages are sent to the disk at
// once (shard blocks are up to 512 KiB; volume blocks are 4 KiB and wait
// for their flush).
const writebackFrom = 64 << 10

// Sync flushes data (not the inode's timestamps) to stable storage.
func (v *FileVolume) Sync() error { return unix.Fdatasync(int(v.f.Fd())) }

// Trim punches a hole, giving the space back to the pool.
func (v *FileVolume) Trim(off, length int64) error {
	if err := checkRange(off, length, v.size); err != nil {
		return err
	}
	if length == 0 {
		return nil
	}
	err := unix.Fallocate(int(v.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
	if err != nil {
		return fmt.Errorf("trim %d+%d: %w", off, length, err)
	}
	return nil
}

func (v *FileVolume) Size() int64  { return v.size }
func (v *FileVolume) Close() error { return v.f.Close() }
