package signing

import (
	"context"
	"errors"
	"fmt"
)

// Code is a stable error code. Callers match codes with errors.Is against
// the Err* sentinels, or read Error.Code after errors.As; never the text.
type Code string

// Error codes. They are part of the API: never rename one.
const (
	// CodeConfig: the configuration is invalid (missing field, duplicate id, ...).
	CodeConfig Code = "SIGN_CONFIG"
	// CodeSoftwareInProduction: a software key was configured in a production pool.
	CodeSoftwareInProduction Code = "SIGN_SOFTWARE_IN_PRODUCTION"
	// CodePIN: the PIN could not be read from its file or environment variable.
	CodePIN Code = "SIGN_PIN_SOURCE"
	// CodePINIncorrect: the token or card rejected the PIN. It is never presented again.
	CodePINIncorrect Code = "SIGN_PIN_INCORRECT"
	// CodePINBlocked: the token or card reports a blocked PIN. The member is taken out.
	CodePINBlocked Code = "SIGN_PIN_BLOCKED"
	// CodeKeyNotFound: the key or its certificate is not on the token or card.
	CodeKeyNotFound Code = "SIGN_KEY_NOT_FOUND"
	// CodeDevice: the device failed an operation (I/O error, unexpected status word).
	CodeDevice Code = "SIGN_DEVICE"
	// CodeDeviceGone: the device is no longer reachable (card removed or reset,
	// token gone). The member is marked down until a health check reopens it.
	CodeDeviceGone Code = "SIGN_DEVICE_GONE"
	// CodeUnsupported: the request cannot be served by this key (hash, padding).
	CodeUnsupported Code = "SIGN_UNSUPPORTED"
	// CodeNoMember: no healthy member can serve the profile.
	CodeNoMember Code = "SIGN_NO_MEMBER"
	// CodeMixedKeys: the raw crypto.Signer view of a profile was used while the
	// profile's members hold different keys (use SignFile instead).
	CodeMixedKeys Code = "SIGN_MIXED_KEYS"
	// CodeClosed: the pool or member is closed.
	CodeClosed Code = "SIGN_CLOSED"
	// CodeVerify: a CMS signature did not verify.
	CodeVerify Code = "SIGN_VERIFY"
	// CodePCSCUnavailable: PC/SC support is not compiled in (build tag pcsc).
	CodePCSCUnavailable Code = "SIGN_PCSC_UNAVAILABLE"
)

// Sentinels for errors.Is. Any *Error with the same Code matches.
var (
	ErrConfig               = &Error{Code: CodeConfig}
	ErrSoftwareInProduction = &Error{Code: CodeSoftwareInProduction}
	ErrPIN                  = &Error{Code: CodePIN}
	ErrPINIncorrect         = &Error{Code: CodePINIncorrect}
	ErrPINBlocked           = &Error{Code: CodePINBlocked}
	ErrKeyNotFound          = &Error{Code: CodeKeyNotFound}
	ErrDevice               = &Error{Code: CodeDevice}
	ErrDeviceGone           = &Error{Code: CodeDeviceGone}
	ErrUnsupported          = &Error{Code: CodeUnsupported}
	ErrNoMember             = &Error{Code: CodeNoMember}
	ErrMixedKeys            = &Error{Code: CodeMixedKeys}
	ErrClosed               = &Error{Code: CodeClosed}
	ErrVerify               = &Error{Code: CodeVerify}
	ErrPCSCUnavailable      = &Error{Code: CodePCSCUnavailable}
)

// Error is the error type of this package. It never carries a PIN.
type Error struct {
	Code   Code
	Member string // member id, when known
	Op     string // what was being done ("open", "sign", "verify pin", ...)
	// TriesLeft is the number of PIN tries the card or token reports after a
	// rejected PIN, or -1 when unknown. Only set with CodePINIncorrect.
	TriesLeft int
	Err       error // underlying cause, may be nil
}

func (e *Error) Error() string {
	msg := "signing"
	if e.Member != "" {
		msg += " member " + e.Member
	}
	if e.Op != "" {
		msg += ": " + e.Op
	}
	msg += ": " + string(e.Code)
	if e.Code == CodePINIncorrect && e.TriesLeft >= 0 {
		msg += fmt.Sprintf(" (%d tries left)", e.TriesLeft)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// CodeOf returns the code of the first *Error in err's chain, or "" if none.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func newErr(code Code, member, op string, cause error) *Error {
	return &Error{Code: code, Member: member, Op: op, TriesLeft: -1, Err: cause}
}

// memberFault reports whether err is the member's fault, so that another
// member may succeed, as opposed to the request's fault (unsupported hash,
// cancelled context), which would fail on every member.
func memberFault(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return CodeOf(err) != CodeUnsupported
}

// pinFault reports whether err disables the member for good (until Reopen).
func pinFault(err error) bool {
	c := CodeOf(err)
	return c == CodePINIncorrect || c == CodePINBlocked
}
