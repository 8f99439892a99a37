package check

// NOEMIE and ARL validators, registered in validatorFor.

import (
	"context"
	"io"
	"math"

	"github.com/octgw/oct/formats/arl"
	"github.com/octgw/oct/formats/noemie"
)

// limit maps the Limits convention (0 default, negative none) to the
// formats' options, where 0 means the default.
func limit64(v int64) int64 {
	if v < 0 {
		return math.MaxInt64
	}
	return v
}

func limitInt(v int) int {
	if v < 0 {
		return math.MaxInt
	}
	return v
}

func validateNOEMIE(ctx context.Context, r io.Reader, lim Limits) (Result, error) {
	f, err := noemie.Read(r, noemie.Options{MaxBytes: limit64(lim.MaxBytes), MaxEntities: limit64(lim.MaxRecords), MaxErrors: limitInt(lim.MaxErrors)})
	if err != nil {
		return Result{}, err
	}
	return Result{
		Valid:   f.Valid,
		Errors:  FromFixed(f.Errors),
		Dropped: f.Dropped,
		Stats:   Stats{Records: f.Stats.Records, Lots: f.Stats.Lots, Invoices: f.Stats.Invoices},
	}, nil
}

func validateARL(ctx context.Context, r io.Reader, lim Limits) (Result, error) {
	f, err := arl.DefaultRegistry().Decode(r, arl.Options{MaxBytes: limit64(lim.MaxBytes), MaxRecords: limit64(lim.MaxRecords), MaxErrors: limitInt(lim.MaxErrors)})
	if err != nil {
		return Result{}, err
	}
	return Result{
		Valid:   f.Valid,
		Errors:  FromFixed(f.Errors),
		Dropped: f.Dropped,
		Stats:   Stats{Records: f.Records, Lots: int64(len(f.ARLs))},
	}, nil
}
