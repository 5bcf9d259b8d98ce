package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/rebalancer"
	"github.com/strata-storage/strata/ring"
	"github.com/strata-storage/strata/s3api/sigv4"
)

// The admin API (its routes, types and client are package admin): this
// file authenticates and audits every call and serves the ring, cluster
// and node operations; the other handlers sit beside what they serve
// (volumes.go, scrub.go, users.go, quota.go, claims.go, rebalance_admin.go,
// audit.go).

// adminMux builds the admin API's mux from every handler group.
func (n *Node) adminMux() (*admin.Mux, error) {
	all := map[admin.Op]admin.Handler{}
	for _, group := range []map[admin.Op]admin.Handler{n.ringHandlers(), n.volumeHandlers(), n.scrubHandlers(), n.userHandlers(), n.quotaHandlers(), n.claimHandlers(), n.rebalanceHandlers(), n.auditHandlers()} {
		for op, h := range group {
			if _, dup := all[op]; dup {
				return nil, fmt.Errorf("admin: two handlers for %s", op)
			}
			all[op] = h
		}
	}
	return admin.NewMux(all)
}

func (n *Node) adminAPI(mux *admin.Mux) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w := &statusWriter{ResponseWriter: rw}
		principal, body, err := n.adminAuth(r)
		if principal == "" && err != nil && n.audit.throttled(remoteHost(r), time.Now()) {
			// A signed request always goes through; one that is not, from
			// an address that sent too many, gets no verdict.
			n.audit.refused.WithLabelValues(admin.CodeSlowDown).Inc()
			w.Header().Set("Retry-After", "60")
			admin.WriteError(w, &admin.Error{Status: http.StatusServiceUnavailable, Code: admin.CodeSlowDown, Message: "too many unauthenticated requests from this address; retry later"})
			return
		}
		if err == nil {
			err = mux.Serve(w, r, body)
		}
		var ae *admin.Error
		if err != nil {
			ae = adminErrorOf(err)
			admin.WriteError(w, ae)
		}
		if principal == "" && ae != nil {
			// Nobody signed it: counted, never an audit entry.
			if summary := n.audit.refusal(ae.Code, remoteHost(r), time.Now()); len(summary) > 0 {
				n.logRefusals(summary)
			}
			return
		}
		if r.Method != http.MethodGet {
			e := admin.AuditEntry{Principal: principal, Remote: remoteHost(r), Method: r.Method, Path: r.URL.RequestURI(), Body: string(body), Status: w.status}
			if ae != nil {
				e.Code = ae.Code
			}
			n.record(e)
		}
	})
}

// adminErrorOf is the answer for a handler's error: its own admin.Error,
// or one for the errors of the ring, else a 500.
func adminErrorOf(err error) *admin.Error {
	var ae *admin.Error
	if errors.As(err, &ae) {
		return ae
	}
	ae = &admin.Error{Status: http.StatusInternalServerError, Code: admin.CodeInternalError, Message: err.Error()}
	switch {
	case errors.Is(err, ring.ErrNoDevice):
		ae.Status, ae.Code = http.StatusNotFound, admin.CodeNoSuchDevice
	case errors.Is(err, ring.ErrLayout):
		ae.Status, ae.Code = http.StatusConflict, admin.CodeLayoutDoesNotFit
	case strings.HasPrefix(err.Error(), "ring: "):
		ae.Status, ae.Code = http.StatusBadRequest, admin.CodeInvalidArgument
	}
	return ae
}

// logRefusals writes one line for a minute of unauthenticated admin
// requests: the total and the busiest addresses.
func (n *Node) logRefusals(bySource map[string]int) {
	total := 0
	type src struct {
		addr string
		n    int
	}
	var top []src
	for a, c := range bySource {
		total += c
		top = append(top, src{a, c})
	}
	sort.Slice(top, func(i, j int) bool { return top[i].n > top[j].n })
	var parts []string
	for i, s := range top {
		if i == 5 {
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%d)", s.addr, s.n))
	}
	n.log.Warn("admin API: unauthenticated requests refused in the last minute", "count", total, "addresses", len(bySource), "top", strings.Join(parts, ", "))
}

