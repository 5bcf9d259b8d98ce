package tlspsk

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Record content types.
const (
	typeChangeCipherSpec = 20
	typeAlert            = 21
	typeHandshake        = 22
	typeApplicationData  = 23
)

// Alert descriptions sent.
const (
	alertCloseNotify         = 0
	alertUnexpectedMessage   = 10
	alertBadRecordMAC        = 20
	alertRecordOverflow      = 22
	alertHandshakeFailure    = 40
	alertIllegalParameter    = 47
	alertDecodeError         = 50
	alertDecryptError        = 51
	alertProtocolVersion     = 70
	alertInternalError       = 80
	alertNoRenegotiation     = 100
	alertUnknownPSKIdentity  = 115
	alertLevelWarning        = 1
	alertLevelFatal          = 2
	maxPlaintext             = 1 << 14
	maxCiphertext            = maxPlaintext + 2048 // RFC 5246 6.2.3
	recordHeaderLen          = 5
	gcmExplicitNonceLen      = 8
	gcmTagLen                = 16
	gcmFixedIVLen            = 4
	versionTLS12             = 0x0303
	maxHandshakeMessageBytes = 64 << 10
)

// alertError is a fatal alert, received or to send.
type alertError struct {
	desc     uint8
	received bool
}

func (e alertError) Error() string {
	who := "sent"
	if e.received {
		who = "received"
	}
	return fmt.Sprintf("tls-psk: %s alert %d (%s)", who, e.desc, alertName(e.desc))
}

func alertName(d uint8) string {
	switch d {
	case alertCloseNotify:
		return "close notify"
	case alertUnexpectedMessage:
		return "unexpected message"
	case alertBadRecordMAC:
		return "bad record MAC"
	case alertRecordOverflow:
		return "record overflow"
	case alertHandshakeFailure:
		return "handshake failure"
	case alertIllegalParameter:
		return "illegal parameter"
	case alertDecodeError:
		return "decode error"
	case alertDecryptError:
		return "decrypt error"
	case alertProtocolVersion:
		return "protocol version"
	case alertInternalError:
		return "internal error"
	case alertNoRenegotiation:
		return "no renegotiation"
	case alertUnknownPSKIdentity:
		return "unknown PSK identity"
	}
	return "other"
}

// halfConn is one direction of the record layer: plaintext until keys are
// set, then AES-GCM with the sequence number as explicit nonce.
type halfConn struct {
	aead cipher.AEAD
	iv   [gcmFixedIVLen]byte
	seq  uint64
}

func (h *halfConn) setKey(key, iv []byte) error {
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	h.aead, h.seq = aead, 0
	copy(h.iv[:], iv)
	return nil
}

// additionalData is seq_num + type + version + length (RFC 5246 6.2.3.3).
func (h *halfConn) additionalData(typ uint8, n int) []byte {
	var ad [13]byte
	binary.BigEndian.PutUint64(ad[:], h.seq)
	ad[8] = typ
	binary.BigEndian.PutUint16(ad[9:], versionTLS12)
	binary.BigEndian.PutUint16(ad[11:], uint16(n))
	return ad[:]
}

func (h *halfConn) nonce(explicit []byte) []byte {
	var n [12]byte
	copy(n[:], h.iv[:])
	copy(n[4:], explicit)
	return n[:]
}

// recordReader reads records from the peer.
type recordReader struct {
	r    io.Reader
	half halfConn
	hdr  [recordHeaderLen]byte
	buf  []byte
	// raw, when set, collects every byte read (for replaying a peeked
	// ClientHello to another TLS implementation).
	raw *[]byte
}

// next reads one record and returns its type and plaintext; the plaintext
// aliases a buffer the next call reuses.
func (rr *recordReader) next() (uint8, []byte, error) {
	if _, err := io.ReadFull(rr.r, rr.hdr[:]); err != nil {
		return 0, nil, err
	}
	typ := rr.hdr[0]
	n := int(binary.BigEndian.Uint16(rr.hdr[3:]))
	if rr.hdr[1] != 3 {
		return 0, nil, alertError{desc: alertProtocolVersion}
	}
	if n > maxCiphertext || (rr.half.aead == nil && n > maxPlaintext) {
		return 0, nil, alertError{desc: alertRecordOverflow}
	}
	if cap(rr.buf) < n {
		rr.buf = make([]byte, n, maxCiphertext)
	}
	body := rr.buf[:n]
	if _, err := io.ReadFull(rr.r, body); err != nil {
		return 0, nil, err
	}
	if rr.raw != nil {
		*rr.raw = append(*rr.raw, rr.hdr[:]...)
		*rr.raw = append(*rr.raw, body...)
	}
	if rr.half.aead == nil {
		return typ, body, nil
	}
	if n < gcmExplicitNonceLen+gcmTagLen {
		return 0, nil, alertError{desc: alertBadRecordMAC}
	}
	plainLen := n - gcmExplicitNonceLen - gcmTagLen
	if plainLen > maxPlaintext {
		return 0, nil, alertError{desc: alertRecordOverflow}
	}
	ad := rr.half.additionalData(typ, plainLen)
	plain, err := rr.half.aead.Open(body[gcmExplicitNonceLen:gcmExplicitNonceLen], rr.half.nonce(body[:gcmExplicitNonceLen]), body[gcmExplicitNonceLen:], ad)
	if err != nil {
		return 0, nil, alertError{desc: alertBadRecordMAC}
	}
	rr.half.seq++
	return typ, plain, nil
}

// recordWriter writes records to the peer; safe for one writer at a time
// (Conn serialises).
type recordWriter struct {
	mu   sync.Mutex
	w    io.Writer
	half halfConn
	out  []byte
}

// write sends data as records of type typ, split at the record limit.
func (rw *recordWriter) write(typ uint8, data []byte) error {
	for first := true; first || len(data) > 0; first = false {
		chunk := data
		if len(chunk) > maxPlaintext {
			chunk = chunk[:maxPlaintext]
		}
		data = data[len(chunk):]
		out := append(rw.out[:0], typ, 3, 3, 0, 0)
		if rw.half.aead == nil {
			out = append(out, chunk...)
		} else {
			var explicit [gcmExplicitNonceLen]byte
			binary.BigEndian.PutUint64(explicit[:], rw.half.seq)
			out = append(out, explicit[:]...)
			out = rw.half.aead.Seal(out, rw.half.nonce(explicit[:]), chunk, rw.half.additionalData(typ, len(chunk)))
			rw.half.seq++
		}
		binary.BigEndian.PutUint16(out[3:], uint16(len(out)-recordHeaderLen))
		rw.out = out
		if _, err := rw.w.Write(out); err != nil {
			return err
		}
	}
	return nil
}

// sendAlert writes an alert; errors are ignored since the connection is
// being given up anyway.
func (rw *recordWriter) sendAlert(level, desc uint8) {
	rw.write(typeAlert, []byte{level, desc})
}

// errRenegotiation is returned when the peer starts a second handshake.
var errRenegotiation = errors.New("tls-psk: the peer asked to renegotiate, which this server does not do")
