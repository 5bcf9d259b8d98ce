// Package iam keeps users and their access keys in the metadata store.
// A key's secret is sealed (AES-256-GCM, the access key as associated
// data) with a master key only the servers hold: a file in a single
// node's data dir, or one derived from the cluster secret, which is never
// written to the metadata store. So the store's contents alone (an etcd
// backup, say) reveal no secret.
package iam

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/strata-storage/strata/atomicfile"
	"github.com/strata-storage/strata/metastore"
)

// Errors callers map to API errors.
var (
	ErrNoSuchUser  = errors.New("iam: no such user")
	ErrUserExists  = errors.New("iam: user exists")
	ErrNoSuchKey   = errors.New("iam: no such access key")
	ErrInvalidName = errors.New("iam: invalid user name")
	ErrSealed      = errors.New("iam: a secret cannot be unsealed with this master key")
)

// User is an account that owns buckets and holds access keys.
type User struct {
	Name string `json:"name"`
	// CanonicalID is the user's S3 canonical user id (64 hex digits),
	// random at creation; see CanonicalIDOf for users made before.
	CanonicalID string `json:"canonical_id,omitempty"`
	// Email, if set, names the user in S3 ACL grants by emailAddress.
	Email    string    `json:"email,omitempty"`
	Disabled bool      `json:"disabled,omitempty"`
	Created  time.Time `json:"created"`
	Quota    Quota     `json:"quota,omitzero"`
	// Admin users may call the admin API, as root does.
	Admin bool `json:"admin,omitempty"`
	// MaxBuckets bounds how many buckets the user may own (0: no bound).
	MaxBuckets int `json:"max_buckets,omitempty"`
	// Policy is an IAM-style policy attached to the user (the bucket
	// policy language without Principal), or nil.
	Policy json.RawMessage `json:"policy,omitempty"`
}

// Quota bounds what a user's buckets (or one bucket) hold; 0 is no
// bound.
type Quota struct {
	MaxBytes   int64 `json:"max_bytes,omitempty"`
	MaxObjects int64 `json:"max_objects,omitempty"`
}

// Set reports whether the quota bounds anything.
func (q Quota) Set() bool { return q.MaxBytes > 0 || q.MaxObjects > 0 }

// Allows reports whether adding bytes and objects to what is held
// (usage) stays within the quota.
func (q Quota) Allows(usage interface{ Held() (int64, int64) }, bytes, objects int64) bool {
	b, o := usage.Held()
	return (q.MaxBytes <= 0 || b+bytes <= q.MaxBytes) && (q.MaxObjects <= 0 || o+objects <= q.MaxObjects)
}

// SetUserAdmin grants or revokes admin rights.
func (s *Store) SetUserAdmin(ctx context.Context, name string, admin bool) (User, error) {
	u, err := s.GetUser(ctx, name)
	if err != nil {
		return User{}, err
	}
	u.Admin = admin
	return u, putJSON(ctx, s.meta, userPrefix+name, u)
}

// SetUserPolicy attaches a policy document to a user (nil detaches it);
// the caller validates it.
func (s *Store) SetUserPolicy(ctx context.Context, name string, doc []byte) (User, error) {
	u, err := s.GetUser(ctx, name)
	if err != nil {
		return User{}, err
	}
	u.Policy = append(json.RawMessage(nil), doc...)
	if doc == nil {
		u.Policy = nil
	}
	return u, putJSON(ctx, s.meta, userPrefix+name, u)
}

// SetUserQuota sets (or, with a zero quota, clears) a user's quota.
func (s *Store) SetUserQuota(ctx context.Context, name string, q Quota) (User, error) {
	u, err := s.GetUser(ctx, name)
	if err != nil {
		return User{}, err
	}
	u.Quota = q
	return u, putJSON(ctx, s.meta, userPrefix+name, u)
}

// Key is an access key of a user. Sealed is the encrypted secret; it is
// never returned by the listing calls.
type Key struct {
	AccessKey string    `json:"access_key"`
	User      string    `json:"user"`
	Disabled  bool      `json:"disabled,omitempty"`
	Created   time.Time `json:"created"`
	Sealed    []byte    `json:"sealed,omitempty"`
}

// Keys under the store's prefix.
const (
	userPrefix = "users/"
	keyPrefix  = "keys/"
)

// Store manages users and keys.
type Store struct {
	meta   metastore.Store
	aead   cipher.AEAD
	ttl    time.Duration
	rootID string

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	secret, user string
	ok           bool
	at           time.Time
}

// CacheTTL is how long a looked-up key is trusted before it is read
// again: how long a disabled user or key may still sign on another node.
const CacheTTL = 2 * time.Second

