package node

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/scor"
	"github.com/octgw/oct/gateway"
	"github.com/octgw/oct/gateway/deliver"
	"github.com/octgw/oct/gateway/signing"
	"github.com/octgw/oct/gateway/store"
	"github.com/octgw/oct/referentials"
	"github.com/octgw/oct/routing"
)

// detachedSigner gives delivery what its senders carry: a CMS SignedData
// over exactly the lot file, without the file inside.
type detachedSigner struct{ p *signing.Pool }

func (d detachedSigner) SignFile(ctx context.Context, profile, ref string, data []byte) ([]byte, error) {
	return d.p.SignFileDetached(ctx, profile, ref, data)
}

// Certs finds a recipient's encryption certificate (the LDAP certificate
// directory in production, the simulator in the demo).
type Certs interface {
	Certificate(ctx context.Context, mailbox string) (*x509.Certificate, error)
}

// CertsFunc adapts a function to Certs.
type CertsFunc func(ctx context.Context, mailbox string) (*x509.Certificate, error)

// Certificate implements Certs.
func (f CertsFunc) Certificate(ctx context.Context, mailbox string) (*x509.Certificate, error) {
	return f(ctx, mailbox)
}

// routedSender turns the gateway's Delivery into a deliver.Message: the
// destination's transport, address and cipher come from the same routing
// decision (rule tree + referential), the certificate from Certs.
type routedSender struct {
	router *routing.Router
	disp   deliver.Sender
	certs  Certs
	now    func() time.Time
}

// NewSender builds the gateway's Sender over a deliver.Dispatcher (or any
// deliver.Sender).
func NewSender(r *routing.Router, d deliver.Sender, c Certs) gateway.Sender {
	return routedSender{router: r, disp: d, certs: c, now: time.Now}
}

func (s routedSender) Send(ctx context.Context, d gateway.Delivery) (gateway.Receipt, error) {
	dec, err := s.router.Route(routingInput(d.Route), s.now())
	if err != nil {
		return gateway.Receipt{}, fmt.Errorf("destination of lot %s: %w", d.Lot.ID, err)
	}
	want := strings.Split(d.Lot.Destination, ",")[0]
	var dst *routing.Destination
	for i := range dec.Destinations {
		if dec.Destinations[i].ID == want {
			dst = &dec.Destinations[i]
		}
	}
	if dst == nil {
		return gateway.Receipt{}, fmt.Errorf("destination %s of lot %s is no longer in the referential (version %d)", want, d.Lot.ID, dec.Version)
	}
	m := deliver.Message{
		Lot: d.Lot.ID, Emitter: d.Lot.Emitter, Invoices: d.Lot.Invoices, Test: d.Lot.Test,
		Dest: deliver.Destination{ID: dst.ID, Transport: dst.Transport, Address: dst.Address, Cipher: dst.Cipher},
		Body: d.Body, Signature: d.Signature, Resend: d.Resend, Flow: d.Lot.Flow, Ref: d.Lot.Ref,
	}
	switch {
	case d.Lot.Flow == store.FlowSCOR:
		// The SCOR lot travels with its B2 lot's key and its own file id,
		// which its ARL carries back (formats/scor FileID).
		m.FileID, m.LotNumber = scor.FileID(d.Lot.ID), d.Lot.Number
		if m.LotDate, err = time.Parse(time.DateOnly, d.Lot.Date); err != nil {
			return gateway.Receipt{}, fmt.Errorf("SCOR lot %s: date %q: %w", d.Lot.ID, d.Lot.Date, err)
		}
	case gateway.IsB2(d.Lot) && len(d.Body) >= envelope.RecordLength:
		m.FileID = envelope.Decode(d.Body[:envelope.RecordLength]).FileID
	}
	if dst.Transport == referentials.SMTP && dst.Cipher != referentials.CipherNone {
		if s.certs == nil {
			return gateway.Receipt{}, fmt.Errorf("no certificate directory configured for %s", dst.Address)
		}
		if m.Cert, err = s.certs.Certificate(ctx, dst.Address); err != nil {
			return gateway.Receipt{}, fmt.Errorf("%w: certificate of %s: %v", gateway.ErrTemporary, dst.Address, err)
		}
	}
	rc, err := s.disp.Send(ctx, m)
	if errors.Is(err, deliver.ErrTemporary) {
		return gateway.Receipt{}, fmt.Errorf("%w: %v", gateway.ErrTemporary, err)
	}
	if err != nil {
		return gateway.Receipt{}, err
	}
	return gateway.Receipt{MessageID: rc.MessageID, Detail: rc.Detail, Answer: rc.Answer}, nil
}
