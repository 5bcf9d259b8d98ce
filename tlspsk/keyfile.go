package tlspsk

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// KeyFile serves keys from a file in the format of GnuTLS's psktool, which
// qemu's tls-creds-psk and libnbd's tls-psk-file read too: one
// "identity:hex-key" per line. The file is read again when it changes, so
// clients can be added and removed without a restart; a file that has
// become unreadable or malformed keeps the keys last read and the error
// is reported by Err.
type KeyFile struct {
	path string

	mu      sync.Mutex
	mtime   time.Time
	size    int64
	keys    map[string][]byte
	lastErr error
}

// OpenKeyFile reads path, which must be private to its owner (mode 0600
// or stricter): it holds secrets.
func OpenKeyFile(path string) (*KeyFile, error) {
	f := &KeyFile{path: path}
	if err := f.reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Lookup is a Keys.
func (f *KeyFile) Lookup(identity string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st, err := os.Stat(f.path); err == nil && (!st.ModTime().Equal(f.mtime) || st.Size() != f.size) {
		f.lastErr = f.reloadLocked()
	}
	k, ok := f.keys[identity]
	return k, ok
}

// Err is the error of the last reload, nil if it succeeded.
func (f *KeyFile) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastErr
}

func (f *KeyFile) reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reloadLocked()
}

func (f *KeyFile) reloadLocked() error {
	st, err := os.Stat(f.path)
	if err != nil {
		return fmt.Errorf("PSK file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("PSK file %s: mode %v lets others read its keys; chmod 600 it", f.path, st.Mode().Perm())
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("PSK file: %w", err)
	}
	keys, err := ParseKeys(data)
	if err != nil {
		return fmt.Errorf("PSK file %s: %w", f.path, err)
	}
	f.keys, f.mtime, f.size = keys, st.ModTime(), st.Size()
	return nil
}

// ParseKeys reads "identity:hex-key" lines; blank lines and lines starting
// with # are skipped.
func ParseKeys(data []byte) (map[string][]byte, error) {
	keys := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		i := strings.LastIndexByte(text, ':')
		if i <= 0 {
			return nil, fmt.Errorf("line %d: want identity:hex-key", line)
		}
		id, hexKey := text[:i], text[i+1:]
		key, err := hex.DecodeString(hexKey)
		switch {
		case err != nil:
			return nil, fmt.Errorf("line %d: key of %q is not hex", line, id)
		case len(key) < 16:
			return nil, fmt.Errorf("line %d: key of %q has %d bytes; use at least 16 (psktool makes 32)", line, id, len(key))
		case len(key) > 512:
			return nil, fmt.Errorf("line %d: key of %q is longer than 512 bytes", line, id)
		case len(id) > 512:
			return nil, fmt.Errorf("line %d: identity longer than 512 bytes", line)
		}
		if _, dup := keys[id]; dup {
			return nil, fmt.Errorf("line %d: %q appears twice", line, id)
		}
		keys[id] = key
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return keys, nil
}