// New returns a store sealing secrets with the 32-byte masterKey.
func New(meta metastore.Store, masterKey []byte) (*Store, error) {
	if len(masterKey) != 32 {
		return nil, fmt.Errorf("iam: master key of %d bytes, want 32", len(masterKey))
	}
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, masterKey)
	mac.Write([]byte("strata root canonical user id"))
	rootID := hex.EncodeToString(mac.Sum(nil))
	return &Store{meta: meta, aead: aead, ttl: CacheTTL, cache: map[string]cached{}, rootID: rootID}, nil
}

// RootCanonicalID is the root user's canonical id: derived from the master
// key, so every node of a cluster and every restart gives the same.
func (s *Store) RootCanonicalID() string { return s.rootID }

// CanonicalIDOf is u's canonical id. Users created before ids were stored
// get one derived from their name and creation time: stable, and not
// inherited by a later user of the same name.
func CanonicalIDOf(u User) string {
	if u.CanonicalID != "" {
		return u.CanonicalID
	}
	sum := sha256.Sum256([]byte("strata user\x00" + u.Name + "\x00" + u.Created.UTC().Format(time.RFC3339Nano)))
	return hex.EncodeToString(sum[:])
}

// MasterKeyFromSecret derives the master key every node of a cluster
// shares from the cluster secret.
func MasterKeyFromSecret(clusterSecret string) ([]byte, error) {
	if clusterSecret == "" {
		return nil, errors.New("iam: no cluster secret to derive the master key from")
	}
	return hkdf.Key(sha256.New, []byte(clusterSecret), []byte("strata"), "strata iam master key v1", 32)
}

// LoadOrCreateMasterKey reads a single node's master key file (hex),
// creating it (mode 0600) with a random key the first time.
func LoadOrCreateMasterKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(k) != 32 {
			return nil, fmt.Errorf("iam: master key file %s is not 32 hex-encoded bytes", path)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	k := make([]byte, 32)
	rand.Read(k)
	if err := atomicfile.Create(path, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("iam: master key: %w", err)
	}
	return k, nil
}

// ValidUserName reports whether name can name a user (IAM's rules).
func ValidUserName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("+=,.@_-", c)) {
			return false
		}
	}
	return true
}

func (s *Store) seal(access, secret string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, []byte(secret), []byte(access))
}

func (s *Store) open(access string, sealed []byte) (string, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return "", ErrSealed
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(access))
	if err != nil {
		return "", ErrSealed
	}
	return string(plain), nil
}

func getJSON[T any](ctx context.Context, m metastore.Store, key string, notFound error) (T, error) {
	var v T
	b, err := m.Get(ctx, key)
	if errors.Is(err, metastore.ErrNotFound) {
		return v, notFound
	}
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("iam: record %s: %w", key, err)
	}
	return v, nil
}

func putJSON(ctx context.Context, m metastore.Store, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return m.Put(ctx, key, b)
}

// CreateUser adds an enabled user.
func (s *Store) CreateUser(ctx context.Context, name string) (User, error) {
	return s.CreateUserWith(ctx, User{Name: name})
}

// CreateUserWith adds an enabled user with u's quota and bucket limit.
func (s *Store) CreateUserWith(ctx context.Context, u User) (User, error) {
	name := u.Name
	if !ValidUserName(name) {
		return User{}, fmt.Errorf("%w: %q (1-64 of A-Z a-z 0-9 +=,.@_-)", ErrInvalidName, name)
	}
	if u.Email != "" {
		if _, err := mail.ParseAddress(u.Email); err != nil || strings.ContainsAny(u.Email, "<> ") {
			return User{}, fmt.Errorf("%w: email %q", ErrInvalidName, u.Email)
		}
		users, err := s.ListUsers(ctx)
		if err != nil {
			return User{}, err
		}
		for _, o := range users {
			if strings.EqualFold(o.Email, u.Email) {
				return User{}, fmt.Errorf("%w: email %s is %s's", ErrUserExists, u.Email, o.Name)
			}
		}
	}
	u.Disabled, u.Created = false, time.Now().UTC()
	var id [32]byte
	rand.Read(id[:])
	u.CanonicalID = hex.EncodeToString(id[:])
	b, _ := json.Marshal(u)
	ok, err := s.meta.PutIfAbsent(ctx, userPrefix+name, b)
	if err != nil {
		return User{}, err
	}
	if !ok {
		return User{}, fmt.Errorf("%w: %s", ErrUserExists, name)
	}
	return u, nil
}

// GetUser returns a user.
func (s *Store) GetUser(ctx context.Context, name string) (User, error) {
	u, err := getJSON[User](ctx, s.meta, userPrefix+name, fmt.Errorf("%w: %s", ErrNoSuchUser, name))
	u.CanonicalID = CanonicalIDOf(u)
	return u, err
}

// ListUsers returns every user, by name.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	kvs, err := s.meta.List(ctx, userPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]User, 0, len(kvs))
	for _, kv := range kvs {
		var u User
		if err := json.Unmarshal(kv.Value, &u); err != nil {
			return nil, fmt.Errorf("iam: user record %s: %w", kv.Key, err)
		}
		u.CanonicalID = CanonicalIDOf(u)
		out = append(out, u)
	}
	return out, nil
}

