package tlspsk

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
)

// Handshake message types.
const (
	hsClientHello       = 1
	hsServerHello       = 2
	hsServerHelloDone   = 14
	hsClientKeyExchange = 16
	hsFinished          = 20
)

// Extensions the server looks at.
const (
	extExtendedMasterSecret = 0x0017
	extRenegotiationInfo    = 0xff01
	scsvRenegotiation       = 0x00ff
)

// The suites spoken, in the server's order of preference.
const (
	SuitePSKWithAES256GCMSHA384 uint16 = 0x00a9
	SuitePSKWithAES128GCMSHA256 uint16 = 0x00a8
)

type suite struct {
	id     uint16
	keyLen int
	hash   func() hash.Hash
}

var suites = []suite{
	{SuitePSKWithAES256GCMSHA384, 32, sha512.New384},
	{SuitePSKWithAES128GCMSHA256, 16, sha256.New},
}

// Keys returns the pre-shared key of an identity, and whether there is one.
type Keys func(identity string) ([]byte, bool)

// Hello is a ClientHello read off a connection, before deciding who
// answers it.
type Hello struct {
	raw          []byte // every byte read, records and all
	msg          []byte // the ClientHello handshake message, header included
	random       [32]byte
	suites       []uint16
	ems          bool // extended_master_secret offered
	secureReneg  bool // renegotiation_info or its SCSV offered
	version      uint16
	hasNullCompr bool
}

// OffersPSK reports whether the client offered a suite this package speaks.
func (h *Hello) OffersPSK() bool { _, ok := h.choose(); return ok }

func (h *Hello) choose() (suite, bool) {
	for _, s := range suites {
		for _, id := range h.suites {
			if id == s.id {
				return s, true
			}
		}
	}
	return suite{}, false
}

// ReadHello reads the first handshake message of a TLS client, which must
// be a ClientHello.
func ReadHello(r io.Reader) (*Hello, error) {
	h := &Hello{}
	rr := &recordReader{r: r, raw: &h.raw}
	var pending []byte
	for len(pending) < 4 || len(pending) < 4+handshakeLen(pending) {
		typ, body, err := rr.next()
		if err != nil {
			return nil, err
		}
		if typ != typeHandshake {
			return nil, fmt.Errorf("tls-psk: first record is of type %d, not a handshake", typ)
		}
		pending = append(pending, body...)
		if len(pending) >= 4 && handshakeLen(pending) > maxHandshakeMessageBytes {
			return nil, errors.New("tls-psk: ClientHello too large")
		}
	}
	if pending[0] != hsClientHello {
		return nil, fmt.Errorf("tls-psk: first handshake message is of type %d, not ClientHello", pending[0])
	}
	if len(pending) != 4+handshakeLen(pending) {
		return nil, errors.New("tls-psk: data after the ClientHello before the server answered")
	}
	h.msg = pending
	if err := h.parse(pending[4:]); err != nil {
		return nil, err
	}
	return h, nil
}

func handshakeLen(m []byte) int { return int(m[1])<<16 | int(m[2])<<8 | int(m[3]) }

// parse decodes a ClientHello body (RFC 5246 7.4.1.2).
func (h *Hello) parse(b []byte) error {
	d := decoder{b: b}
	h.version = d.u16()
	copy(h.random[:], d.bytes(32))
	if sid := d.vec8(); len(sid) > 32 {
		d.fail()
	}
	cs := d.vec16()
	if len(cs)%2 != 0 || len(cs) == 0 {
		d.fail()
	}
	for i := 0; i+1 < len(cs); i += 2 {
		id := binary.BigEndian.Uint16(cs[i:])
		h.suites = append(h.suites, id)
		if id == scsvRenegotiation {
			h.secureReneg = true
		}
	}
	h.hasNullCompr = bytes.IndexByte(d.vec8(), 0) >= 0
	if !d.empty() {
		exts := decoder{b: d.vec16()}
		for !exts.empty() && !exts.bad {
			typ, data := exts.u16(), exts.vec16()
			switch typ {
			case extExtendedMasterSecret:
				if len(data) != 0 {
					return alertError{desc: alertDecodeError}
				}
				h.ems = true
			case extRenegotiationInfo:
				// An initial handshake carries an empty renegotiated_connection.
				if !bytes.Equal(data, []byte{0}) {
					return alertError{desc: alertHandshakeFailure}
				}
				h.secureReneg = true
			}
		}
		if exts.bad {
			d.fail()
		}
	}
	if d.bad || !d.empty() {
		return alertError{desc: alertDecodeError}
	}
	return nil
}

