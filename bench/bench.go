// Package bench is Strata's load harness (`strata bench`): it starts a
// server on a data dir of its own, measures this machine's limits in the
// same run (the disk's fdatasync and sequential write rates, MD5,
// SHA-256, CRC32C and Reed-Solomon per core, an HTTP round trip), drives
// the S3 workloads operators compare stores by, and reports each figure
// next to the limit that bounds it.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/strata-storage/strata/ring"
)

// Options say what to run and where.
type Options struct {
	Binary   string        // the strata binary to run as the server
	Dir      string        // a directory on the disk under test; the run works in a temporary one inside it
	EC       string        // erasure coding, K+M
	Pools    int           // devices
	Duration time.Duration // per workload
	ListKeys int           // keys for the listing and space figures (0: skip)
	// StartObjects, if set, are 1-byte objects written last, before the
	// server is restarted and timed to its first served GET.
	StartObjects int
	Only         []string  // run only workloads whose name starts with one of these
	Profile      string    // write the server's CPU profile of the whole run here
	Progress     io.Writer // a line per workload as it ends (nil: quiet)
}

// Report is one run's figures.
type Report struct {
	Started  time.Time `json:"started"`
	EC       string    `json:"ec"`
	Pools    int       `json:"pools"`
	Duration string    `json:"duration_per_workload"`
	Limits   Limits    `json:"limits"`
	Results  []Result  `json:"results"`
	// BytesPerObjectPerDevice is the disk space ListKeys 1-byte objects
	// took, per object and device.
	BytesPerObjectPerDevice float64 `json:"bytes_per_1_byte_object_per_device,omitempty"`
	PeakRSS                 int64   `json:"server_peak_rss_bytes"`
	// StartSeconds is the time from starting the server on a data dir of
	// StartObjects objects to its first served GET.
	StartObjects int     `json:"start_objects,omitempty"`
	StartSeconds float64 `json:"start_seconds_to_first_get,omitempty"`
}

const (
	region = "us-east-1"
	user   = "benchadmin"
	secret = "bench-secret-key-0123456789"
	bucket = "bench"
)