// SetUserDisabled enables or disables a user (and so all its keys).
func (s *Store) SetUserDisabled(ctx context.Context, name string, disabled bool) (User, error) {
	u, err := s.GetUser(ctx, name)
	if err != nil {
		return User{}, err
	}
	u.Disabled = disabled
	if err := putJSON(ctx, s.meta, userPrefix+name, u); err != nil {
		return User{}, err
	}
	s.forget("")
	return u, nil
}

// DeleteUser removes a user and its keys.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	if _, err := s.GetUser(ctx, name); err != nil {
		return err
	}
	keys, err := s.ListKeys(ctx, name)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := s.meta.Delete(ctx, keyPrefix+k.AccessKey); err != nil {
			return err
		}
	}
	s.forget("")
	return s.meta.Delete(ctx, userPrefix+name)
}

const (
	accessAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// CreateKey makes a new access key for user and returns it with its
// secret, which is not shown again.
func (s *Store) CreateKey(ctx context.Context, user string) (Key, string, error) {
	if _, err := s.GetUser(ctx, user); err != nil {
		return Key{}, "", err
	}
	for range 5 {
		k := Key{AccessKey: "STRK" + randomString(16, accessAlphabet), User: user, Created: time.Now().UTC()}
		secret := randomString(40, secretAlphabet)
		k.Sealed = s.seal(k.AccessKey, secret)
		b, _ := json.Marshal(k)
		ok, err := s.meta.PutIfAbsent(ctx, keyPrefix+k.AccessKey, b)
		if err != nil {
			return Key{}, "", err
		}
		if ok {
			k.Sealed = nil
			return k, secret, nil
		}
	}
	return Key{}, "", errors.New("iam: no unused access key after 5 tries")
}

func (s *Store) getKey(ctx context.Context, access string) (Key, error) {
	return getJSON[Key](ctx, s.meta, keyPrefix+access, fmt.Errorf("%w: %s", ErrNoSuchKey, access))
}

// ListKeys returns a user's keys (all keys when user is ""), without
// their secrets.
func (s *Store) ListKeys(ctx context.Context, user string) ([]Key, error) {
	kvs, err := s.meta.List(ctx, keyPrefix)
	if err != nil {
		return nil, err
	}
	var out []Key
	for _, kv := range kvs {
		var k Key
		if err := json.Unmarshal(kv.Value, &k); err != nil {
			return nil, fmt.Errorf("iam: key record %s: %w", kv.Key, err)
		}
		if user == "" || k.User == user {
			k.Sealed = nil
			out = append(out, k)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Created.Before(out[b].Created) })
	return out, nil
}

// SetKeyDisabled enables or disables one key.
func (s *Store) SetKeyDisabled(ctx context.Context, access string, disabled bool) (Key, error) {
	k, err := s.getKey(ctx, access)
	if err != nil {
		return Key{}, err
	}
	k.Disabled = disabled
	if err := putJSON(ctx, s.meta, keyPrefix+access, k); err != nil {
		return Key{}, err
	}
	s.forget(access)
	k.Sealed = nil
	return k, nil
}

// DeleteKey removes one key.
func (s *Store) DeleteKey(ctx context.Context, access string) error {
	if _, err := s.getKey(ctx, access); err != nil {
		return err
	}
	s.forget(access)
	return s.meta.Delete(ctx, keyPrefix+access)
}

// Invalidate drops every cached lookup: another process changed a user or
// key (a watch on the shared store calls it).
func (s *Store) Invalidate() { s.forget("") }

// forget drops a cached key (every key when access is "").
func (s *Store) forget(access string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if access == "" {
		clear(s.cache)
		return
	}
	delete(s.cache, access)
}

// Lookup returns the secret and user of an enabled key of an enabled
// user. Answers are cached for CacheTTL, misses included.
func (s *Store) Lookup(ctx context.Context, access string) (secret, user string, ok bool) {
	s.mu.Lock()
	c, hit := s.cache[access]
	s.mu.Unlock()
	if hit && time.Since(c.at) < s.ttl {
		return c.secret, c.user, c.ok
	}
	c = cached{at: time.Now()}
	if k, err := s.getKey(ctx, access); err == nil && !k.Disabled {
		if u, err := s.GetUser(ctx, k.User); err == nil && !u.Disabled {
			if sec, err := s.open(access, k.Sealed); err == nil {
				c.secret, c.user, c.ok = sec, k.User, true
			}
		}
	} else if err != nil && !errors.Is(err, ErrNoSuchKey) {
		return "", "", false // the store failed: do not cache
	}
	s.mu.Lock()
	s.cache[access] = c
	s.mu.Unlock()
	return c.secret, c.user, c.ok
}
