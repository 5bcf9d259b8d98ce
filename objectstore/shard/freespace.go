package shard

import "sort"

// freeSpace is the set of reusable byte ranges of a chunk volume below the
// append head: sorted, non-overlapping and coalesced. It lives in memory
// only; Open's caller rebuilds it from the records (RebuildFreeSpace), so
// no crash can leave a range both free and referenced.
type freeSpace struct {
	exts  []extent
	bytes int64
}

type extent struct{ off, len int64 }

func (e extent) end() int64 { return e.off + e.len }

// add returns [off, off+n) to the set. It refuses (returns false) a range
// that overlaps one already free: a double free must never hand the same
// bytes to two writers.
func (f *freeSpace) add(off, n int64) bool {
	if n <= 0 {
		return true
	}
	i := sort.Search(len(f.exts), func(i int) bool { return f.exts[i].end() > off })
	if i < len(f.exts) && f.exts[i].off < off+n {
		return false
	}
	e := extent{off, n}
	// Merge with the neighbours it touches.
	if i > 0 && f.exts[i-1].end() == off {
		i--
		e = extent{f.exts[i].off, f.exts[i].len + n}
		f.exts = append(f.exts[:i], f.exts[i+1:]...)
	}
	if i < len(f.exts) && f.exts[i].off == e.end() {
		e.len += f.exts[i].len
		f.exts = append(f.exts[:i], f.exts[i+1:]...)
	}
	f.exts = append(f.exts, extent{})
	copy(f.exts[i+1:], f.exts[i:])
	f.exts[i] = e
	f.bytes += n
	return true
}

// take removes n bytes from the first extent large enough (first fit, so
// low offsets are reused first and the head grows as little as possible).
func (f *freeSpace) take(n int64) (int64, bool) {
	for i, e := range f.exts {
		if e.len < n {
			continue
		}
		if e.len == n {
			f.exts = append(f.exts[:i], f.exts[i+1:]...)
		} else {
			f.exts[i] = extent{e.off + n, e.len - n}
		}
		f.bytes -= n
		return e.off, true
	}
	return 0, false
}