// adminAuth verifies the signature (root, or a user with admin rights)
// and the body against it, and names who signed.
func (n *Node) adminAuth(r *http.Request) (string, []byte, error) {
	auth, err := sigv4.Verify(r, userCredentials{n}, time.Now())
	if err != nil {
		code := "AccessDenied"
		var se *sigv4.Error
		if errors.As(err, &se) {
			code = se.Code
		}
		return "", nil, &admin.Error{Status: http.StatusForbidden, Code: code, Message: err.Error()}
	}
	principal := "root"
	if auth.AccessKey != n.Root.AccessKey {
		user, _ := n.principal(auth.AccessKey)
		u, err := n.iam.GetUser(r.Context(), user)
		if err != nil || !u.Admin {
			return user, nil, &admin.Error{Status: http.StatusForbidden, Code: "AccessDenied", Message: "the admin API answers root and admin users only"}
		}
		principal = user
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return principal, nil, admin.BadRequest("reading the body: %v", err)
	}
	sum := sha256.Sum256(body)
	if auth.PayloadHash != hex.EncodeToString(sum[:]) {
		return principal, nil, &admin.Error{Status: http.StatusBadRequest, Code: "XAmzContentSHA256Mismatch", Message: "admin requests must sign their body's SHA-256"}
	}
	return principal, body, nil
}

// ringHandlers serve the ring, cluster and node operations.
func (n *Node) ringHandlers() map[admin.Op]admin.Handler {
	devID := func(r *admin.Request) (uint32, error) {
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 32)
		if err != nil {
			return 0, admin.BadRequest("device id %q is not a number", r.PathValue("id"))
		}
		return uint32(id), nil
	}
	onDevice := func(f func(w http.ResponseWriter, r *admin.Request, id uint32) error) admin.Handler {
		return func(w http.ResponseWriter, r *admin.Request) error {
			id, err := devID(r)
			if err != nil {
				return err
			}
			return f(w, r, id)
		}
	}
	return map[admin.Op]admin.Handler{
		admin.RingGet: func(w http.ResponseWriter, r *admin.Request) error {
			return admin.WriteJSON(w, n.CurrentRing().Info())
		},
		admin.RingFile: func(w http.ResponseWriter, r *admin.Request) error {
			rg := n.CurrentRing()
			if r.URL.Query().Get("previous") != "" {
				if rg = n.prev.Load(); rg == nil {
					return &admin.Error{Status: http.StatusNotFound, Code: admin.CodeNoPreviousRing, Message: "the ring has not changed since this node started"}
				}
			}
			b, err := rg.MarshalBinary()
			if err != nil {
				return err
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			_, err = w.Write(b)
			return err
		},
		admin.RingDiffGet: func(w http.ResponseWriter, r *admin.Request) error {
			prev, cur := n.prev.Load(), n.CurrentRing()
			if prev == nil {
				return &admin.Error{Status: http.StatusNotFound, Code: admin.CodeNoPreviousRing, Message: "the ring has not changed since this node started"}
			}
			return admin.WriteJSON(w, admin.RingDiffAnswer{From: prev.Version, To: cur.Version, Diff: ring.DiffRings(prev, cur)})
		},
		admin.RingAddDevice: func(w http.ResponseWriter, r *admin.Request) error {
			var d ring.Device
			if err := r.Decode(&d, false); err != nil {
				return err
			}
			if d.Node == "" {
				d.Node = n.cfg.NodeName
			}
			if err := n.checkDeviceNode(r.Context(), d.Node); err != nil {
				return err
			}
			return n.editRing(w, func(rg *ring.Ring) (*ring.Ring, error) {
				if d.ID == 0 {
					if _, taken := rg.Index(0); taken {
						d.ID = rg.NextID()
					}
				}
				return rg.AddDevice(d)
			})
		},
		admin.RingRemove: onDevice(func(w http.ResponseWriter, r *admin.Request, id uint32) error {
			return n.editRing(w, func(rg *ring.Ring) (*ring.Ring, error) { return rg.RemoveDevice(id) })
		}),
		admin.RingSetWeight: onDevice(func(w http.ResponseWriter, r *admin.Request, id uint32) error {
			var req admin.WeightRequest
			if err := r.Decode(&req, false); err != nil {
				return err
			}
			if req.Weight == nil {
				return admin.BadRequest("missing Weight")
			}
			return n.editRing(w, func(rg *ring.Ring) (*ring.Ring, error) { return rg.SetWeight(id, *req.Weight) })
		}),
		admin.RingRebuild: onDevice(func(w http.ResponseWriter, r *admin.Request, id uint32) error {
			ans, err := n.rebuildDevice(id)
			if err != nil {
				return err
			}
			return admin.WriteJSON(w, ans)
		}),
		admin.RingSetState: onDevice(func(w http.ResponseWriter, r *admin.Request, id uint32) error {
			var req admin.StateRequest
			if err := r.Decode(&req, false); err != nil {
				return err
			}
			if req.State == nil || *req.State == ring.Removing {
				return admin.BadRequest("State must be active, draining or failed (remove a device with DELETE)")
			}
			return n.editRing(w, func(rg *ring.Ring) (*ring.Ring, error) { return rg.SetState(id, *req.State) })
		}),
		admin.RingRebalance: func(w http.ResponseWriter, r *admin.Request) error {
			var req admin.RingRebalanceRequest
			if err := r.Decode(&req, true); err != nil {
				return err
			}
			var ans admin.RebalanceAnswer
			var job *rebalancer.Job
			err := n.changeRing(func(rg *ring.Ring) (*ring.Ring, error) {
				return n.rebalanceRing(rg, req.IgnoreMinPartHours, &ans)
			}, jobOptions{}, &job)
			ans.Job = job
			if err != nil {
				return err
			}
			return admin.WriteJSON(w, ans)
		},
		admin.NodesList: func(w http.ResponseWriter, r *admin.Request) error {
			members, err := n.Members(r.Context())
			if err != nil {
				return err
			}
			return admin.WriteJSON(w, members)
		},
		admin.ClusterVerify: func(w http.ResponseWriter, r *admin.Request) error {
			var req admin.VerifyRequest
			if err := r.Decode(&req, true); err != nil {
				return err
			}
			rep, err := n.store.Verify(r.Context(), req.Repair)
			if errors.Is(err, objectstore.ErrMoving) {
				return &admin.Error{Status: http.StatusConflict, Code: admin.CodeRebalanceRunning, Message: "a rebalance is moving records: verify without --repair, or wait for it (strata rebalance status)"}
			}
			if err != nil {
				return &admin.Error{Status: http.StatusServiceUnavailable, Code: "VerifyIncomplete", Message: err.Error()}
			}
			return admin.WriteJSON(w, rep)
		},
		admin.ClusterCheck: func(w http.ResponseWriter, r *admin.Request) error {
			rc, err := n.store.CheckReadable(r.Context(), 8)
			if err != nil {
				return err
			}
			return admin.WriteJSON(w, rc)
		},
		admin.ClusterHints: func(w http.ResponseWriter, r *admin.Request) error {
			pending, err := n.store.PendingHints(r.Context())
			if err != nil {
				return err
			}
			return admin.WriteJSON(w, admin.Hints{Pending: pending})
		},
	}
}

