//go:build !pcsc

package signing

import "context"

// openPCSC without the pcsc build tag: PC/SC needs libpcsclite (cgo).
func openPCSC(_ context.Context, mc MemberConfig, _ pin) (Member, error) {
	return nil, newErr(CodePCSCUnavailable, mc.ID, "open", nil)
}
