package tlspsk

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// helloRecord builds a ClientHello record offering suites and extensions.
func helloRecord(version uint16, suites []uint16, exts []byte) []byte {
	body := binary.BigEndian.AppendUint16(nil, version)
	body = append(body, make([]byte, 32)...)
	body = append(body, 0)
	body = binary.BigEndian.AppendUint16(body, uint16(2*len(suites)))
	for _, s := range suites {
		body = binary.BigEndian.AppendUint16(body, s)
	}
	body = append(body, 1, 0)
	if exts != nil {
		body = binary.BigEndian.AppendUint16(body, uint16(len(exts)))
		body = append(body, exts...)
	}
	msg := appendHandshake(nil, hsClientHello, body)
	rec := []byte{typeHandshake, 3, 1}
	rec = binary.BigEndian.AppendUint16(rec, uint16(len(msg)))
	return append(rec, msg...)
}

func TestReadHello(t *testing.T) {
	ems := []byte{0x00, 0x17, 0, 0}
	reneg := []byte{0xff, 0x01, 0, 1, 0}
	for _, c := range []struct {
		name      string
		in        []byte
		psk, ems  bool
		secure    bool
		wantError bool
	}{
		{"PSK and EMS", helloRecord(0x0303, []uint16{0xc02f, SuitePSKWithAES128GCMSHA256}, append(append([]byte{}, ems...), reneg...)), true, true, true, false},
		{"SCSV, no extensions", helloRecord(0x0303, []uint16{SuitePSKWithAES256GCMSHA384, scsvRenegotiation}, nil), true, false, true, false},
		{"certificate suites only", helloRecord(0x0303, []uint16{0xc02f, 0x1301}, nil), false, false, false, false},
		{"odd suite list", func() []byte { r := helloRecord(0x0303, []uint16{0xa8}, nil); r[5+4+2+32+1+1] = 3; return r }(), false, false, false, true},
		{"EMS with data", helloRecord(0x0303, []uint16{0xa8}, []byte{0x00, 0x17, 0, 1, 9}), false, false, false, true},
		{"renegotiation info not empty", helloRecord(0x0303, []uint16{0xa8}, []byte{0xff, 0x01, 0, 2, 1, 7}), false, false, false, true},
		{"truncated extension", helloRecord(0x0303, []uint16{0xa8}, []byte{0x00, 0x17, 0}), false, false, false, true},
		{"not a handshake", []byte{typeApplicationData, 3, 3, 0, 1, 0}, false, false, false, true},
		{"not a ClientHello", []byte{typeHandshake, 3, 3, 0, 4, hsFinished, 0, 0, 0}, false, false, false, true},
		{"oversized record", []byte{typeHandshake, 3, 3, 0x50, 0}, false, false, false, true},
		{"SSL 2", []byte{0x80, 0x2e, 1, 0, 2}, false, false, false, true},
		{"cut short", helloRecord(0x0303, []uint16{0xa8}, nil)[:20], false, false, false, true},
	} {
		h, err := ReadHello(bytes.NewReader(c.in))
		if c.wantError {
			if err == nil {
				t.Errorf("%s: no error", c.name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if h.OffersPSK() != c.psk || h.ems != c.ems || h.secureReneg != c.secure {
			t.Errorf("%s: psk %v ems %v secure renegotiation %v", c.name, h.OffersPSK(), h.ems, h.secureReneg)
		}
		if !bytes.Equal(h.raw, c.in) {
			t.Errorf("%s: raw bytes not kept for replay", c.name)
		}
	}
}

// A ClientHello split over two records is put back together.
func TestReadHelloAcrossRecords(t *testing.T) {
	rec := helloRecord(0x0303, []uint16{SuitePSKWithAES128GCMSHA256}, nil)
	msg := rec[5:]
	var in []byte
	for _, part := range [][]byte{msg[:10], msg[10:]} {
		in = append(in, typeHandshake, 3, 3)
		in = binary.BigEndian.AppendUint16(in, uint16(len(part)))
		in = append(in, part...)
	}
	h, err := ReadHello(bytes.NewReader(in))
	if err != nil || !h.OffersPSK() {
		t.Fatalf("%v", err)
	}
}

// pipeConn feeds a fixed client byte stream to the server and throws its
// answers away.
type pipeConn struct {
	r io.Reader
}

func (c pipeConn) Read(p []byte) (int, error)         { return c.r.Read(p) }
func (c pipeConn) Write(p []byte) (int, error)        { return len(p), nil }
func (c pipeConn) Close() error                       { return nil }
func (c pipeConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c pipeConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c pipeConn) SetDeadline(t time.Time) error      { return nil }
func (c pipeConn) SetReadDeadline(t time.Time) error  { return nil }
func (c pipeConn) SetWriteDeadline(t time.Time) error { return nil }

// The server side of the handshake, fed with bytes from the network: it
// may fail, never panic, and never gets past Finished without the key.
func FuzzServerHandshake(f *testing.F) {
	hello := helloRecord(0x0303, []uint16{SuitePSKWithAES128GCMSHA256}, []byte{0x00, 0x17, 0, 0})
	cke := []byte{typeHandshake, 3, 3, 0, 11, hsClientKeyExchange, 0, 0, 7, 0, 5, 'a', 'l', 'i', 'c', 'e'}
	ccs := []byte{typeChangeCipherSpec, 3, 3, 0, 1, 1}
	f.Add(hello)
	f.Add(append(append(append([]byte{}, hello...), cke...), ccs...))
	f.Add(append(append(append(append([]byte{}, hello...), cke...), ccs...), typeHandshake, 3, 3, 0, 40))
	f.Add(append(append([]byte{}, hello...), typeAlert, 3, 3, 0, 2, 2, 40))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		h, err := ReadHello(r)
		if err != nil {
			return
		}
		h.OffersPSK()
		if c, err := Server(pipeConn{r}, h, testKeys); err == nil {
			t.Fatalf("a handshake completed without the key (identity %q)", c.Identity())
		}
	})
}

func TestParseKeys(t *testing.T) {
	good := strings.Repeat("ab", 32)
	for _, c := range []struct {
		name, in string
		want     map[string]int // identity -> key length
		err      string
	}{
		{"psktool's format", "alice:" + good + "\nbob:" + good[:32] + "\n", map[string]int{"alice": 32, "bob": 16}, ""},
		{"comments and blanks", "# clients\n\nalice:" + good + "\n", map[string]int{"alice": 32}, ""},
		{"identity with a colon", "host:1:" + good, map[string]int{"host:1": 32}, ""},
		{"no colon", "alice", nil, "want identity:hex-key"},
		{"empty identity", ":" + good, nil, "want identity:hex-key"},
		{"not hex", "alice:xyz", nil, "not hex"},
		{"short key", "alice:abcd", nil, "at least 16"},
		{"twice", "alice:" + good + "\nalice:" + good, nil, "twice"},
	} {
		keys, err := ParseKeys([]byte(c.in))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || len(keys) != len(c.want) {
			t.Errorf("%s: %v %v", c.name, keys, err)
			continue
		}
		for id, n := range c.want {
			if len(keys[id]) != n {
				t.Errorf("%s: %s has %d bytes, want %d", c.name, id, len(keys[id]), n)
			}
		}
	}
}

// The key file must be private, is read again when it changes, and keeps
// its last good keys when a change is malformed.
func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.psk")
	key := strings.Repeat("01", 32)
	os.WriteFile(path, []byte("alice:"+key+"\n"), 0o644)
	if _, err := OpenKeyFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable key file: %v", err)
	}
	os.Chmod(path, 0o600)
	kf, err := OpenKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := kf.Lookup("alice"); !ok {
		t.Fatal("alice missing")
	}
	os.WriteFile(path, []byte("alice:"+key+"\nbob:"+key+"\n"), 0o600)
	if _, ok := kf.Lookup("bob"); !ok || kf.Err() != nil {
		t.Fatalf("bob not found after the file changed: %v", kf.Err())
	}
	os.WriteFile(path, []byte("carol\n"), 0o600)
	if _, ok := kf.Lookup("bob"); !ok || kf.Err() == nil {
		t.Fatalf("a malformed change dropped the keys or went unreported: %v", kf.Err())
	}
	os.Remove(path)
	if _, ok := kf.Lookup("alice"); !ok {
		t.Fatal("a removed file dropped the keys")
	}
}
