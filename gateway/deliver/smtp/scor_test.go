package smtp_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"

	"github.com/octgw/oct/formats/scor"
	"github.com/octgw/oct/gateway/deliver"
	"github.com/octgw/oct/gateway/deliver/iris"
	dsmtp "github.com/octgw/oct/gateway/deliver/smtp"
	"github.com/octgw/oct/referentials"
)

// TestComposeSCOR: the SCOR message in clear: subject with émetteur, SCOR
// file id, lot, date and the pages counted from the PDF; the part is the
// PDF itself (not gzipped) described IRIS/SCOR, named SCOR_<id>.pdf, with
// its signature part; bad SCOR fields are permanent configuration errors.
func TestComposeSCOR(t *testing.T) {
	snd, err := dsmtp.New(dsmtp.Config{Relay: "127.0.0.1:1", From: "oct@oct.test"})
	if err != nil {
		t.Fatal(err)
	}
	pdf, err := scor.Generate(scor.GenOptions{Seed: 1, Pages: 3})
	if err != nil {
		t.Fatal(err)
	}
	id := scor.FileID("lot-7")
	m := deliver.Message{Flow: deliver.FlowSCOR, Ref: "lot-7", Lot: "scor-7", Emitter: "750000001", FileID: id,
		LotNumber: 7, LotDate: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
		Dest: deliver.Destination{ID: "x", Transport: referentials.SMTP, Address: box, Cipher: referentials.CipherNone},
		Body: pdf, Signature: []byte{0x30, 0x00}}
	c, err := snd.Compose(m)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "SCOR/00000750000001/"+id+"/007/260302/00003" {
		t.Fatalf("subject %q", c.Subject)
	}
	sub, err := iris.ParseSCORSubject(c.Subject)
	if err != nil || sub.FileID != id || sub.LotNumber != 7 || sub.Pages != 3 || !sub.LotDate.Equal(m.LotDate) {
		t.Fatalf("%+v %v", sub, err)
	}
	ent, err := message.Read(bufio.NewReader(bytes.NewReader(c.Raw)))
	if err != nil {
		t.Fatal(err)
	}
	if ent.Header.Get("Content-Description") != "IRIS/SCOR" {
		t.Fatalf("%v", ent.Header.Map())
	}
	var found bool
	var walk func(e *message.Entity)
	walk = func(e *message.Entity) {
		if mr := e.MultipartReader(); mr != nil {
			for {
				p, err := mr.NextPart()
				if err != nil {
					return
				}
				walk(p)
			}
		}
		mt, params, _ := e.Header.ContentType()
		if mt == "application/edi-consent" {
			b, _ := io.ReadAll(e.Body)
			if !bytes.Equal(b, pdf) || params["name"] != "SCOR_"+id+".pdf" || e.Header.Get("Content-Description") != "IRIS/SCOR" {
				t.Fatalf("part %v %v", params, e.Header.Map())
			}
			found = true
		}
	}
	walk(ent)
	if !found {
		t.Fatal("no SCOR part")
	}
	for name, mod := range map[string]func(*deliver.Message){
		"no lot number": func(m *deliver.Message) { m.LotNumber = 0 },
		"no lot date":   func(m *deliver.Message) { m.LotDate = time.Time{} },
		"bad file id":   func(m *deliver.Message) { m.FileID = "s1" },
		"not a pdf":     func(m *deliver.Message) { m.Body = scor.GenerateJPEG() },
		"pec by smtp":   func(m *deliver.Message) { m.Flow = deliver.FlowPEC },
	} {
		mm := m
		mod(&mm)
		if _, err := snd.Compose(mm); !errors.Is(err, deliver.ErrConfig) || !errors.Is(err, deliver.ErrPermanent) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// Test flows are described IRISTEST/SCOR.
	m.Test = true
	if c, err := snd.Compose(m); err != nil || !strings.Contains(string(c.Raw), "Content-Description: IRISTEST/SCOR\r\n") {
		t.Fatalf("test flow: %v", err)
	}
}
