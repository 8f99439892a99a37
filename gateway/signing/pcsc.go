//go:build pcsc

package signing

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/ebfe/scard"
)

// openPCSC opens a card through pcscd. The client library finds pcscd's
// socket through PCSCLITE_CSOCK_NAME when it is set.
func openPCSC(ctx context.Context, mc MemberConfig, p pin) (Member, error) {
	tr := &pcscTransport{id: mc.ID, reader: mc.Reader}
	if err := tr.Reconnect(ctx); err != nil {
		_ = tr.Close()
		return nil, err
	}
	return newCardMember(ctx, mc, p, tr)
}

// pcscTransport is one exclusive connection to the card in a named reader.
type pcscTransport struct {
	id     string
	reader string
	sctx   *scard.Context
	card   *scard.Card
}

func (t *pcscTransport) Transmit(ctx context.Context, apdu []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if t.card == nil {
		return nil, newErr(CodeDeviceGone, t.id, "", errors.New("no card connection"))
	}
	resp, err := t.card.Transmit(apdu)
	if err != nil {
		return nil, t.err("", err)
	}
	return resp, nil
}

// Reconnect drops the current connection (resetting the card, so that the
// PIN verification does not outlive us) and connects again.
func (t *pcscTransport) Reconnect(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t.disconnect()
	if t.sctx != nil {
		if ok, err := t.sctx.IsValid(); err != nil || !ok { // pcscd restarted
			_ = t.sctx.Release()
			t.sctx = nil
		}
	}
	if t.sctx == nil {
		c, err := scard.EstablishContext()
		if err != nil {
			return t.err("establish context", err)
		}
		t.sctx = c
	}
	readers, err := t.sctx.ListReaders()
	if err != nil {
		return t.err("list readers", err)
	}
	if !slices.Contains(readers, t.reader) {
		return newErr(CodeDeviceGone, t.id, "connect", fmt.Errorf("no reader %q", t.reader))
	}
	card, err := t.sctx.Connect(t.reader, scard.ShareExclusive, scard.ProtocolAny)
	if err != nil {
		return t.err("connect", err)
	}
	t.card = card
	return nil
}

func (t *pcscTransport) disconnect() {
	if t.card != nil {
		_ = t.card.Disconnect(scard.ResetCard)
		t.card = nil
	}
}

func (t *pcscTransport) Close() error {
	t.disconnect()
	if t.sctx != nil {
		err := t.sctx.Release()
		t.sctx = nil
		if err != nil {
			return t.err("release", err)
		}
	}
	return nil
}

// err types a PC/SC error: the card or the service going away is
// CodeDeviceGone (health checks reconnect), the rest CodeDevice.
func (t *pcscTransport) err(op string, err error) error {
	var se scard.Error
	if errors.As(err, &se) {
		switch se {
		case scard.ErrRemovedCard, scard.ErrResetCard, scard.ErrNoSmartcard, scard.ErrUnpoweredCard,
			scard.ErrUnresponsiveCard, scard.ErrReaderUnavailable, scard.ErrUnknownReader,
			scard.ErrNoService, scard.ErrServiceStopped, scard.ErrInvalidHandle, scard.ErrNoReadersAvailable,
			scard.ErrCommError, scard.ErrSharingViolation, scard.ErrNotTransacted, scard.ErrCommDataLost:
			if se == scard.ErrRemovedCard || se == scard.ErrNoSmartcard || se == scard.ErrInvalidHandle {
				t.disconnect()
			}
			return newErr(CodeDeviceGone, t.id, op, err)
		}
	}
	return newErr(CodeDevice, t.id, op, err)
}
