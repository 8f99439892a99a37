package returns

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/octgw/oct/formats/arl"
	"github.com/octgw/oct/formats/noemie"
	"github.com/octgw/oct/gateway/intake/smtp"
)

// plainPart is a single-part message: base64, not gzipped.
func plainPart(data []byte) []byte {
	return []byte("Subject: r\r\nMIME-Version: 1.0\r\nContent-Type: application/EDI-consent\r\n" +
		"Content-Transfer-Encoding: base64\r\nContent-Description: NOEMIE\r\n\r\n" +
		base64.StdEncoding.EncodeToString(data) + "\r\n")
}

func TestDecodeKinds(t *testing.T) {
	ack := arlFile(t, arl.ARL{LotNumber: 1, Positive: true})
	var prefixed bytes.Buffer
	if err := noemie.Generate(&prefixed, noemie.GenOptions{Seed: 3, Form: noemie.WriteOptions{LengthPrefix: true}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		raw   []byte
		kinds []string
		err   error
	}{
		{"arl plain", plainPart(ack), []string{KindARL}, nil},
		{"noemie length-prefixed", plainPart(prefixed.Bytes()), []string{KindRSP}, nil},
		{"both gzipped", message(t, "m", ack, rspFile(t, "", rspInvoice{number: "1", lot: 1, state: 'P'})), []string{KindARL, KindRSP}, nil},
		{"b2 is not a return", plainPart([]byte("000TE00000750000001      CT00000001422422      TRF0000126010 CP  B2")), nil, ErrUnknownKind},
		{"no edi part", []byte("Subject: x\r\n\r\nbody\r\n"), nil, smtp.ErrNoEDIPart},
		{"bad base64", []byte("Content-Type: application/EDI-consent\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!\r\n"), nil, smtp.ErrBadBase64},
	} {
		parts, err := Decode(tc.raw, DecodeOptions{})
		if tc.err != nil {
			if !errors.Is(err, ErrUnparsable) || !errors.Is(err, tc.err) {
				t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var kinds []string
		for _, p := range parts {
			kinds = append(kinds, p.Kind)
		}
		if len(kinds) != len(tc.kinds) || (len(kinds) > 0 && kinds[0] != tc.kinds[0]) || kinds[len(kinds)-1] != tc.kinds[len(tc.kinds)-1] {
			t.Errorf("%s: kinds %v, want %v", tc.name, kinds, tc.kinds)
		}
	}
}
