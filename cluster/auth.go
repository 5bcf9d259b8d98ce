package cluster

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RPC authentication (docs/format/rpc.md). Every request carries the
// sender's node name, a timestamp, a random nonce and the SHA-256 of its
// body, and an HMAC-SHA256 keyed with the cluster secret over all of them,
// the method, the URI and the volume parameters header. The receiver
// refuses a request whose MAC, body hash, time or nonce does not hold: a
// captured request can neither be sent again nor carry another body. A
// streamed body (shard data) is declared as such and authenticated frame by
// frame, each frame's MAC chained to the previous one and to the request's.
const (
	hdrNode  = "X-Strata-Node"
	hdrDate  = "X-Strata-Date"
	hdrNonce = "X-Strata-Nonce"
	hdrBody  = "X-Strata-Content-SHA256"
	hdrAuth  = "X-Strata-Auth"

	// ParamsHeader carries a call's parameters (JSON) under the request's
	// MAC. It is named for its first user, volume replication.
	ParamsHeader = "X-Strata-Vol"

	// streamBody in hdrBody announces a chained-MAC frame stream.
	streamBody = "STREAM"
	// maxSkew bounds how far a request's time may be from the receiver's
	// clock, and so how long its nonce is remembered. Nodes keep their
	// clocks closer than this (NTP).
	maxSkew = 30 * time.Second
	// macSize is the size of a frame MAC on the wire.
	macSize = sha256.Size
)

// Reasons an RPC request is refused, as counted in
// strata_rpc_auth_failures_total.
const (
	reasonUnsigned  = "unsigned"
	reasonSignature = "signature"
	reasonSkew      = "clock_skew"
	reasonReplay    = "replay"
	reasonBody      = "body"
)

// errUnauthenticated is what a request without a valid cluster signature gets.
var errUnauthenticated = errors.New("cluster: request not signed with the cluster secret")

// authError is a refusal with the reason it is counted under.
type authError struct {
	reason string
	err    error
}

func (e *authError) Error() string { return e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

func refuse(reason string, format string, args ...any) error {
	return &authError{reason: reason, err: fmt.Errorf("%w: "+format, append([]any{errUnauthenticated}, args...)...)}
}

// canonical is the string a request's MAC covers.
func canonical(method, uri, node, date, nonce, body, vol string) []byte {
	return []byte("strata-rpc-2\n" + method + "\n" + uri + "\n" + node + "\n" + date + "\n" + nonce + "\n" + body + "\n" + vol)
}

func requestMAC(secret string, msg []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write(msg)
	return h.Sum(nil)
}

// bodyHash is the hex SHA-256 of a whole body.
func bodyHash(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// signRequest signs r, whose whole body is body (nil for none), as node.
func signRequest(r *http.Request, secret, node string, body []byte) {
	signAs(r, secret, node, bodyHash(body))
}

// signStream signs r, whose body is a frame stream, and returns the MAC
// chain its frames are sealed with.
func signStream(r *http.Request, secret, node string) *frameMAC {
	return newFrameMAC(secret, signAs(r, secret, node, streamBody))
}

func signAs(r *http.Request, secret, node, body string) []byte {
	var n [16]byte
	rand.Read(n[:])
	date, nonce := strconv.FormatInt(time.Now().UnixNano(), 10), hex.EncodeToString(n[:])
	sig := requestMAC(secret, canonical(r.Method, r.URL.RequestURI(), node, date, nonce, body, r.Header.Get(ParamsHeader)))
	r.Header.Set(hdrNode, node)
	r.Header.Set(hdrDate, date)
	r.Header.Set(hdrNonce, nonce)
	r.Header.Set(hdrBody, body)
	r.Header.Set(hdrAuth, hex.EncodeToString(sig))
	return sig
}

// verified is what a request proved: its MAC, and the body it vouches for.
type verified struct {
	sig  []byte
	body string // hex SHA-256 of the body, or streamBody
}

// authenticator checks requests for one receiving node.
type authenticator struct {
	secret  string
	started time.Time // requests signed before are refused: the nonce cache starts empty
	nonces  nonceCache
	refused *prometheus.CounterVec
}

func newAuthenticator(secret string, reg prometheus.Registerer) *authenticator {
	a := &authenticator{secret: secret, started: time.Now(), refused: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_rpc_auth_failures_total",
		Help: "Inter-node RPC requests refused as unauthenticated, by reason (unsigned, signature, clock_skew, replay, body).",
	}, []string{"reason"})}
	for _, r := range []string{reasonUnsigned, reasonSignature, reasonSkew, reasonReplay, reasonBody} {
		a.refused.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(a.refused)
	}
	return a
}

// count records a refusal.
func (a *authenticator) count(err error) {
	var ae *authError
	if errors.As(err, &ae) {
		a.refused.WithLabelValues(ae.reason).Inc()
	}
}

