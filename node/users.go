package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/strata-storage/strata/iam"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/s3api/policy"
)

// Users and access keys beside the root user: the iam store (in etcd in a
// cluster, sealed with a key derived from the cluster secret; in pebble
// alone, sealed with <data-dir>/master.key), the S3 credentials that look
// keys up in it, and the admin API that manages it.

const masterKeyFile = "master.key"

func (n *Node) openIAM() error {
	var meta metastore.Store
	var key []byte
	var err error
	if n.clustered() {
		meta = n.etcd.Sub("iam/")
		key, err = iam.MasterKeyFromSecret(n.cfg.ClusterSecret)
	} else {
		meta = metastore.NewPebble(n.db, "iam/")
		key, err = iam.LoadOrCreateMasterKey(filepath.Join(n.cfg.DataDir, masterKeyFile))
	}
	if err != nil {
		return fmt.Errorf("iam master key: %w", err)
	}
	if n.iam, err = iam.New(meta, key); err != nil {
		return err
	}
	if w, ok := meta.(metastore.Watcher); ok {
		// A key or user disabled on another node stops signing here at
		// once, not when the cache entry ages out.
		n.goBackground(func() {
			w.Watch(n.bgCtx, "", func(string, []byte) {
				n.iam.Invalidate()
				n.policies.clear()
			})
		})
	}
	return nil
}

// userCredentials finds the secret of the root key or of a user's key.
type userCredentials struct{ n *Node }

