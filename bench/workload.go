package bench

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// op is one request of a workload by client c, its i'th; it returns the
// payload bytes it moved.
type op func(ctx context.Context, c, i int) (int64, error)

// Result is one workload's figures.
type Result struct {
	Name    string  `json:"name"`
	Clients int     `json:"clients"`
	Ops     int64   `json:"ops"`
	Errors  int64   `json:"errors"`
	Seconds float64 `json:"seconds"`
	OpsSec  float64 `json:"ops_per_second"`
	Bps     float64 `json:"bytes_per_second"`
	P50ms   float64 `json:"p50_ms"`
	P99ms   float64 `json:"p99_ms"`
	// ServerCPU is the server's CPU seconds over the workload; per GiB
	// moved and per op.
	ServerCPU      float64 `json:"server_cpu_seconds"`
	CPUSecPerGiB   float64 `json:"server_cpu_seconds_per_gib,omitempty"`
	CPUMicrosPerOp float64 `json:"server_cpu_microseconds_per_op"`
	Limit          float64 `json:"limit,omitempty"`
	LimitName      string  `json:"limit_name,omitempty"`
	LimitUnit      string  `json:"limit_unit,omitempty"`
	Ratio          float64 `json:"ratio,omitempty"`
	FirstError     string  `json:"first_error,omitempty"`
}

// run drives fn from clients goroutines until d has passed or max ops
// (0: no cap) have started, and measures it. Each client's ops are
// numbered from 0, so a workload can name its keys by (c, i).
func run(ctx context.Context, srv *server, name string, clients int, d time.Duration, max int64, fn op) Result {
	var started, failed, moved atomic.Int64
	var firstErr atomic.Value
	lat := make([][]time.Duration, clients)
	ctx, cancel := context.WithTimeout(ctx, d+2*time.Minute)
	defer cancel()
	cpu0 := srv.cpuSeconds()
	begin := time.Now()
	deadline := begin.Add(d)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := 0; ; i++ {
				if time.Now().After(deadline) || ctx.Err() != nil {
					return
				}
				if max > 0 && started.Add(1) > max {
					return
				}
				t := time.Now()
				n, err := fn(ctx, c, i)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					if errors.Is(err, context.Canceled) {
						return
					}
					continue
				}
				lat[c] = append(lat[c], time.Since(t))
				moved.Add(n)
			}
		})
	}
	wg.Wait()
	secs := time.Since(begin).Seconds()
	cpu := srv.cpuSeconds() - cpu0
	all := slices.Concat(lat...)
	slices.Sort(all)
	r := Result{Name: name, Clients: clients, Ops: int64(len(all)), Errors: failed.Load(), Seconds: secs, ServerCPU: cpu}
	r.OpsSec = float64(r.Ops) / secs
	r.Bps = float64(moved.Load()) / secs
	if len(all) > 0 {
		r.P50ms = ms(all[len(all)/2])
		r.P99ms = ms(all[min(len(all)-1, len(all)*99/100)])
		r.CPUMicrosPerOp = cpu / float64(r.Ops) * 1e6
	}
	if moved.Load() > 0 {
		r.CPUSecPerGiB = cpu / (float64(moved.Load()) / (1 << 30))
	}
	if e, ok := firstErr.Load().(string); ok {
		r.FirstError = e
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// keyset hands out keys written by a load step and takes back the ones a
// workload deletes, so reads and deletes only name keys that exist.
type keyset struct {
	mu   sync.Mutex
	keys []string
	gone map[string]bool // taken for deletion
}

func (k *keyset) add(key string) {
	k.mu.Lock()
	k.keys = append(k.keys, key)
	k.mu.Unlock()
}

// pick is a random existing key ("" when there is none).
func (k *keyset) pick() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.keys) == 0 {
		return ""
	}
	return k.keys[rand.IntN(len(k.keys))]
}

// take removes and returns a random key ("" when there is none).
func (k *keyset) take() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.keys) == 0 {
		return ""
	}
	i := rand.IntN(len(k.keys))
	key := k.keys[i]
	if k.gone == nil {
		k.gone = map[string]bool{}
	}
	k.gone[key] = true
	k.keys[i] = k.keys[len(k.keys)-1]
	k.keys = k.keys[:len(k.keys)-1]
	return key
}

// deleted is whether key was taken for deletion: a read of it that
// raced with the delete may rightly find nothing.
func (k *keyset) deleted(key string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.gone[key]
}

func (k *keyset) len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.keys)
}

var (
	errNoKeys   = errors.New("no keys left to act on")
	errNotFound = errors.New("404 Not Found")
)

func randIntN(n int) int { return rand.IntN(n) }