// verify checks r's headers at now. The nonce is spent only once the MAC
// holds, so nobody without the secret can fill the cache.
func (a *authenticator) verify(r *http.Request, now time.Time) (verified, error) {
	node, date, nonce := r.Header.Get(hdrNode), r.Header.Get(hdrDate), r.Header.Get(hdrNonce)
	body, sigHex := r.Header.Get(hdrBody), r.Header.Get(hdrAuth)
	if date == "" || sigHex == "" || nonce == "" || body == "" {
		return verified{}, refuse(reasonUnsigned, "no signature")
	}
	ns, err := strconv.ParseInt(date, 10, 64)
	if err != nil {
		return verified{}, refuse(reasonUnsigned, "bad date")
	}
	sig, err := hex.DecodeString(sigHex)
	if err != nil {
		return verified{}, refuse(reasonSignature, "bad signature encoding")
	}
	nb, err := hex.DecodeString(nonce)
	if err != nil || len(nb) != 16 {
		return verified{}, refuse(reasonUnsigned, "bad nonce")
	}
	want := requestMAC(a.secret, canonical(r.Method, r.URL.RequestURI(), node, date, nonce, body, r.Header.Get(ParamsHeader)))
	if !hmac.Equal(want, sig) {
		return verified{}, refuse(reasonSignature, "signature does not match")
	}
	at := time.Unix(0, ns)
	if d := now.Sub(at); d > maxSkew || d < -maxSkew {
		return verified{}, refuse(reasonSkew, "request time is %v from this node's clock (at most %v: keep node clocks in sync)", d.Round(time.Millisecond), maxSkew)
	}
	if at.Before(a.started) {
		return verified{}, refuse(reasonReplay, "request signed before this node started")
	}
	if !a.nonces.spend([16]byte(nb), now) {
		return verified{}, refuse(reasonReplay, "request already seen (replay)")
	}
	if body != streamBody && (len(body) != 2*sha256.Size || !isHex(body)) {
		return verified{}, refuse(reasonBody, "bad body hash")
	}
	return verified{sig: sig, body: body}, nil
}

func isHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// checkBody verifies a whole body against the hash its request signed.
func (v verified) checkBody(body []byte) error {
	if v.body == streamBody {
		return refuse(reasonBody, "a streamed body where a whole one was signed")
	}
	if bodyHash(body) != v.body {
		return refuse(reasonBody, "body does not match its signature")
	}
	return nil
}

// nonceCache remembers the nonces of accepted requests for as long as
// their time is within the window: entries go into cur, which becomes prev
// after 2*maxSkew and is dropped after another 2*maxSkew, so each nonce is
// held at least 2*maxSkew, past the end of its request's validity (its
// time is at most maxSkew ahead of the clock). Memory is bounded by the
// rate of authenticated requests times 4*maxSkew.
type nonceCache struct {
	mu        sync.Mutex
	cur, prev map[[16]byte]struct{}
	rotated   time.Time
}

func (c *nonceCache) spend(n [16]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		c.cur, c.rotated = map[[16]byte]struct{}{}, now
	}
	if now.Sub(c.rotated) >= 2*maxSkew {
		c.prev, c.cur, c.rotated = c.cur, map[[16]byte]struct{}{}, now
	}
	if _, ok := c.cur[n]; ok {
		return false
	}
	if _, ok := c.prev[n]; ok {
		return false
	}
	c.cur[n] = struct{}{}
	return true
}

func (c *nonceCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.prev)
}

// frameMAC seals the frames of one stream: the MAC of a frame covers the
// previous frame's MAC (the request's signature for the first), the
// frame's length and its bytes, keyed by a key derived from the request's
// signature, so frames cannot be altered, reordered, dropped or taken from
// another stream, and the end of the stream (a zero-length frame) is
// authenticated too.
type frameMAC struct {
	h    hash.Hash
	prev [macSize]byte
}

func newFrameMAC(secret string, sig []byte) *frameMAC {
	kh := hmac.New(sha256.New, []byte(secret))
	kh.Write([]byte("strata-rpc-2 stream\n"))
	kh.Write(sig)
	f := &frameMAC{h: hmac.New(sha256.New, kh.Sum(nil))}
	copy(f.prev[:], sig)
	return f
}

// next returns the MAC of the frame rec (nil for the final frame) and
// advances the chain.
func (f *frameMAC) next(rec []byte) [macSize]byte {
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(rec)))
	f.h.Reset()
	f.h.Write(f.prev[:])
	f.h.Write(n[:])
	f.h.Write(rec)
	f.h.Sum(f.prev[:0])
	return f.prev
}

// check verifies the MAC that came with frame rec.
func (f *frameMAC) check(rec, got []byte) error {
	want := f.next(rec)
	if !hmac.Equal(want[:], got) {
		return refuse(reasonBody, "stream frame does not match its signature")
	}
	return nil
}
