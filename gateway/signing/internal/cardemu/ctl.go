package cardemu

import (
	"bufio"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ServeControl answers one-line commands on l until l is closed. It lets a
// test drive a card that runs in another process (and network namespace):
//
//	remove               pull the card out (close the vpcd connection)
//	insert               put it back (dial vpcd again)
//	reset                power-cycle: PIN no longer verified
//	tries N              set the PIN tries left (0 blocks the PIN)
//	fail INS SW COUNT    answer SW (hex) to the next COUNT commands INS (hex)
//	clear                drop pending faults
//	stats                "ok signatures=N verifies=N apdus=N tries=N inserted=B"
//
// Every answer is one line starting with "ok" or "err".
func ServeControl(l net.Listener, v *VPCD) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			sc := bufio.NewScanner(conn)
			for sc.Scan() {
				fmt.Fprintln(conn, command(v, strings.Fields(sc.Text())))
			}
		}()
	}
}

func command(v *VPCD, f []string) string {
	if len(f) == 0 {
		return "err empty command"
	}
	c := v.Card
	switch {
	case f[0] == "remove":
		v.Remove()
	case f[0] == "insert":
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := v.Insert(ctx); err != nil {
			return "err " + err.Error()
		}
	case f[0] == "reset":
		c.Reset()
	case f[0] == "clear":
		c.ClearFaults()
	case f[0] == "tries" && len(f) == 2:
		n, err := strconv.Atoi(f[1])
		if err != nil {
			return "err " + err.Error()
		}
		c.SetTries(n)
	case f[0] == "fail" && len(f) == 4:
		ins, err1 := strconv.ParseUint(f[1], 16, 8)
		sw, err2 := strconv.ParseUint(f[2], 16, 16)
		n, err3 := strconv.Atoi(f[3])
		if err := errors.Join(err1, err2, err3); err != nil {
			return "err " + err.Error()
		}
		c.Fail(byte(ins), uint16(sw), n)
	case f[0] == "stats":
		s := c.Stats()
		return fmt.Sprintf("ok signatures=%d verifies=%d apdus=%d tries=%d inserted=%t",
			s.Signatures, s.Verifies, s.APDUs, c.Tries(), v.Inserted())
	default:
		return "err unknown command " + strconv.Quote(strings.Join(f, " "))
	}
	return "ok"
}

// Control sends one command to the control socket at path and returns the
// answer line; an "err" answer is returned as an error.
func Control(ctx context.Context, path, cmd string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := fmt.Fprintln(conn, cmd); err != nil {
		return "", err
	}
	sc := bufio.NewScanner(conn)
	if !sc.Scan() {
		return "", errors.Join(errors.New("cardemu: no answer"), sc.Err())
	}
	line := sc.Text()
	if !strings.HasPrefix(line, "ok") {
		return "", errors.New("cardemu: " + line)
	}
	return line, nil
}

// WriteKey stores key slot ref in dir (key-<ref>.pem PKCS#8, cert-<ref>.pem).
func WriteKey(dir string, ref byte, key crypto.Signer, certDER []byte) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	kp := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	cp := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
	return errors.Join(
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("key-%d.pem", ref)), kp, 0o600),
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("cert-%d.pem", ref)), cp, 0o644))
}

// LoadKeys reads the key slots WriteKey stored in dir.
func LoadKeys(dir string) (map[byte]Key, error) {
	keys := map[byte]Key{}
	for ref := 1; ref <= 255; ref++ {
		kp, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("key-%d.pem", ref)))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		cp, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("cert-%d.pem", ref)))
		if err != nil {
			return nil, err
		}
		kb, _ := pem.Decode(kp)
		cb, _ := pem.Decode(cp)
		if kb == nil || cb == nil {
			return nil, fmt.Errorf("cardemu: key slot %d: bad PEM", ref)
		}
		k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
		if err != nil {
			return nil, err
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("cardemu: key slot %d: not a signer", ref)
		}
		keys[byte(ref)] = Key{Signer: s, CertDER: cb.Bytes}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("cardemu: no keys in %s", dir)
	}
	return keys, nil
}
