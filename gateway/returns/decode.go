package returns

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/octgw/oct/formats/arl"
	"github.com/octgw/oct/formats/fixed"
	"github.com/octgw/oct/formats/noemie"
	"github.com/octgw/oct/gateway/intake/smtp"
)

// Kinds of return, as stored in store.Return.Kind.
const (
	KindARL     = "arl"     // accusé de réception logique (formats/arl)
	KindRSP     = "rsp"     // NOEMIE 580 return (formats/noemie)
	KindUnknown = "unknown" // a message that could not be decoded (kept, orphan)
)

// Errors (errors.Is). ErrUnparsable wraps every reason a message cannot be
// decoded; those messages go to the unparsable folder with an anomaly.
var (
	ErrUnparsable  = errors.New("returns: unparsable message")
	ErrUnknownKind = errors.New("returns: part is neither an ARL nor a NOEMIE 580 file")
	ErrInvalidFile = errors.New("returns: ARL or NOEMIE file with findings")
	ErrTooLarge    = errors.New("returns: message too large")
	ErrConflict    = errors.New("returns: store kept conflicting, retries exhausted")
	ErrRelay       = errors.New("returns: relay to the tenant failed")
	// ErrNotYet: an ARL for a lot whose send is still being committed
	// (state signed): nothing is written; process the message again later
	// (the poller leaves it in the mailbox and retries).
	ErrNotYet = errors.New("returns: the lot's send is not committed yet")
)

// Part is one decoded file of a return message.
type Part struct {
	Index       int    // position among the message's EDI parts, from 0
	Kind        string // KindARL or KindRSP
	Description string // Content-Description (the "nature" of the return)
	Data        []byte // the file as the insurer sent it (decoded, gunzipped)
	ARL         *arl.File
	RSP         *noemie.File
}

// DecodeOptions bound Decode.
type DecodeOptions struct {
	Extract  smtp.ExtractOptions // MIME limits and S/MIME decrypter
	Registry *arl.Registry       // ARL layouts (nil: arl.DefaultRegistry)
	ARL      arl.Options
	NOEMIE   noemie.Options
}

// Decode turns a raw return message into its files: every
// application/EDI-consent part (base64, maybe gzip, maybe S/MIME; decoded
// by smtp.Extract), each recognised by its 000 header norm as an ARL (a
// decoder of the registry accepts it) or a NOEMIE 580 file. A message is
// decoded whole or not at all: any part that is missing, of another kind or
// with findings gives an error wrapping ErrUnparsable.
func Decode(raw []byte, opt DecodeOptions) ([]Part, error) {
	reg := opt.Registry
	if reg == nil {
		reg = arl.DefaultRegistry()
	}
	xs, err := smtp.Extract(bytes.NewReader(raw), opt.Extract)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnparsable, err)
	}
	parts := make([]Part, 0, len(xs))
	for i, x := range xs {
		p := Part{Index: i, Description: x.Description, Data: x.Data}
		head := x.Data
		if len(head) > arl.HeadLen {
			head = head[:arl.HeadLen]
		}
		switch {
		case reg.Detect(head) != nil:
			p.Kind = KindARL
			f, err := reg.Decode(bytes.NewReader(x.Data), opt.ARL)
			if err != nil {
				return nil, fmt.Errorf("%w: part %d: %w", ErrUnparsable, i, err)
			}
			if !f.Valid || len(f.ARLs) == 0 {
				return nil, fmt.Errorf("%w: part %d: %w: %s", ErrUnparsable, i, ErrInvalidFile, findings(f.Errors))
			}
			p.ARL = f
		case noemie.Detect(head):
			p.Kind = KindRSP
			f, err := noemie.Read(bytes.NewReader(x.Data), opt.NOEMIE)
			if err != nil {
				return nil, fmt.Errorf("%w: part %d: %w", ErrUnparsable, i, err)
			}
			if !f.Valid {
				return nil, fmt.Errorf("%w: part %d: %w: %s", ErrUnparsable, i, ErrInvalidFile, findings(f.Errors))
			}
			p.RSP = f
		default:
			return nil, fmt.Errorf("%w: part %d: %w", ErrUnparsable, i, ErrUnknownKind)
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// findings lists the distinct codes of file findings (never their
// messages, which may quote content), at most a few.
func findings(errs []fixed.Error) string {
	seen := map[fixed.Code]bool{}
	var b bytes.Buffer
	for _, e := range errs {
		if seen[e.Code] {
			continue
		}
		seen[e.Code] = true
		if b.Len() > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%s@%d", e.Code, e.Record)
		if len(seen) == 5 {
			break
		}
	}
	return b.String()
}
