package bench

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/reedsolomon"
	"github.com/zeebo/xxh3"
	"golang.org/x/sys/unix"
)

// Limits are what this machine allows, measured in the same run as the
// workloads: the data dir's disk, the per-byte work of a PUT and a GET on
// one core, and HTTP round trips against a server that does nothing.
type Limits struct {
	Cores         int     `json:"cores"`
	FdatasyncsSec float64 `json:"fdatasyncs_per_second"`             // 4 KiB write + fdatasync, one file
	SeqWriteBps   float64 `json:"sequential_write_bytes_per_second"` // one file per device at once, best of 3
	MD5Bps        float64 `json:"md5_bytes_per_second_per_core"`
	SHA256Bps     float64 `json:"sha256_bytes_per_second_per_core"`
	CRC32CBps     float64 `json:"crc32c_bytes_per_second_per_core"` // block volumes' sums
	XXH3Bps       float64 `json:"xxh3_bytes_per_second_per_core"`   // shard blocks' sums
	RSEncodeBps   float64 `json:"rs_encode_bytes_per_second_per_core"`
	// HTTP rates are from a do-nothing server in this process at 8
	// clients signing as the workloads do: the round-trip ceiling here.
	HTTP4KiBGetSec float64 `json:"http_4kib_gets_per_second"`
	HTTP1MiBGetBps float64 `json:"http_1mib_get_bytes_per_second"`
	HTTP1MiBPutBps float64 `json:"http_1mib_put_bytes_per_second"`
}

func measureLimits(ctx context.Context, dir string, k, m, files int, d time.Duration) (Limits, error) {
	l := Limits{Cores: runtime.NumCPU()}
	t := min(max(d/5, 500*time.Millisecond), 2*time.Second)
	var err error
	if l.FdatasyncsSec, l.SeqWriteBps, err = measureDisk(dir, t, files); err != nil {
		return l, err
	}
	if err := l.measureCPU(k, m, t); err != nil {
		return l, err
	}
	small, large := make([]byte, 4<<10), randomBytes(1<<20)
	if l.HTTP4KiBGetSec, err = measureHTTP(ctx, t, http.MethodGet, small); err != nil {
		return l, err
	}
	if l.HTTP1MiBGetBps, err = measureHTTP(ctx, t, http.MethodGet, large); err != nil {
		return l, err
	}
	l.HTTP1MiBGetBps *= 1 << 20
	if l.HTTP1MiBPutBps, err = measureHTTP(ctx, t, http.MethodPut, large); err != nil {
		return l, err
	}
	l.HTTP1MiBPutBps *= 1 << 20
	return l, nil
}

// measureDisk times fdatasyncs of one file, and a sequential write of
// files written at once (as the store writes its devices' shards), each
// synced at its end: the best of three passes, as the disks here vary
// with the load of their neighbours.
func measureDisk(dir string, d time.Duration, files int) (syncs, seq float64, err error) {
	f, err := os.CreateTemp(dir, "limit-*")
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	blk := make([]byte, 4096)
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		if _, err := f.WriteAt(blk, 0); err != nil {
			return 0, 0, err
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return 0, 0, fmt.Errorf("fdatasync: %w", err)
		}
		n++
	}
	syncs = float64(n) / time.Since(start).Seconds()

	const each, chunk = 256 << 20, 4 << 20
	buf := randomBytes(chunk)
	write := func(name string) error {
		g, err := os.Create(name)
		if err != nil {
			return err
		}
		defer os.Remove(name)
		defer g.Close()
		for off := 0; off < each; off += chunk {
			if _, err := g.Write(buf); err != nil {
				return err
			}
		}
		return unix.Fdatasync(int(g.Fd()))
	}
	for pass := range 3 {
		errs := make(chan error, files)
		start := time.Now()
		for i := range files {
			go func() { errs <- write(fmt.Sprintf("%s.seq%d.%d", f.Name(), pass, i)) }()
		}
		for range files {
			if e := <-errs; e != nil && err == nil {
				err = e
			}
		}
		if err != nil {
			return 0, 0, err
		}
		seq = max(seq, float64(files*each)/time.Since(start).Seconds())
	}
	return syncs, seq, nil
}

// rate runs fn over buf for about d on one goroutine: bytes per second.
func rate(buf []byte, d time.Duration, fn func([]byte)) float64 {
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		fn(buf)
		n++
	}
	return float64(n*len(buf)) / time.Since(start).Seconds()
}

func hashRate(h hash.Hash, buf []byte, d time.Duration) float64 {
	return rate(buf, d, func(b []byte) { h.Reset(); h.Write(b); h.Sum(nil) })
}