// Run measures the limits, starts the server and runs the workloads.
func Run(ctx context.Context, o Options) (*Report, error) {
	k, m, err := ring.ParseEC(o.EC)
	if err != nil {
		return nil, err
	}
	for _, p := range o.Only {
		if !slices.ContainsFunc(Workloads(), func(name string) bool { return strings.HasPrefix(name, p) }) {
			return nil, fmt.Errorf("--only %q names no workload; they are %s", p, strings.Join(Workloads(), ", "))
		}
	}
	work, err := os.MkdirTemp(o.Dir, "strata-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	rep := &Report{Started: time.Now().UTC(), EC: o.EC, Pools: o.Pools, Duration: o.Duration.String()}
	if rep.Limits, err = measureLimits(ctx, work, k, m, o.Pools, o.Duration); err != nil {
		return nil, fmt.Errorf("measuring limits: %w", err)
	}
	o.progress("limits: %s", rep.Limits)
	var extra []string
	if o.Profile != "" {
		extra = append(extra, "--cpu-profile", o.Profile)
	}
	b := &bencher{o: o, rep: rep, k: k, m: m, dataDir: filepath.Join(work, "data"), extra: extra}
	if b.srv, err = startServer(ctx, o.Binary, b.dataDir, o.EC, o.Pools, user, secret, extra); err != nil {
		return nil, err
	}
	defer func() {
		rep.PeakRSS = max(rep.PeakRSS, b.srv.peakRSS())
		b.srv.stop()
	}()
	b.c = newClient("http://"+b.srv.s3, region, user, secret)
	if _, err := b.c.do(ctx, http.MethodPut, "/"+bucket, nil, nil, http.StatusOK); err != nil {
		return nil, fmt.Errorf("creating the bucket: %w", err)
	}
	if err := b.all(ctx); err != nil {
		return rep, err
	}
	if o.StartObjects > 0 {
		if err := b.startTime(ctx); err != nil {
			return rep, err
		}
	}
	return rep, ctx.Err()
}

func (o Options) progress(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}

func (o Options) wants(name string) bool {
	if len(o.Only) == 0 {
		return true
	}
	for _, p := range o.Only {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Workloads are the names of every workload a run can have.
func Workloads() []string {
	var names []string
	for _, op := range []string{"put", "get"} {
		for _, sz := range sizes {
			for _, n := range []int{1, 8, 32} {
				names = append(names, fmt.Sprintf("%s-%s-%d", op, sz.name, n))
			}
		}
	}
	return append(names, "head-4KiB-8", "mixed-1MiB-8", "delete-4KiB-8", "multipart-256MiB-16MiB-parts", "put-1B-32", "list-flat", "list-delimited")
}

// touches is whether a selected workload's name and p share a prefix.
func (o Options) touches(p string) bool {
	if len(o.Only) == 0 {
		return true
	}
	for _, w := range o.Only {
		if strings.HasPrefix(w, p) || strings.HasPrefix(p, w) {
			return true
		}
	}
	return false
}

// needsKeys is whether a selected workload reads objects of size sz
// that the PUT workloads write.
func (b *bencher) needsKeys(sz size) bool {
	if b.o.touches("get-" + sz.name) {
		return true
	}
	if sz.name == "4KiB" {
		return b.o.touches("head-") || b.o.touches("delete-")
	}
	return b.o.touches("mixed-")
}

// bencher holds one run's server, client and keys.
type bencher struct {
	o       Options
	srv     *server
	c       *client
	rep     *Report
	k, m    int
	dataDir string
	extra   []string // the server's extra flags
}

// size is an object size a workload family uses.
type size struct {
	name  string
	bytes int
}

var sizes = []size{{"1MiB", 1 << 20}, {"4KiB", 4 << 10}}

// all runs every workload Options select, in an order where each reads
// what an earlier one wrote.
func (b *bencher) all(ctx context.Context) error {
	// The space figure comes first, while nothing else (a delete's trims,
	// compactions of earlier data) changes the data dir's usage.
	if b.o.ListKeys > 0 && (b.o.touches("list") || b.o.touches("put-1B")) {
		if err := b.listing(ctx); err != nil {
			return err
		}
	}
	keys := map[string]*keyset{}
	for _, sz := range sizes {
		body := randomBytes(sz.bytes)
		ks := &keyset{}
		keys[sz.name] = ks
		for _, n := range []int{1, 8, 32} {
			name := fmt.Sprintf("put-%s-%d", sz.name, n)
			if !b.o.wants(name) && !b.needsKeys(sz) {
				continue
			}
			b.add(ctx, name, n, 0, b.putLimit(sz), func(ctx context.Context, c, i int) (int64, error) {
				key := fmt.Sprintf("/%s/%s/%d/%d/%d", bucket, name, n, c, i)
				if err := b.c.put(ctx, key, body); err != nil {
					return 0, err
				}
				ks.add(key)
				return int64(len(body)), nil
			}, b.o.wants(name))
		}
		for _, n := range []int{1, 8, 32} {
			name := fmt.Sprintf("get-%s-%d", sz.name, n)
			if !b.o.wants(name) {
				continue
			}
			bufs := clientBuffers(n)
			b.add(ctx, name, n, 0, b.getLimit(sz), func(ctx context.Context, c, _ int) (int64, error) {
				key := ks.pick()
				if key == "" {
					return 0, errNoKeys
				}
				return b.c.get(ctx, key, bufs[c])
			}, true)
		}
	}
	small := keys["4KiB"]
	if b.o.wants("head-4KiB-8") {
		b.add(ctx, "head-4KiB-8", 8, 0, b.httpLimit(), func(ctx context.Context, _, _ int) (int64, error) {
			key := small.pick()
			if key == "" {
				return 0, errNoKeys
			}
			_, err := b.c.do(ctx, http.MethodHead, key, nil, nil, http.StatusOK)
			return 0, err
		}, true)
	}
	if b.o.wants("mixed-1MiB-8") {
		b.mixed(ctx, keys["1MiB"])
	}
	if b.o.wants("delete-4KiB-8") {
		b.add(ctx, "delete-4KiB-8", 8, int64(small.len()), b.httpLimit(), func(ctx context.Context, _, _ int) (int64, error) {
			key := small.take()
			if key == "" {
				return 0, errNoKeys
			}
			_, err := b.c.do(ctx, http.MethodDelete, key, nil, nil, http.StatusNoContent)
			return 0, err
		}, true)
	}
	if b.o.wants("multipart-256MiB") {
		part := randomBytes(16 << 20)
		b.add(ctx, "multipart-256MiB-16MiB-parts", 1, 0, b.putLimit(sizes[0]), func(ctx context.Context, c, i int) (int64, error) {
			return 256 << 20, b.c.multipart(ctx, fmt.Sprintf("/%s/multipart/%d/%d", bucket, c, i), part, 16)
		}, true)
	}
	return ctx.Err()
}

// add runs one workload and, when keep, reports it.
func (b *bencher) add(ctx context.Context, name string, clients int, max int64, lim limit, fn op, keep bool) {
	if ctx.Err() != nil {
		return
	}
	r := run(ctx, b.srv, name, clients, b.o.Duration, max, fn)
	if !keep {
		return
	}
	lim.apply(&r)
	b.rep.Results = append(b.rep.Results, r)
	b.o.progress("%s", r.line())
}

// mixed is GET 45%, STAT 30%, PUT 15%, DELETE 10% of 1 MiB objects.
func (b *bencher) mixed(ctx context.Context, ks *keyset) {
	body := randomBytes(1 << 20)
	bufs := clientBuffers(8)
	b.add(ctx, "mixed-1MiB-8", 8, 0, b.mixedLimit(), func(ctx context.Context, c, i int) (int64, error) {
		// A read of a key another client is deleting may rightly find
		// nothing; that is an answer, not an error.
		raced := func(key string, n int64, err error) (int64, error) {
			if errors.Is(err, errNotFound) && ks.deleted(key) {
				return 0, nil
			}
			return n, err
		}
		switch p := randIntN(100); {
		case p < 45:
			if key := ks.pick(); key != "" {
				n, err := b.c.get(ctx, key, bufs[c])
				return raced(key, n, err)
			}
			return 0, errNoKeys
		case p < 75:
			if key := ks.pick(); key != "" {
				_, err := b.c.do(ctx, http.MethodHead, key, nil, nil, http.StatusOK)
				return raced(key, 0, err)
			}
			return 0, errNoKeys
		case p < 90:
			key := fmt.Sprintf("/%s/mixed/%d/%d", bucket, c, i)
			if err := b.c.put(ctx, key, body); err != nil {
				return 0, err
			}
			ks.add(key)
			return int64(len(body)), nil
		default:
			if key := ks.take(); key != "" {
				_, err := b.c.do(ctx, http.MethodDelete, key, nil, nil, http.StatusNoContent)
				return 0, err
			}
			return 0, errNoKeys
		}
	}, true)
}

// listing writes ListKeys 1-byte objects under list/dNNN/ (100 keys a
// "directory"), measures the space they took, and times a flat full
// listing and a delimited one (the top level, then every directory).
func (b *bencher) listing(ctx context.Context) error {
	n := b.o.ListKeys
	dirs := max(1, n/1000)
	used0, err := diskUsage(b.dataDir)
	if err != nil {
		return err
	}
	one := []byte{'x'}
	var next atomic.Int64
	r := run(ctx, b.srv, "put-1B-32", 32, 24*time.Hour, int64(n), func(ctx context.Context, _, _ int) (int64, error) {
		return 1, b.c.put(ctx, listKey(int(next.Add(1)-1), dirs), one)
	})
	if r.Ops != int64(n) {
		return fmt.Errorf("loading %d keys for the listing: %d stored, %d failed: %s", n, r.Ops, r.Errors, r.FirstError)
	}
	b.httpLimit().apply(&r)
	b.rep.Results = append(b.rep.Results, r)
	b.o.progress("%s", r.line())
	time.Sleep(time.Second) // let the metadata stores' writes land before counting blocks
	used1, err := diskUsage(b.dataDir)
	if err != nil {
		return err
	}
	b.rep.BytesPerObjectPerDevice = float64(used1-used0) / float64(n) / float64(b.o.Pools)
	b.o.progress("space: %.0f bytes per 1-byte object per device", b.rep.BytesPerObjectPerDevice)

	if b.o.wants("list-flat") {
		b.timeListing(ctx, "list-flat", n, func() (int, error) { return b.walk(ctx, "list/", "") })
	}
	if b.o.wants("list-delimited") {
		b.timeListing(ctx, "list-delimited", n+dirs, func() (int, error) {
			total, err := b.walk(ctx, "list/", "/")
			for d := range dirs {
				if err != nil {
					break
				}
				var got int
				got, err = b.walk(ctx, fmt.Sprintf("list/d%04d/", d), "/")
				total += got
			}
			return total, err
		})
	}
	return nil
}

// startTime writes StartObjects 1-byte objects, restarts the server on
// its data dir and times it from the start of the process to its first
// served GET.
func (b *bencher) startTime(ctx context.Context) error {
	n := b.o.StartObjects
	one := []byte{'s'}
	var next atomic.Int64
	r := run(ctx, b.srv, "put-1B-32 (start-time load)", 32, 24*time.Hour, int64(n), func(ctx context.Context, _, _ int) (int64, error) {
		return 1, b.c.put(ctx, fmt.Sprintf("/%s/start/%08d", bucket, next.Add(1)-1), one)
	})
	if r.Ops != int64(n) {
		return fmt.Errorf("loading %d objects: %d stored, %d failed: %s", n, r.Ops, r.Errors, r.FirstError)
	}
	b.o.progress("%s", r.line())
	b.rep.PeakRSS = max(b.rep.PeakRSS, b.srv.peakRSS())
	b.srv.stop()
	began := time.Now()
	srv, err := launch(b.o.Binary, b.dataDir, b.o.EC, b.o.Pools, user, secret, b.extra)
	if err != nil {
		return err
	}
	b.srv = srv
	b.c = newClient("http://"+srv.s3, region, user, secret)
	probe := fmt.Sprintf("/%s/start/%08d", bucket, n/2)
	buf := make([]byte, 4096)
	if err := srv.waitFor(ctx, func() bool {
		got, err := b.c.get(ctx, probe, buf)
		return err == nil && got == 1
	}); err != nil {
		return fmt.Errorf("restarting on %d objects: %w", n, err)
	}
	b.rep.StartObjects, b.rep.StartSeconds = n, time.Since(began).Seconds()
	b.o.progress("start: first GET served %.2f s after starting on %d objects", b.rep.StartSeconds, n)
	return nil
}

func listKey(j, dirs int) string {
	return fmt.Sprintf("/%s/list/d%04d/o%07d", bucket, j%dirs, j)
}

// timeListing runs one listing walk and reports entries per second.
func (b *bencher) timeListing(ctx context.Context, name string, want int, walk func() (int, error)) {
	cpu0 := b.srv.cpuSeconds()
	start := time.Now()
	got, err := walk()
	secs := time.Since(start).Seconds()
	r := Result{Name: name, Clients: 1, Ops: int64(got), Seconds: secs, OpsSec: float64(got) / secs, ServerCPU: b.srv.cpuSeconds() - cpu0}
	r.P50ms, r.P99ms = secs*1000, secs*1000
	if got > 0 {
		r.CPUMicrosPerOp = r.ServerCPU / float64(got) * 1e6
	}
	if err == nil && got != want {
		err = fmt.Errorf("listed %d entries, want %d", got, want)
	}
	if err != nil {
		r.Errors, r.FirstError = 1, err.Error()
	}
	b.rep.Results = append(b.rep.Results, r)
	b.o.progress("%s", r.line())
}

// walk lists every page under prefix: keys plus common prefixes.
func (b *bencher) walk(ctx context.Context, prefix, delim string) (int, error) {
	total, token := 0, ""
	for {
		keys, prefixes, next, err := b.c.listPage(ctx, bucket, prefix, delim, token)
		if err != nil {
			return total, err
		}
		total += keys + prefixes
		if next == "" {
			return total, nil
		}
		token = next
	}
}

// diskUsage is the bytes allocated to files under dir.
func diskUsage(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err == nil {
			total += st.Blocks * 512
		}
		return nil
	})
	return total, err
}

// clientBuffers is a read buffer for each of n clients.
func clientBuffers(n int) [][]byte {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, 256<<10)
	}
	return bufs
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// WriteJSON writes the report for comparing runs.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
