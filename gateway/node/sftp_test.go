package node_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/internal/testenv"
)

// TestSFTPIntakeThroughTheNode uploads a file with a tenant's key into
// inbox/, reads the acknowledgement from outbox/ and finds the same file
// through the API: one pipeline for every channel.
func TestSFTPIntakeThroughTheNode(t *testing.T) {
	n := startNode(t, nil)
	tok := n.tenant(t, "acme")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	added, err := gateway.AddSSHKeys(context.Background(), n.Store, "acme", ssh.MarshalAuthorizedKey(signer.PublicKey()), "test")
	if err != nil || added != 1 {
		t.Fatalf("add key: %d %v", added, err)
	}
	conn, err := ssh.Dial("tcp", n.SFTPAddr().String(), &ssh.ClientConfig{
		User: "acme", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second, // the host key is checked in the sftp package's tests
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := sftp.NewClient(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := c.OpenFile("/inbox/lot.b2", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(genFile(t, 9, "")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil { // returns once the file is durable
		t.Fatal(err)
	}
	var ack gateway.Ack
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = testenv.Poll(ctx, 10*time.Millisecond, func() (bool, error) {
		r, err := c.Open("/outbox/lot.b2.ack.json")
		if err != nil {
			return false, nil
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err != nil {
			return false, err
		}
		return true, json.Unmarshal(b, &ack)
	})
	if err != nil {
		t.Fatalf("no acknowledgement in outbox/: %v", err)
	}
	if ack.Status != "accepted" || ack.ID == "" {
		t.Fatalf("ack %+v", ack)
	}
	code, b, _ := n.do(t, "GET", "/v1/files/"+ack.ID, tok, nil)
	if code != http.StatusOK {
		t.Fatalf("file taken in over SFTP not visible through the API: %d %s", code, b)
	}
	var view struct{ Channel string }
	if json.Unmarshal(b, &view); view.Channel != "sftp" {
		t.Fatalf("channel %q", view.Channel)
	}
}