// measureCPU times the hashes and the encoder on one core.
func (l *Limits) measureCPU(k, m int, d time.Duration) error {
	buf := randomBytes(1 << 20)
	l.MD5Bps = hashRate(md5.New(), buf, d)
	l.SHA256Bps = hashRate(sha256.New(), buf, d)
	l.CRC32CBps = hashRate(crc32.New(crc32.MakeTable(crc32.Castagnoli)), buf, d)
	l.XXH3Bps = rate(buf, d, func(b []byte) { xxh3.Hash(b) })
	enc, err := reedsolomon.New(k, max(m, 1), reedsolomon.WithMaxGoroutines(1))
	if err != nil {
		return err
	}
	shards, err := enc.Split(bytes.Clone(buf))
	if err != nil {
		return err
	}
	l.RSEncodeBps = rate(buf, d, func([]byte) { enc.Encode(shards) })
	return nil
}

// measureHTTP is requests per second, signed as the workloads sign them,
// against a server in this process that answers a GET with body and
// reads and drops a PUT's, at 8 clients.
func measureHTTP(ctx context.Context, d time.Duration, method string, body []byte) (float64, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			io.Copy(io.Discard, r.Body)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body)
	})}
	go hs.Serve(l)
	defer hs.Close()
	c := newClient("http://"+l.Addr().String(), region, user, secret)
	var n atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for range 8 {
		wg.Go(func() {
			buf := make([]byte, 256<<10)
			for time.Since(start) < d && ctx.Err() == nil {
				var err error
				if method == http.MethodPut {
					err = c.put(ctx, "/b/k", body)
				} else {
					_, err = c.get(ctx, "/b/k", buf)
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return 0, err
	}
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}

// limit is the ceiling a workload's figure is set against: bytes per
// second when bytes, else operations per second.
type limit struct {
	value float64
	name  string
	bytes bool
}

func (l limit) apply(r *Result) {
	r.Limit, r.LimitName, r.LimitUnit = l.value, l.name, "ops/s"
	if l.bytes {
		r.LimitUnit = "bytes/s"
	}
	if l.value <= 0 {
		return
	}
	if l.bytes {
		r.Ratio = r.Bps / l.value
	} else {
		r.Ratio = r.OpsSec / l.value
	}
}

func lowest(ls ...limit) limit {
	low := ls[0]
	for _, l := range ls[1:] {
		if l.value < low.value {
			low = l
		}
	}
	return low
}

// putLimit: a large PUT is bounded by the lowest of the CPU's per-byte
// work (an MD5 for the ETag, the encoder, an XXH3 over every shard byte,
// on every core), the disk's sequential writes (K+M shard bytes for every
// K), and taking the bodies over HTTP; a small one by the HTTP round trip.
func (b *bencher) putLimit(sz size) limit {
	if sz.bytes < 256<<10 {
		return b.httpLimit()
	}
	l, k, m := b.rep.Limits, float64(b.k), float64(b.m)
	perByte := 1/l.MD5Bps + 1/l.RSEncodeBps + (k+m)/k/l.XXH3Bps
	return lowest(
		limit{float64(l.Cores) / perByte, "CPU: MD5+RS+XXH3, all cores", true},
		limit{l.SeqWriteBps * k / (k + m), "disk seq write x K/(K+M)", true},
		limit{l.HTTP1MiBPutBps, "HTTP 1MiB PUT, do-nothing server", true})
}

// getLimit: a large GET is bounded by the XXH3 of the data shards on
// every core and by sending the bodies over HTTP.
func (b *bencher) getLimit(sz size) limit {
	if sz.bytes < 256<<10 {
		return b.httpLimit()
	}
	l := b.rep.Limits
	return lowest(
		limit{float64(l.Cores) * l.XXH3Bps, "CPU: XXH3, all cores", true},
		limit{l.HTTP1MiBGetBps, "HTTP 1MiB GET, do-nothing server", true})
}

// mixedLimit is the mixed load's operations per second if each kind of
// request ran at its own limit, in the load's proportions.
func (b *bencher) mixedLimit() limit {
	get, put, small := b.getLimit(sizes[0]).value, b.putLimit(sizes[0]).value, b.httpLimit().value
	secs := 0.45*(1<<20)/get + 0.15*(1<<20)/put + 0.40/small
	return limit{1 / secs, "each kind at its own limit, in proportion", false}
}

func (b *bencher) httpLimit() limit {
	return limit{b.rep.Limits.HTTP4KiBGetSec, "HTTP 4KiB GET, do-nothing server", false}
}

func (l Limits) String() string {
	return fmt.Sprintf("%d cores; disk %.0f fdatasync/s, %s seq write; per core: MD5 %s, SHA-256 %s, CRC32C %s, XXH3 %s, RS encode %s; do-nothing HTTP at 8 clients: 4KiB GET %.0f/s, 1MiB GET %s, 1MiB PUT %s",
		l.Cores, l.FdatasyncsSec, rateStr(l.SeqWriteBps), rateStr(l.MD5Bps), rateStr(l.SHA256Bps), rateStr(l.CRC32CBps), rateStr(l.XXH3Bps), rateStr(l.RSEncodeBps),
		l.HTTP4KiBGetSec, rateStr(l.HTTP1MiBGetBps), rateStr(l.HTTP1MiBPutBps))
}

func rateStr(bps float64) string {
	if bps >= 1<<30 {
		return fmt.Sprintf("%.2f GiB/s", bps/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB/s", bps/(1<<20))
}