// Replay returns c with the hello's bytes put back in front of what c
// reads, for another TLS implementation to handle the connection.
func (h *Hello) Replay(c net.Conn) net.Conn {
	return &replayConn{Conn: c, r: io.MultiReader(bytes.NewReader(h.raw), c)}
}

type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Server completes the handshake that hello began on c, with the key that
// keys gives for the identity the client names. An unknown identity fails
// like a wrong key (decrypt_error), so identities cannot be probed.
func Server(c net.Conn, hello *Hello, keys Keys) (*Conn, error) {
	conn := &Conn{Conn: c}
	conn.in.r, conn.out.w = c, c
	if err := conn.handshake(hello, keys); err != nil {
		var a alertError
		if errors.As(err, &a) && !a.received {
			conn.out.sendAlert(alertLevelFatal, a.desc)
		}
		return nil, err
	}
	return conn, nil
}

func (c *Conn) handshake(h *Hello, keys Keys) error {
	if h.version < versionTLS12 {
		return alertError{desc: alertProtocolVersion}
	}
	if !h.hasNullCompr {
		return alertError{desc: alertIllegalParameter}
	}
	s, ok := h.choose()
	if !ok {
		return alertError{desc: alertHandshakeFailure}
	}
	transcript := append([]byte(nil), h.msg...)

	var serverRandom [32]byte
	if _, err := rand.Read(serverRandom[:]); err != nil {
		return alertError{desc: alertInternalError}
	}
	var exts []byte
	if h.secureReneg {
		exts = append(exts, 0xff, 0x01, 0, 1, 0)
	}
	if h.ems {
		exts = append(exts, 0x00, 0x17, 0, 0)
	}
	body := []byte{3, 3}
	body = append(body, serverRandom[:]...)
	body = append(body, 0) // no session id: no resumption
	body = binary.BigEndian.AppendUint16(body, s.id)
	body = append(body, 0) // null compression
	if len(exts) > 0 {
		body = binary.BigEndian.AppendUint16(body, uint16(len(exts)))
		body = append(body, exts...)
	}
	flight := appendHandshake(nil, hsServerHello, body)
	// No ServerKeyExchange: the server gives no identity hint (RFC 4279 2).
	flight = appendHandshake(flight, hsServerHelloDone, nil)
	transcript = append(transcript, flight...)
	if err := c.out.write(typeHandshake, flight); err != nil {
		return err
	}

	hs := handshakeReader{rr: &c.in}
	cke, err := hs.message(hsClientKeyExchange)
	if err != nil {
		return err
	}
	d := decoder{b: cke[4:]}
	identity := d.vec16()
	if d.bad || !d.empty() {
		return alertError{desc: alertDecodeError}
	}
	transcript = append(transcript, cke...)
	psk, known := keys(string(identity))
	if !known || len(psk) == 0 {
		psk = make([]byte, 32)
		rand.Read(psk)
	}

	var master []byte
	pms := premaster(psk)
	if h.ems {
		master = prf(s.hash, pms, "extended master secret", digest(s.hash, transcript), 48)
	} else {
		master = prf(s.hash, pms, "master secret", append(h.random[:], serverRandom[:]...), 48)
	}
	kb := prf(s.hash, master, "key expansion", append(serverRandom[:], h.random[:]...), 2*s.keyLen+2*gcmFixedIVLen)
	clientKey, serverKey := kb[:s.keyLen], kb[s.keyLen:2*s.keyLen]
	clientIV, serverIV := kb[2*s.keyLen:2*s.keyLen+4], kb[2*s.keyLen+4:]

	if err := hs.changeCipherSpec(); err != nil {
		return err
	}
	if err := c.in.half.setKey(clientKey, clientIV); err != nil {
		return alertError{desc: alertInternalError}
	}
	fin, err := hs.message(hsFinished)
	if err != nil {
		return err
	}
	want := prf(s.hash, master, "client finished", digest(s.hash, transcript), 12)
	if !hmac.Equal(fin[4:], want) {
		return alertError{desc: alertDecryptError}
	}
	if hs.buffered() {
		return alertError{desc: alertUnexpectedMessage}
	}
	transcript = append(transcript, fin...)

	if err := c.out.write(typeChangeCipherSpec, []byte{1}); err != nil {
		return err
	}
	if err := c.out.half.setKey(serverKey, serverIV); err != nil {
		return alertError{desc: alertInternalError}
	}
	verify := prf(s.hash, master, "server finished", digest(s.hash, transcript), 12)
	if err := c.out.write(typeHandshake, appendHandshake(nil, hsFinished, verify)); err != nil {
		return err
	}
	c.identity, c.suite = string(identity), s.id
	return nil
}

