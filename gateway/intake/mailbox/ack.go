package mailbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/octgw/oct/gateway"
)

// Suffixes of the files written next to a vendor's file name.
const (
	AckJSONSuffix   = ".ack.json"
	AckTextSuffix   = ".ack.txt"
	ErrorJSONSuffix = ".error.json"
	ErrorTextSuffix = ".error.txt"
)

// AckNames returns the outbox names for the acknowledgement of a file
// uploaded as name. When an acknowledgement of that name is still in the
// outbox (the same name uploaded again before the vendor fetched it), the
// ack id is inserted so that neither is lost: "<name>.<id>.ack.json".
func AckNames(r *os.Root, name, id string) (jsonName, textName string) {
	base := name
	if _, err := r.Lstat(path.Join(Outbox, base+AckJSONSuffix)); err == nil && id != "" {
		base = name + "." + id
	}
	return base + AckJSONSuffix, base + AckTextSuffix
}

// WriteAck writes the acknowledgement of a file uploaded as name into the
// outbox: the human-readable text first, then the JSON (gateway.Ack), so a
// vendor who sees the JSON also finds the text. It returns the JSON name.
func WriteAck(ctx context.Context, r *os.Root, name string, ack gateway.Ack) (string, error) {
	jsonName, textName := AckNames(r, name, ack.ID)
	if err := CheckName(jsonName); err != nil {
		return "", err
	}
	js, err := json.MarshalIndent(ack, "", "  ")
	if err != nil {
		return "", fmt.Errorf("mailbox: %w", err)
	}
	js = append(js, '\n')
	// The text first, the JSON last: a client that waits for the JSON finds
	// both; one fsync of outbox/ for the two.
	if err := WriteAtomicAll(ctx, r, Outbox, []File{
		{Name: textName, Data: strings.NewReader(AckText(name, ack))},
		{Name: jsonName, Data: bytes.NewReader(js)},
	}); err != nil {
		return "", err
	}
	return jsonName, nil
}

// AckText renders an acknowledgement for people.
func AckText(name string, a gateway.Ack) string {
	var b strings.Builder
	yesNo := func(v bool) string {
		if v {
			return "yes"
		}
		return "no"
	}
	fmt.Fprintf(&b, "OCT syntax acknowledgement\n\n")
	fmt.Fprintf(&b, "File:        %s\n", name)
	fmt.Fprintf(&b, "Id:          %s\n", a.ID)
	fmt.Fprintf(&b, "Status:      %s\n", a.Status)
	fmt.Fprintf(&b, "Format:      %s\n", a.Format)
	fmt.Fprintf(&b, "SHA-256:     %s\n", a.SHA256)
	fmt.Fprintf(&b, "Size:        %d bytes\n", a.Size)
	fmt.Fprintf(&b, "Received at: %s\n", a.Received)
	fmt.Fprintf(&b, "Duplicate:   %s\n", yesNo(a.Duplicate))
	fmt.Fprintf(&b, "Records:     %d\nLots:        %d\nInvoices:    %d\n", a.Stats.Records, a.Stats.Lots, a.Stats.Invoices)
	if len(a.Errors) == 0 {
		fmt.Fprintf(&b, "\nNo errors.\n")
		return b.String()
	}
	fmt.Fprintf(&b, "\nErrors (%d):\n", int64(len(a.Errors))+a.Dropped)
	for _, e := range a.Errors {
		b.WriteString("  ")
		b.WriteString(string(e.Code))
		if e.Record > 0 {
			b.WriteString(" at record ")
			b.WriteString(strconv.FormatInt(e.Record, 10))
		}
		if e.Field != "" {
			b.WriteString(", field ")
			b.WriteString(e.Field)
		}
		if e.Message != "" {
			b.WriteString(": ")
			b.WriteString(e.Message)
		}
		b.WriteByte('\n')
	}
	if a.Dropped > 0 {
		fmt.Fprintf(&b, "  ... and %d more, not listed\n", a.Dropped)
	}
	return b.String()
}

// Refusal is what errors/<name>.error.json holds.
type Refusal struct {
	Name      string `json:"name"`
	Code      string `json:"code"`    // too-large, empty, bad-name, quota, rate-limited, ...
	Message   string `json:"message"` // for people
	RefusedAt string `json:"refused_at"`
	Kept      bool   `json:"kept"` // the refused bytes are in errors/<name>
}

// WriteRefusal records in the errors folder that a file uploaded as name was
// refused: the bytes (when data is not nil) as errors/<name>, then
// <name>.error.txt and <name>.error.json.
func (f *Folders) WriteRefusal(ctx context.Context, r *os.Root, name, code, message string, data io.Reader) error {
	if err := CheckName(name); err != nil {
		return err
	}
	ref := Refusal{Name: name, Code: code, Message: message, RefusedAt: f.now().UTC().Format("2006-01-02T15:04:05Z07:00")}
	var errs []error
	if data != nil {
		if err := WriteAtomic(ctx, r, Errors, name, data); err != nil {
			errs = append(errs, err)
		} else {
			ref.Kept = true
		}
	}
	js, err := json.MarshalIndent(ref, "", "  ")
	if err != nil {
		return fmt.Errorf("mailbox: %w", err)
	}
	js = append(js, '\n')
	txt := fmt.Sprintf("OCT intake refusal\n\nFile:       %s\nReason:     %s\nMessage:    %s\nRefused at: %s\n", name, code, message, ref.RefusedAt)
	if err := WriteAtomic(ctx, r, Errors, name+ErrorTextSuffix, strings.NewReader(txt)); err != nil {
		errs = append(errs, err)
	}
	if err := WriteAtomic(ctx, r, Errors, name+ErrorJSONSuffix, bytes.NewReader(js)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
