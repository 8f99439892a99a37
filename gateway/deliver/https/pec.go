package https

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/octgw/oct/formats/pec"
	"github.com/octgw/oct/gateway/deliver"
)

// PEC request shape (OUR design, docs/delivery.md "PEC"): POST
// {Dest.Address}/pec, Content-Type application/json, the OCT-PEC v1 message
// as the body, the detached CMS signature of the body base64 in
// SignatureHeader, Idempotency-Key = Message.Lot (X-OCT-Resend: 1 for a
// resend), X-OCT-PEC-Id = Message.Ref. The AMC answers 200 with an OCT-PEC
// v1 answer (agreement, partial, refusal, pending, cancelled), carried back
// in Receipt.Answer.
const (
	// SignatureHeader carries the detached CMS SignedData of the body,
	// standard base64, on the PEC and FHIR requests.
	SignatureHeader = "X-OCT-Signature"
	// PECPath is appended to the AMC endpoint URL.
	PECPath = "/pec"
	// MaxAnswer bounds an answer body read by the PEC and FHIR senders.
	MaxAnswer = 1 << 20
)

// JoinPath returns u with p appended to its path (no double slash).
func JoinPath(u *url.URL, p string) string {
	v := *u
	v.Path = strings.TrimRight(v.Path, "/") + p
	v.RawPath = ""
	return v.String()
}

func (s *Sender) sendPEC(ctx context.Context, u *url.URL, m deliver.Message) (deliver.Receipt, error) {
	if len(m.Body) == 0 {
		return deliver.Receipt{}, deliver.Permanent("compose", fmt.Errorf("%w: empty PEC message", deliver.ErrConfig))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, JoinPath(u, PECPath), bytes.NewReader(m.Body))
	if err != nil {
		return deliver.Receipt{}, deliver.Permanent("compose", fmt.Errorf("%w: %w", deliver.ErrConfig, err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	SetCommonHeaders(req, m)
	if m.Ref != "" {
		req.Header.Set("X-OCT-PEC-Id", m.Ref)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return deliver.Receipt{}, DoError(ctx, "post", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer+1))
	if err != nil {
		return deliver.Receipt{}, DoError(ctx, "answer", err)
	}
	reply := Reply(resp.StatusCode, body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return deliver.Receipt{}, StatusError("post", resp.StatusCode, reply)
	}
	// The answer is a return: it must be an OCT-PEC v1 answer, or the
	// gateway would store something it cannot correlate.
	rep, err := pec.Validate(bytes.NewReader(body), pec.Options{MaxBytes: MaxAnswer})
	if err != nil || !rep.Valid || rep.Kind != pec.KindAnswer {
		why := "not a valid OCT-PEC v1 answer"
		if rep != nil && len(rep.Errors) > 0 {
			why += ": " + rep.Errors[0].Error()
		}
		return deliver.Receipt{}, &deliver.Error{Op: "answer", Code: resp.StatusCode, Reply: reply, Err: fmt.Errorf("%w: %s", deliver.ErrPermanent, why)}
	}
	if m.Ref != "" && rep.Message.Answer.PECID != m.Ref {
		return deliver.Receipt{}, &deliver.Error{Op: "answer", Code: resp.StatusCode, Reply: reply,
			Err: fmt.Errorf("answer for pec_id %q, sent %q", rep.Message.Answer.PECID, m.Ref)}
	}
	id := resp.Header.Get("X-Request-Id")
	if id == "" {
		id = u.Host + PECPath + "/" + rep.Message.Answer.PECID
	}
	return deliver.Receipt{MessageID: id, Detail: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, rep.Message.Answer.Status),
		At: s.cfg.Now(), Answer: body}, nil
}

// setLotHeaders sets the headers of every OCT request to an endpoint:
// X-OCT-Lot, X-OCT-Test, and Idempotency-Key = m.Lot or X-OCT-Resend: 1.
func setLotHeaders(req *http.Request, m deliver.Message) {
	req.Header.Set("X-OCT-Lot", m.Lot)
	if m.Test {
		req.Header.Set("X-OCT-Test", "1")
	}
	if m.Resend {
		req.Header.Set("X-OCT-Resend", "1")
	} else {
		req.Header.Set("Idempotency-Key", m.Lot)
	}
}

// SetCommonHeaders sets the headers every OCT JSON request carries:
// Idempotency-Key = m.Lot (or X-OCT-Resend: 1), X-OCT-Lot, X-OCT-Emitter,
// X-OCT-Test, and the detached signature in SignatureHeader.
func SetCommonHeaders(req *http.Request, m deliver.Message) {
	setLotHeaders(req, m)
	if m.Emitter != "" {
		req.Header.Set("X-OCT-Emitter", m.Emitter)
	}
	if len(m.Signature) > 0 {
		req.Header.Set(SignatureHeader, base64.StdEncoding.EncodeToString(m.Signature))
	}
}
