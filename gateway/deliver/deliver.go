// Package deliver sends outbound B2 lots to insurers: SMTP + S/MIME to AMO
// caisses (gateway/deliver/smtp), SFTP (gateway/deliver/sftp) and HTTPS
// (gateway/deliver/https) to AMC operators, behind one small Sender
// interface. A Dispatcher picks the Sender of a destination's transport and
// adds, per destination, bounded concurrency, a circuit breaker and a guard
// against sending one lot twice; it never retries by itself (the store's job
// queue reschedules a job whose error is ErrTemporary).
//
// docs/delivery.md describes the message format, the choices made where the
// specification is not available, the error classes and the breaker.
package deliver

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/octgw/oct/referentials"
)

// Destination is where a lot goes.
//
// Address depends on Transport:
//   - smtp: the caisse mailbox (01422@422.01.rss.fr); the relay is the
//     sender's configuration;
//   - sftp: sftp://user@host:port/dir (port 22 by default);
//   - https: the URL the file is POSTed to.
type Destination struct {
	ID        string
	Transport referentials.Transport // smtp, sftp, https
	Address   string
	Cipher    referentials.Cipher // aes128 (default for smtp), 3des, none
}

// Flows a Message can carry (Message.Flow). "" is FlowB2.
const (
	FlowB2          = "b2"          // IRIS/B2 lot file (smtp, sftp, https)
	FlowCertificate = "certificate" // medical certificate as a FHIR R4 Bundle (gateway/deliver/fhir)
	FlowPEC         = "pec"         // OCT-PEC v1 JSON message to an AMC (https: POST {Address}/pec)
	FlowSCOR        = "scor"        // SCOR PDF attachment beside a B2 lot (smtp: IRIS/SCOR message)
)

// Message is one lot (or one certificate, PEC message, SCOR attachment) to
// deliver.
type Message struct {
	// Flow is "" or FlowB2 for a B2 lot, else FlowCertificate, FlowPEC or
	// FlowSCOR. It changes what Body is and how a Sender wraps it.
	Flow string
	// Ref is the flow's own reference: the certificate id (certificate),
	// the request's pec_id (pec), the id of the B2 lot a SCOR lot
	// accompanies (scor). Empty for B2.
	Ref      string
	Lot      string // lot id (store), the key of the duplicate guard
	Emitter  string // émetteur number (up to 14 digits; zero-padded left to 14 in the SMTP subject)
	FileID   string // file identifier of the lot file (000 header)
	Invoices int    // number of invoices (type-5 records) in Body; for scor, the PDF's page count (0: counted by the sender)
	// LotNumber and LotDate (scor only) are the number and date of the B2
	// lot the SCOR lot accompanies; they travel in the SCOR subject and
	// are what the caisse's ARL for the SCOR lot carries back, with FileID.
	LotNumber int
	LotDate   time.Time
	Test      bool // test flow: IRISTEST/B2/Z
	Dest      Destination
	// Cert is the recipient's encryption certificate (SMTP). It may be nil
	// only when Dest.Cipher is none.
	Cert *x509.Certificate
	// Body is the outbound B2 lot file (000 + lot + 999), already validated;
	// for certificate the FHIR R4 Bundle JSON, for pec the OCT-PEC v1 JSON
	// message (request, status or cancel), for scor the PDF.
	Body []byte
	// Signature is the CMS SignedData of Body from the signing pool. The
	// senders expect a detached signature over Body exactly
	// (signing.Detached()); an attached one is carried unchanged as well.
	// Nil means the lot travels unsigned.
	Signature []byte
	// Resend marks a chase or an operator resend of a lot already sent:
	// the Dispatcher's duplicate guard lets it through.
	Resend bool
}

// Receipt is the proof of a delivery attempt that the remote end accepted.
type Receipt struct {
	MessageID string    // SMTP Message-ID; remote path (SFTP); request id (HTTPS)
	Detail    string    // the server's final answer (250 text, HTTP status…)
	At        time.Time // when the remote end accepted the file
	// Answer is a synchronous answer of the remote end that the gateway
	// treats as a return (stored, correlated): the FHIR Task of a
	// certificate POST (status received), the OCT-PEC v1 answer of a pec
	// POST. Nil for B2 and SCOR.
	Answer []byte
}

// IsB2 reports whether the flow is a B2 lot ("" or FlowB2).
func (m Message) IsB2() bool { return m.Flow == "" || m.Flow == FlowB2 }

// Sender delivers one Message. It returns ErrTemporary- or
// ErrPermanent-classified errors (see Error); every blocking step honours
// ctx.
type Sender interface {
	Send(ctx context.Context, m Message) (Receipt, error)
}

// SenderFunc adapts a function to Sender.
type SenderFunc func(ctx context.Context, m Message) (Receipt, error)

// Send implements Sender.
func (f SenderFunc) Send(ctx context.Context, m Message) (Receipt, error) { return f(ctx, m) }

// ByFlow is a Sender that hands a Message to the Sender of its Flow, and
// the others (B2 and flows not listed) to Default. The Dispatcher routes by
// transport; a transport that carries several flows with different
// protocols (https: B2 multipart, PEC JSON, FHIR certificates) gets a
// ByFlow:
//
//	deliver.ByFlow{Default: httpsSender, Flows: map[string]deliver.Sender{deliver.FlowCertificate: fhirSender}}
type ByFlow struct {
	Default Sender
	Flows   map[string]Sender
}

// Send implements Sender.
func (b ByFlow) Send(ctx context.Context, m Message) (Receipt, error) {
	if s, ok := b.Flows[m.Flow]; ok && s != nil {
		return s.Send(ctx, m)
	}
	if b.Default == nil {
		return Receipt{}, Permanent("dispatch", fmt.Errorf("%w: no sender for flow %q", ErrConfig, m.Flow))
	}
	return b.Default.Send(ctx, m)
}