func (c userCredentials) SecretKey(access string) (string, bool) {
	if access == c.n.Root.AccessKey {
		return c.n.Root.SecretKey, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	secret, _, ok := c.n.iam.Lookup(ctx, access)
	return secret, ok
}

// principal names the user of a key that signed a request.
func (n *Node) principal(access string) (string, bool) {
	if access == n.Root.AccessKey {
		return "", true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, user, _ := n.iam.Lookup(ctx, access)
	return user, false
}

// canonicalIDs caches users' canonical ids for a few seconds (the S3 layer
// asks for one in every listing).
type canonicalIDs struct {
	mu sync.Mutex
	m  map[string]cachedID
}

type cachedID struct {
	id      string
	expires time.Time
}

// canonicalID is a user's S3 canonical id ("" is root).
func (n *Node) canonicalID(ctx context.Context, user string) string {
	if user == "" {
		return n.iam.RootCanonicalID()
	}
	n.ids.mu.Lock()
	c, ok := n.ids.m[user]
	n.ids.mu.Unlock()
	if ok && time.Now().Before(c.expires) {
		return c.id
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u, err := n.iam.GetUser(ctx, user)
	if err != nil {
		// Gone (or unreachable): its name still identifies it.
		return iam.CanonicalIDOf(iam.User{Name: user})
	}
	id := iam.CanonicalIDOf(u)
	n.ids.mu.Lock()
	if n.ids.m == nil {
		n.ids.m = map[string]cachedID{}
	}
	n.ids.m[user] = cachedID{id, time.Now().Add(iam.CacheTTL)}
	n.ids.mu.Unlock()
	return id
}

// userByEmail finds the user an ACL grant's emailAddress names.
func (n *Node) userByEmail(ctx context.Context, email string) (user string, ok bool) {
	return n.findUser(ctx, func(u iam.User) bool { return u.Email != "" && strings.EqualFold(u.Email, email) })
}

// userByCanonicalID finds the user of a canonical id ("" and true for
// root).
func (n *Node) userByCanonicalID(ctx context.Context, id string) (user string, ok bool) {
	if id == n.iam.RootCanonicalID() {
		return "", true
	}
	return n.findUser(ctx, func(u iam.User) bool { return u.CanonicalID == id })
}

// findUser is the first user match accepts.
func (n *Node) findUser(ctx context.Context, match func(iam.User) bool) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	users, err := n.iam.ListUsers(ctx)
	if err != nil {
		return "", false
	}
	for _, u := range users {
		if match(u) {
			return u.Name, true
		}
	}
	return "", false
}

// usersRoute serves:
//
//	GET    /admin/v1/users                     []iam.User
//	POST   /admin/v1/users                     {"Name": n, "Admin": b, "Email": e} -> iam.User (201)
//	PUT    /admin/v1/users/{name}/admin        {"Admin": b}: may it call this API?
//	GET    /admin/v1/users/{name}              iam.User with its keys
//	DELETE /admin/v1/users/{name}              (refused while it owns buckets)
//	POST   /admin/v1/users/{name}/{disable,enable}
//	GET    /admin/v1/users/{name}/keys         []iam.Key (no secrets)
//	POST   /admin/v1/users/{name}/keys         {"access_key", "secret_key", ...} (201; the only time the secret is shown)
//	PUT    /admin/v1/users/{name}/policy       an IAM-style policy (no Principal) -> iam.User
//	DELETE /admin/v1/users/{name}/policy
//	GET    /admin/v1/keys                      every key
//	DELETE /admin/v1/keys/{access}
//	POST   /admin/v1/keys/{access}/{disable,enable}
func (n *Node) usersRoute(w http.ResponseWriter, r *http.Request, path string, body []byte) (bool, error) {
	ctx := r.Context()
	parts := strings.Split(path, "/")
	get, post, del := r.Method == http.MethodGet, r.Method == http.MethodPost, r.Method == http.MethodDelete
	switch {
	case path == "users" && get:
		users, err := n.iam.ListUsers(ctx)
		return true, iamErr(err, func() error { return writeJSON(w, users) })
	case path == "users" && post:
		var req struct {
			Name  string
			Admin bool
			Email string
		}
		if err := strictJSON(body, &req); err != nil {
			return true, err
		}
		u, err := n.iam.CreateUserWith(ctx, iam.User{Name: req.Name, Admin: req.Admin, Email: req.Email})
		return true, iamErr(err, func() error { return writeJSONStatus(w, http.StatusCreated, u) })
	case len(parts) == 2 && parts[0] == "users" && get:
		u, err := n.iam.GetUser(ctx, parts[1])
		if err != nil {
			return true, iamErr(err, nil)
		}
		keys, err := n.iam.ListKeys(ctx, parts[1])
		return true, iamErr(err, func() error {
			return writeJSON(w, struct {
				iam.User
				Keys []iam.Key `json:"keys"`
			}{u, keys})
		})
	case len(parts) == 2 && parts[0] == "users" && del:
		for _, b := range n.store.ListBuckets(ctx) {
			if b.Owner == parts[1] {
				return true, &adminError{http.StatusConflict, "UserOwnsBuckets", fmt.Sprintf("user %s owns bucket %s: delete its buckets first", parts[1], b.Name)}
			}
		}
		return true, iamErr(n.iam.DeleteUser(ctx, parts[1]), func() error { w.WriteHeader(http.StatusNoContent); return nil })
	case len(parts) == 3 && parts[0] == "users" && (parts[2] == "disable" || parts[2] == "enable") && post:
		u, err := n.iam.SetUserDisabled(ctx, parts[1], parts[2] == "disable")
		return true, iamErr(err, func() error { return writeJSON(w, u) })
	case len(parts) == 3 && parts[0] == "users" && parts[2] == "keys" && get:
		if _, err := n.iam.GetUser(ctx, parts[1]); err != nil {
			return true, iamErr(err, nil)
		}
		keys, err := n.iam.ListKeys(ctx, parts[1])
		return true, iamErr(err, func() error { return writeJSON(w, keys) })
	case len(parts) == 3 && parts[0] == "users" && parts[2] == "keys" && post:
		k, secret, err := n.iam.CreateKey(ctx, parts[1])
		return true, iamErr(err, func() error {
			return writeJSONStatus(w, http.StatusCreated, struct {
				iam.Key
				SecretKey string `json:"secret_key"`
			}{k, secret})
		})
	case len(parts) == 3 && parts[0] == "users" && parts[2] == "policy" && (r.Method == http.MethodPut || del):
		var doc []byte
		if !del {
			if _, err := policy.ParseIdentity(body); err != nil {
				return true, &adminError{http.StatusBadRequest, "MalformedPolicy", err.Error()}
			}
			doc = body
		}
		u, err := n.iam.SetUserPolicy(ctx, parts[1], doc)
		n.policies.forget(parts[1])
		return true, iamErr(err, func() error { return writeJSON(w, u) })
	case len(parts) == 3 && parts[0] == "users" && parts[2] == "admin" && r.Method == http.MethodPut:
		var req struct{ Admin *bool }
		if err := strictJSON(body, &req); err != nil {
			return true, err
		}
		if req.Admin == nil {
			return true, badRequest("missing Admin")
		}
		u, err := n.iam.SetUserAdmin(ctx, parts[1], *req.Admin)
		return true, iamErr(err, func() error { return writeJSON(w, u) })
	case path == "keys" && get:
		keys, err := n.iam.ListKeys(ctx, "")
		return true, iamErr(err, func() error { return writeJSON(w, keys) })
	case len(parts) == 2 && parts[0] == "keys" && del:
		return true, iamErr(n.iam.DeleteKey(ctx, parts[1]), func() error { w.WriteHeader(http.StatusNoContent); return nil })
	case len(parts) == 3 && parts[0] == "keys" && (parts[2] == "disable" || parts[2] == "enable") && post:
		k, err := n.iam.SetKeyDisabled(ctx, parts[1], parts[2] == "disable")
		return true, iamErr(err, func() error { return writeJSON(w, k) })
	}
	return false, nil
}

// iamErr maps iam errors to admin errors, or runs ok.
func iamErr(err error, ok func() error) error {
	switch {
	case err == nil && ok != nil:
		return ok()
	case err == nil:
		return nil
	case errors.Is(err, iam.ErrNoSuchUser):
		return &adminError{http.StatusNotFound, "NoSuchUser", err.Error()}
	case errors.Is(err, iam.ErrNoSuchKey):
		return &adminError{http.StatusNotFound, "NoSuchKey", err.Error()}
	case errors.Is(err, iam.ErrUserExists):
		return &adminError{http.StatusConflict, "UserExists", err.Error()}
	case errors.Is(err, iam.ErrInvalidName):
		return badRequest("%v", err)
	}
	return err
}

func writeJSONStatus(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// mayCreateBucket enforces a user's bucket limit.
func (n *Node) mayCreateBucket(ctx context.Context, user string) bool {
	u, err := n.iam.GetUser(ctx, user)
	if err != nil || u.MaxBuckets <= 0 {
		return err == nil
	}
	owned := 0
	for _, b := range n.store.ListBuckets(ctx) {
		if b.Owner == user {
			owned++
		}
	}
	return owned < u.MaxBuckets
}

// policyCache holds users' parsed policies for iam.CacheTTL, so a request
// does not read the metadata store.
type policyCache struct {
	mu      sync.Mutex
	entries map[string]policyEntry
}

type policyEntry struct {
	p  *policy.Policy
	at time.Time
}

func (c *policyCache) clear() {
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}

func (c *policyCache) forget(user string) {
	c.mu.Lock()
	delete(c.entries, user)
	c.mu.Unlock()
}

// userPolicy is the parsed policy attached to user (nil: none).
func (n *Node) userPolicy(ctx context.Context, user string) *policy.Policy {
	c := &n.policies
	c.mu.Lock()
	e, ok := c.entries[user]
	c.mu.Unlock()
	if ok && time.Since(e.at) < iam.CacheTTL {
		return e.p
	}
	e = policyEntry{at: time.Now()}
	if u, err := n.iam.GetUser(ctx, user); err == nil && len(u.Policy) > 0 {
		if p, err := policy.ParseIdentity(u.Policy); err == nil {
			e.p = p
		}
	} else if err != nil && !errors.Is(err, iam.ErrNoSuchUser) {
		return nil // the store failed: no grant, and nothing cached
	}
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]policyEntry{}
	}
	c.entries[user] = e
	c.mu.Unlock()
	return e.p
}