func (n *Node) editRing(w http.ResponseWriter, edit func(*ring.Ring) (*ring.Ring, error)) error {
	var info ring.Info
	err := n.changeRing(func(rg *ring.Ring) (*ring.Ring, error) {
		next, err := edit(rg)
		if err == nil {
			info = next.Info()
		}
		return next, err
	}, jobOptions{}, nil)
	if err != nil {
		return err
	}
	return admin.WriteJSON(w, info)
}

// changeRing applies a ring change. The rebalance job the change needs
// (moves from the old placement, or a job already running) is stored
// first (prepareJob); then, on one node: save the ring file (the old one
// kept as ring.prev) and switch placement; in a cluster: publish the ring
// in etcd (if nobody changed it meanwhile) and switch; every other node
// switches when it sees it. A failure before the switch leaves the old
// ring and job in force. The job (if any) is returned in jobOut and
// started here.
func (n *Node) changeRing(change func(*ring.Ring) (*ring.Ring, error), opt jobOptions, jobOut **rebalancer.Job) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	job, err := n.changeRingLocked(ctx, change, opt)
	if err != nil {
		return err
	}
	if jobOut != nil {
		*jobOut = job
	}
	if job != nil {
		n.jobChanged(context.WithoutCancel(n.bgCtx))
	}
	return nil
}

func (n *Node) changeRingLocked(ctx context.Context, change func(*ring.Ring) (*ring.Ring, error), opt jobOptions) (*rebalancer.Job, error) {
	n.ringMu.Lock()
	defer n.ringMu.Unlock()
	cur := n.ring.Load()
	next, err := change(cur)
	if err != nil {
		return nil, err
	}
	job, undo, err := n.prepareJob(ctx, cur, next, opt)
	if err != nil {
		return nil, err
	}
	if err := n.switchRing(ctx, cur, next); err != nil {
		undo()
		return nil, err
	}
	return job, nil
}

// switchRing makes next the ring in force (ringMu held).
func (n *Node) switchRing(ctx context.Context, cur, next *ring.Ring) error {
	if n.clustered() {
		if err := n.publishRing(ctx, cur, next); err != nil {
			return err
		}
		return n.applyRing(next)
	}
	for _, d := range next.Devices {
		if d.Node == n.cfg.NodeName {
			if err := n.devs.Open(d); err != nil {
				return fmt.Errorf("device %s: %w", d.Name, err)
			}
		}
	}
	if err := cur.Save(filepath.Join(n.cfg.DataDir, "ring.prev")); err != nil {
		return err
	}
	if err := next.Save(filepath.Join(n.cfg.DataDir, "ring")); err != nil {
		return err
	}
	return n.applyRing(next)
}