// premaster is the PSK premaster secret (RFC 4279 2): N zero bytes as the
// other secret, then the key, each with its length.
func premaster(psk []byte) []byte {
	n := len(psk)
	out := binary.BigEndian.AppendUint16(nil, uint16(n))
	out = append(out, make([]byte, n)...)
	out = binary.BigEndian.AppendUint16(out, uint16(n))
	return append(out, psk...)
}

func digest(h func() hash.Hash, b []byte) []byte {
	d := h()
	d.Write(b)
	return d.Sum(nil)
}

// prf is TLS 1.2's PRF, P_hash(secret, label + seed) (RFC 5246 5).
func prf(h func() hash.Hash, secret []byte, label string, seed []byte, n int) []byte {
	ls := append([]byte(label), seed...)
	mac := hmac.New(h, secret)
	mac.Write(ls)
	a := mac.Sum(nil)
	out := make([]byte, 0, n+mac.Size())
	for len(out) < n {
		mac.Reset()
		mac.Write(a)
		mac.Write(ls)
		out = mac.Sum(out)
		mac.Reset()
		mac.Write(a)
		a = mac.Sum(a[:0])
	}
	return out[:n]
}

func appendHandshake(out []byte, typ uint8, body []byte) []byte {
	n := len(body)
	out = append(out, typ, byte(n>>16), byte(n>>8), byte(n))
	return append(out, body...)
}

// handshakeReader reassembles handshake messages from records.
type handshakeReader struct {
	rr      *recordReader
	pending []byte
}

func (hs *handshakeReader) buffered() bool { return len(hs.pending) > 0 }

// message returns the next handshake message, which must be of type want.
func (hs *handshakeReader) message(want uint8) ([]byte, error) {
	for len(hs.pending) < 4 || len(hs.pending) < 4+handshakeLen(hs.pending) {
		if len(hs.pending) >= 4 && handshakeLen(hs.pending) > maxHandshakeMessageBytes {
			return nil, alertError{desc: alertDecodeError}
		}
		typ, body, err := hs.rr.next()
		if err != nil {
			return nil, err
		}
		switch typ {
		case typeHandshake:
			hs.pending = append(hs.pending, body...)
		case typeAlert:
			return nil, receivedAlert(body)
		default:
			return nil, alertError{desc: alertUnexpectedMessage}
		}
	}
	n := 4 + handshakeLen(hs.pending)
	msg := append([]byte(nil), hs.pending[:n]...)
	hs.pending = hs.pending[n:]
	if msg[0] != want {
		return nil, alertError{desc: alertUnexpectedMessage}
	}
	return msg, nil
}

// changeCipherSpec reads the ChangeCipherSpec record, which must not
// split a handshake message.
func (hs *handshakeReader) changeCipherSpec() error {
	if hs.buffered() {
		return alertError{desc: alertUnexpectedMessage}
	}
	typ, body, err := hs.rr.next()
	if err != nil {
		return err
	}
	switch {
	case typ == typeAlert:
		return receivedAlert(body)
	case typ != typeChangeCipherSpec || !bytes.Equal(body, []byte{1}):
		return alertError{desc: alertUnexpectedMessage}
	}
	return nil
}

func receivedAlert(body []byte) error {
	if len(body) != 2 {
		return alertError{desc: alertDecodeError}
	}
	return alertError{desc: body[1], received: true}
}

// decoder reads big-endian fields and length-prefixed vectors; a short
// read sets bad instead of panicking.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) fail()       { d.bad, d.b = true, nil }
func (d *decoder) empty() bool { return len(d.b) == 0 }

func (d *decoder) bytes(n int) []byte {
	if d.bad || len(d.b) < n {
		d.fail()
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) u16() uint16 {
	b := d.bytes(2)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

func (d *decoder) vec8() []byte {
	b := d.bytes(1)
	if b == nil {
		return nil
	}
	return d.bytes(int(b[0]))
}

func (d *decoder) vec16() []byte { return d.bytes(int(d.u16())) }
