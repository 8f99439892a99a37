// Package fhir delivers medical certificates to SSA endpoints as HL7 FHIR
// R4 Bundles over HTTPS (mTLS, the same client as gateway/deliver/https)
// and follows their status through the SSA's Task feed (Poller).
//
// The request shapes are OUR design on FHIR R4 REST semantics
// (docs/delivery.md "Certificates (FHIR)"): no public SSA API was found.
//
//	POST {Address}/Bundle            Content-Type: application/fhir+json
//	  X-OCT-Signature: <base64 detached CMS of the body>
//	  Idempotency-Key: <Message.Lot>, X-OCT-Certificate-Id: <Message.Ref>
//	→ 201 Created + Task (status received)       delivered; Receipt.Answer = Task
//	→ 4xx + OperationOutcome                      permanent, the issues in the reply (408, 429 temporary)
//	→ 5xx, timeouts, network                      temporary
//
//	GET {base}/Task?_lastUpdated=ge<RFC3339Nano>&_sort=_lastUpdated&_count=N
//	→ 200 searchset Bundle of Tasks, oldest first
package fhir

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/octgw/oct/formats/certificate"
	"github.com/octgw/oct/gateway/deliver"
	dhttps "github.com/octgw/oct/gateway/deliver/https"
	"github.com/octgw/oct/referentials"
)

// ContentType is the FHIR JSON media type.
const ContentType = "application/fhir+json"

// Sender is the deliver.Sender of flow certificate. Safe for concurrent use.
type Sender struct {
	cfg    dhttps.Config
	client *http.Client
}

// New checks cfg (the HTTPS sender's: client certificate required) and
// returns a Sender.
func New(cfg dhttps.Config) (*Sender, error) {
	client, err := dhttps.NewClient(&cfg)
	if err != nil {
		return nil, err
	}
	return &Sender{cfg: cfg, client: client}, nil
}

// CloseIdleConnections releases pooled connections.
func (s *Sender) CloseIdleConnections() { s.client.CloseIdleConnections() }

// Send implements deliver.Sender for Message.Flow certificate: Body is the
// FHIR R4 Bundle of the certificate.
func (s *Sender) Send(ctx context.Context, m deliver.Message) (deliver.Receipt, error) {
	if m.Flow != deliver.FlowCertificate {
		return deliver.Receipt{}, deliver.Permanent("compose", fmt.Errorf("%w: flow %q given to the FHIR sender", deliver.ErrConfig, m.Flow))
	}
	if m.Dest.Transport != "" && m.Dest.Transport != referentials.HTTPS {
		return deliver.Receipt{}, deliver.Permanent("compose", fmt.Errorf("%w: transport %q given to the FHIR sender", deliver.ErrConfig, m.Dest.Transport))
	}
	if len(m.Body) == 0 {
		return deliver.Receipt{}, deliver.Permanent("compose", fmt.Errorf("%w: empty Bundle", deliver.ErrConfig))
	}
	u, err := dhttps.Endpoint(m.Dest.Address)
	if err != nil {
		return deliver.Receipt{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dhttps.JoinPath(u, "/Bundle"), bytes.NewReader(m.Body))
	if err != nil {
		return deliver.Receipt{}, deliver.Permanent("compose", fmt.Errorf("%w: %w", deliver.ErrConfig, err))
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("Accept", ContentType)
	dhttps.SetCommonHeaders(req, m)
	if m.Ref != "" {
		req.Header.Set("X-OCT-Certificate-Id", m.Ref)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return deliver.Receipt{}, dhttps.DoError(ctx, "post", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, dhttps.MaxAnswer+1))
	if err != nil {
		return deliver.Receipt{}, dhttps.DoError(ctx, "answer", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		reply := fmt.Sprintf("HTTP %d", resp.StatusCode)
		if issues := OutcomeText(body); issues != "" {
			reply += ": " + issues
		} else {
			reply = dhttps.Reply(resp.StatusCode, body)
		}
		return deliver.Receipt{}, dhttps.StatusError("post", resp.StatusCode, reply)
	}
	u2, err := certificate.ParseTask(body)
	if err != nil {
		return deliver.Receipt{}, &deliver.Error{Op: "answer", Code: resp.StatusCode, Reply: dhttps.Reply(resp.StatusCode, nil),
			Err: fmt.Errorf("the SSA's answer is not a Task of our profile: %w", err)}
	}
	if m.Ref != "" && u2.CertificateID != m.Ref {
		return deliver.Receipt{}, &deliver.Error{Op: "answer", Code: resp.StatusCode, Reply: dhttps.Reply(resp.StatusCode, nil),
			Err: fmt.Errorf("the SSA's Task is for certificate %q, sent %q", u2.CertificateID, m.Ref)}
	}
	return deliver.Receipt{MessageID: u2.TaskID, Detail: fmt.Sprintf("HTTP %d: Task %s", resp.StatusCode, u2.Status),
		At: s.cfg.Now(), Answer: body}, nil
}

// OperationOutcome is the part of a FHIR R4 OperationOutcome we read and
// write.
type OperationOutcome struct {
	ResourceType string  `json:"resourceType"`
	Issue        []Issue `json:"issue"`
}

// Issue is one OperationOutcome.issue.
type Issue struct {
	Severity    string   `json:"severity"`          // fatal | error | warning | information
	Code        string   `json:"code"`              // FHIR issue type (invalid, structure, required, value…)
	Details     *Concept `json:"details,omitempty"` // our finding code in details.coding[0].code
	Diagnostics string   `json:"diagnostics,omitempty"`
	Expression  []string `json:"expression,omitempty"` // FHIRPath of the element at fault
}

// Concept is a CodeableConcept.
type Concept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Coding is a Coding.
type Coding struct {
	System string `json:"system,omitempty"`
	Code   string `json:"code,omitempty"`
}

// OutcomeText summarises an OperationOutcome for a reply: "<code> at
// <expression>: <diagnostics>; …", at most 10 issues and 1000 bytes; ""
// when b is not an OperationOutcome.
func OutcomeText(b []byte) string {
	var oo OperationOutcome
	if json.Unmarshal(b, &oo) != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
		return ""
	}
	var parts []string
	for i, is := range oo.Issue {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("(%d more)", len(oo.Issue)-10))
			break
		}
		code := is.Code
		if is.Details != nil && len(is.Details.Coding) > 0 && is.Details.Coding[0].Code != "" {
			code = is.Details.Coding[0].Code
		}
		p := code
		if len(is.Expression) > 0 {
			p += " at " + strings.Join(is.Expression, ",")
		}
		if is.Diagnostics != "" {
			p += ": " + is.Diagnostics
		}
		parts = append(parts, p)
	}
	s := strings.Join(strings.Fields(strings.ToValidUTF8(strings.Join(parts, "; "), "?")), " ")
	if len(s) > 1000 {
		s = s[:1000]
	}
	return s
}
