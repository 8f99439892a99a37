package b2

import (
	"github.com/octgw/oct/formats/envelope"
	"github.com/octgw/oct/formats/fixed"
)

// RecordLength is the length of every B2 record (formats.md §1.2).
const RecordLength = 128

// Field kinds, short names for the tables below.
const (
	kN    = fixed.Numeric
	kA    = fixed.Alpha
	kAmt  = fixed.Amount
	kDate = fixed.Date
	kRaw  = fixed.Raw
)

type fld = fixed.Field

func fl(name string, pos, length int, kind fixed.Kind) fld {
	return fld{Name: name, Pos: pos, Len: length, Kind: kind}
}

// Layout tables. Positions are 1-based as in docs/formats.md §1.4; the
// confidence of each table is given in docs/formats/b2.md. Fields whose
// meaning is unknown are Raw: kept byte for byte and never checked beyond
// the character set.

// Lot header, every variant [I×2].
var Type1 = fixed.MustLayout("1 lot header", RecordLength,
	fl("type", 1, 1, kN),
	fl("emitter", 2, 9, kN),
	fl("filler1", 11, 6, kRaw),
	fl("dest_caisse", 17, 3, kN),
	fl("lot_number", 20, 3, kN),
	fl("category", 23, 3, kA),
	fl("legal_status", 26, 2, kA),
	fl("pricing_mode", 28, 2, kA),
	fl("sender_name", 30, 40, kA),
	fl("norm", 70, 2, kA),
	fl("lot_date", 72, 6, kDate),
	fl("filler2", 78, 1, kRaw),
	fl("variant", 79, 2, kA),
	fl("filler3", 81, 1, kRaw),
	fl("norm_version", 82, 6, kA),
	fl("currency", 88, 1, kA),
	fl("filler4", 89, 40, kRaw),
)

// keys38 are the invoice keys shared by types 2, 3, 4 and 5 in CP/ES
// (cols 1-38) [S].
var keys38 = []fld{
	fl("type", 1, 1, kN),
	fl("partner", 2, 9, kN),
	fl("filler0", 11, 1, kRaw),
	fl("nir", 12, 13, kA),
	fl("nir_key", 25, 2, kN),
	fl("rank", 27, 3, kN),
	fl("invoice", 30, 9, kN),
}

// head36 are the leading fields of complements whose letter is at col 36
// (no rank; invoice number at 27) [S].
var head36 = []fld{
	fl("type", 1, 1, kN),
	fl("partner", 2, 9, kN),
	fl("filler0", 11, 1, kRaw),
	fl("nir", 12, 13, kA),
	fl("nir_key", 25, 2, kN),
	fl("invoice", 27, 9, kN),
	fl("letter", 36, 1, kA),
}

// seq37 is the sequence number of col-36 complements.
var seq37 = fl("seq", 37, 2, kN)

// head39 are the leading fields of complements whose letter is at col 39,
// followed by a sequence number at 40 [S].
var head39 = append(append([]fld(nil), keys38...), fl("letter", 39, 1, kA), fl("seq", 40, 2, kN))

func join(parts ...[]fld) []fld {
	var out []fld
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Type2 is the invoice header, CP/ES layout [S] (FIDES RG_MF631).
var Type2 = fixed.MustLayout("2 invoice header CP/ES", RecordLength, join(keys38, []fld{
	fl("operation", 39, 1, kN),
	fl("entry_number", 40, 9, kN),
	fl("grand_regime", 49, 2, kN),
	fl("caisse", 51, 3, kN),
	fl("centre", 54, 4, kN),
	fl("rights_doc", 58, 1, kN),
	fl("pec_date", 59, 6, kDate),
	fl("rights_from", 65, 6, kDate),
	fl("issued_by", 71, 3, kN),
	fl("benefit_regime", 74, 3, kN),
	fl("insurance_nature", 77, 2, kN),
	fl("exemption", 79, 1, kA),
	fl("hosp_date", 80, 6, kDate),
	fl("accident", 86, 9, kN),
	fl("split_flag", 95, 1, kA),
	// Birth dates may be "lunar" (day or month 00) for people born abroad:
	// digits are checked, the calendar is not.
	fl("birth_date", 96, 6, kN),
	fl("birth_rank", 102, 1, kN),
	fl("entry_date", 103, 6, kDate),
	fl("exit_date", 109, 6, kDate),
	fl("exit_hour", 115, 2, kN),
	fl("contract", 117, 2, kN),
	fl("amc", 119, 10, kA),
})...)

// Type2PS is the invoice header of the liberal-practitioner ("PS") variant,
// as far as known [I]: unknown zones are Raw.
var Type2PS = fixed.MustLayout("2 invoice header PS", RecordLength,
	fl("type", 1, 1, kN),
	fl("partner", 2, 9, kN),
	fl("filler0", 11, 1, kRaw),
	fl("nir", 12, 13, kA),
	fl("nir_key", 25, 2, kN),
	fl("invoice", 27, 9, kN),
	fl("unknown1", 36, 4, kRaw),
	fl("invoice_date", 40, 6, kDate),
	fl("unknown2", 46, 1, kRaw),
	fl("invoice_type", 47, 1, kA),
	fl("unknown3", 48, 48, kRaw),
	fl("birth_date", 96, 6, kN),
	fl("birth_rank", 102, 1, kN),
	fl("unknown4", 103, 16, kRaw),
	fl("amc", 119, 10, kA),
)

// Type-2 complements.
var (
	// Comp2S [S]: letter at 39.
	Comp2S = fixed.MustLayout("2S", RecordLength, join(head39, []fld{
		fl("title_complement", 42, 6, kA),
		fl("payee", 48, 2, kA),
		fl("individual_nir", 50, 13, kA),
		fl("individual_key", 63, 2, kA), // blank when there is no individual NIR
		fl("unknown1", 65, 6, kRaw),
		fl("gp_declared", 71, 1, kA),
		fl("gp_surname", 72, 25, kA),
		fl("gp_firstname", 97, 15, kA),
		fl("gp_number", 112, 9, kA),
		fl("ips", 121, 1, kA),
		fl("unknown2", 122, 7, kRaw),
	})...)
	// Comp2B [I]: beneficiary names.
	Comp2B = fixed.MustLayout("2B", RecordLength, join(head39, []fld{
		fl("unknown1", 42, 1, kRaw),
		fl("surname", 43, 25, kA),
		fl("firstname", 68, 15, kA),
		fl("unknown2", 83, 46, kRaw),
	})...)
	// Comp2P [I]: specialty, PEC number, invoice date.
	Comp2P = fixed.MustLayout("2P", RecordLength, join(head39, []fld{
		fl("unknown1", 42, 7, kRaw),
		fl("specialty", 49, 2, kA),
		fl("unknown2", 51, 32, kRaw),
		fl("pec", 83, 16, kA),
		fl("unknown3", 99, 4, kRaw),
		fl("invoice_date", 103, 6, kA),
		fl("unknown4", 109, 20, kRaw),
	})...)
	// Comp2X [I] (DRE): letter at 36, no sequence.
	Comp2X = fixed.MustLayout("2X", RecordLength, join(head36, []fld{
		fl("reception_date", 37, 8, kA),
		fl("amc_deadline", 45, 8, kA),
		fl("composition", 53, 7, kA),
		fl("unknown1", 60, 10, kRaw),
		fl("payment_refs", 70, 12, kA),
		fl("unknown2", 82, 47, kRaw),
	})...)
)

// Type3 is the hospital service line, CP/ES [S] (RG_MF610).
var Type3 = fixed.MustLayout("3 service line CP/ES", RecordLength, join(keys38, []fld{
	fl("mt", 39, 2, kN),
	fl("dmt", 41, 3, kN),
	fl("stay_start", 44, 6, kDate),
	fl("stay_end", 50, 6, kDate),
	fl("act_code", 56, 5, kA),
	fl("quantity", 61, 3, kN),
	fl("exemption", 64, 1, kA),
	fl("coefficient", 65, 5, kN),
	fl("daily_fee_code", 70, 1, kA),
	fl("mco_coefficient", 71, 5, kN),
	fl("unit_price", 76, 7, kAmt),
	fl("base", 83, 8, kAmt),
	fl("rate", 91, 3, kN),
	fl("amo", 94, 8, kAmt),
	fl("total", 102, 8, kAmt),
	fl("ghs", 110, 4, kA),
	fl("funding_rate", 114, 3, kN),
	fl("participation", 117, 1, kA),
	fl("filler1", 118, 2, kRaw),
	fl("qualifier", 120, 1, kA),
	fl("domain", 121, 1, kA),
	fl("amc", 122, 7, kAmt),
})...)

// Type-3 complements [S].
var (
	Comp3S = fixed.MustLayout("3S", RecordLength, join(head39, []fld{
		fl("prescriber", 42, 9, kN),
		fl("practice_condition", 51, 1, kA),
		fl("specialty", 52, 2, kN),
		fl("prescription_date", 54, 6, kDate),
		fl("agreement_date", 60, 6, kDate),
		fl("agreement_code", 66, 1, kA),
		fl("place", 67, 14, kA),
		fl("unknown1", 81, 15, kRaw),
		fl("fee_order", 96, 5, kN),
		fl("device", 101, 14, kA),
		fl("prescription_origin", 115, 1, kA),
		fl("unknown2", 116, 13, kRaw),
	})...)
	Comp3E = fixed.MustLayout("3E", RecordLength, join(head39, []fld{
		fl("rpps", 42, 11, kN),
		fl("structure", 53, 14, kA),
		fl("unknown1", 67, 62, kRaw),
	})...)
	Comp3F = fixed.MustLayout("3F", RecordLength, join(head36, []fld{
		seq37,
		fl("reserved_sesam", 39, 4, kRaw),
		fl("lpp_code", 43, 13, kA),
		fl("siret", 56, 14, kN),
		fl("quantity", 70, 2, kN),
		fl("ref_price", 72, 7, kAmt),
		fl("total_billed", 79, 7, kAmt),
		fl("unit_purchase", 86, 7, kAmt),
		fl("unit_gap", 93, 7, kAmt),
		fl("total_gap", 100, 7, kAmt),
		fl("unknown1", 107, 22, kRaw),
	})...)
	// Comp3H: letter position assumed at 36 like 3F [?].
	Comp3H = fixed.MustLayout("3H", RecordLength, join(head36, []fld{
		seq37,
		fl("unknown1", 39, 10, kRaw),
		fl("ucd", 49, 7, kN),
		fl("unknown2", 56, 1, kRaw),
		fl("fraction", 57, 5, kN),
		fl("unknown3", 62, 5, kRaw),
		fl("purchase_price", 67, 7, kAmt),
		fl("gap1", 74, 7, kAmt),
		fl("gap2", 81, 7, kAmt),
		fl("quantity", 88, 3, kN),
		fl("total_billed", 91, 7, kAmt),
		fl("unknown4", 98, 31, kRaw),
	})...)
)

// type4Head is cols 1-43 of type 4 (type-3 pattern).
var type4Head = join(keys38, []fld{fl("mt", 39, 2, kN), fl("dmt", 41, 3, kN)})

// Type4 is the professional act line, CP/ES [S] (RG_MF620).
var Type4 = fixed.MustLayout("4 act line CP/ES", RecordLength, join(type4Head, []fld{
	fl("prescriber", 44, 9, kN),
	fl("prescription_origin", 53, 1, kA),
	fl("exemption", 54, 1, kA),
	fl("prescriber_specialty", 55, 2, kN),
	fl("executant", 57, 9, kN),
	fl("tariff_zone", 66, 2, kN),
	fl("executant_specialty", 68, 2, kN),
	fl("care_date", 70, 6, kDate),
	fl("act_code", 76, 5, kA),
	fl("quantity", 81, 2, kN),
	fl("coefficient", 83, 6, kN),
	fl("count", 89, 2, kN),
	fl("unit_price", 91, 7, kAmt),
	fl("base", 98, 7, kAmt),
	fl("rate", 105, 3, kN),
	fl("amo", 108, 7, kAmt),
	fl("fees", 115, 7, kAmt),
	fl("qualifier", 122, 1, kA),
	fl("amc", 123, 6, kAmt),
})...)

// Type4PS is the act line of the PS variant [I]: two columns earlier from
// the executant onward; cols 120-128 unknown.
var Type4PS = fixed.MustLayout("4 act line PS", RecordLength, join(type4Head, []fld{
	fl("prescriber", 44, 9, kN),
	fl("prescription_origin", 53, 1, kA),
	fl("exemption", 54, 1, kA),
	fl("executant", 55, 9, kN),
	fl("tariff_zone", 64, 2, kN),
	fl("executant_specialty", 66, 2, kN),
	fl("care_date", 68, 6, kDate),
	fl("act_code", 74, 5, kA),
	fl("quantity", 79, 2, kN),
	fl("coefficient", 81, 6, kN),
	fl("count", 87, 2, kN),
	fl("unit_price", 89, 7, kAmt),
	fl("base", 96, 7, kAmt),
	fl("rate", 103, 3, kN),
	fl("amo", 106, 7, kAmt),
	fl("fees", 113, 7, kAmt),
	fl("unknown1", 120, 9, kRaw),
})...)

// Type-4 complements [S]: letter at 36, sequence at 37.
var (
	Comp4S = fixed.MustLayout("4S", RecordLength, join(head36, []fld{
		seq37,
		fl("unknown1", 39, 32, kRaw),
		fl("forcing_amo", 71, 1, kA),
		fl("place", 72, 14, kA),
		fl("unknown2", 86, 14, kRaw),
		fl("forcing_amc", 100, 1, kA),
		fl("unknown3", 101, 5, kRaw),
		fl("device", 106, 14, kA),
		fl("ghs", 120, 4, kA),
		fl("domain", 124, 1, kA),
		fl("unknown4", 125, 3, kRaw),
		fl("participation", 128, 1, kA),
	})...)
	Comp4E = fixed.MustLayout("4E", RecordLength, join(head36, []fld{
		seq37,
		fl("rpps_prescriber", 39, 11, kN),
		fl("unknown1", 50, 14, kRaw),
		fl("rpps_executant", 64, 11, kN),
		fl("unknown2", 75, 54, kRaw),
	})...)
	Comp4B = fixed.MustLayout("4B", RecordLength, join(head36, []fld{
		seq37,
		fl("nabm", 39, 90, kRaw), // 5 × (date, quantity, code): positions unknown
	})...)
	Comp4H = fixed.MustLayout("4H", RecordLength, join(head36, []fld{
		seq37,
		fl("ucd", 39, 90, kRaw), // positions unknown
	})...)
	Comp4M = fixed.MustLayout("4M", RecordLength, join(head36, []fld{
		seq37,
		fl("unknown1", 39, 4, kRaw),
		fl("ccam_code", 43, 13, kA),
		fl("unknown2", 56, 1, kRaw),
		fl("activity", 57, 1, kA),
		fl("phase", 58, 1, kA),
		fl("modifiers", 59, 4, kA),
		fl("association", 63, 1, kA),
		fl("unknown3", 64, 1, kRaw),
		fl("session_date", 65, 6, kDate),
		fl("teeth", 71, 32, kA),
		fl("unknown4", 103, 1, kRaw),
		fl("amc_modifiers", 104, 4, kA),
		fl("unknown5", 108, 21, kRaw),
	})...)
)

// Type5 is the invoice trailer, CP/ES [S].
var Type5 = fixed.MustLayout("5 invoice trailer CP/ES", RecordLength, join(keys38, []fld{
	fl("line_count", 39, 3, kN),
	fl("base_services", 42, 8, kAmt),
	fl("amo_services", 50, 8, kAmt),
	fl("fees", 58, 8, kAmt),
	fl("amo_fees", 66, 8, kAmt),
	fl("patient_share", 74, 8, kAmt),
	fl("amc_services", 82, 8, kAmt),
	fl("amc_fees", 90, 8, kAmt),
	fl("filler1", 98, 17, kRaw),
	fl("billed_services", 115, 8, kAmt),
	fl("publisher", 123, 4, kRaw),
	fl("filler2", 127, 2, kRaw),
})...)

// Type5PS: the PS invoice trailer is not documented; only the keys are
// known (assumed like type 2 PS) [?].
var Type5PS = fixed.MustLayout("5 invoice trailer PS", RecordLength,
	fl("type", 1, 1, kN),
	fl("partner", 2, 9, kN),
	fl("filler0", 11, 1, kRaw),
	fl("nir", 12, 13, kA),
	fl("nir_key", 25, 2, kN),
	fl("invoice", 27, 9, kN),
	fl("unknown1", 36, 93, kRaw),
)

// Type6 is the lot trailer [I] (Calebasse; labels inferred).
var Type6 = fixed.MustLayout("6 lot trailer", RecordLength,
	fl("type", 1, 1, kN),
	fl("emitter", 2, 9, kN),
	fl("invoices", 11, 3, kN),
	fl("lines", 14, 4, kN),
	fl("invoices2", 18, 4, kN),
	fl("invoices3", 22, 3, kN),
	fl("amount1", 25, 9, kAmt),
	fl("amount2", 34, 9, kAmt),
	fl("zeros", 43, 9, kRaw),
	fl("lot_number", 52, 3, kN),
	fl("filler1", 55, 74, kRaw),
)

// Unknown complements (letters not listed above) and type-1 complements:
// the common head is checked, the rest is passed through.
var (
	Comp39Unknown = fixed.MustLayout("complement (letter at 39)", RecordLength, join(head39, []fld{fl("unknown1", 42, 87, kRaw)})...)
	Comp36Unknown = fixed.MustLayout("complement (letter at 36)", RecordLength, join(head36, []fld{fl("unknown1", 37, 92, kRaw)})...)
	Comp1         = fixed.MustLayout("1 complement", RecordLength,
		fl("type", 1, 1, kN), fl("unknown1", 2, 37, kRaw), fl("letter", 39, 1, kA), fl("unknown2", 40, 89, kRaw))
)

// Header and Trailer are the shared 000/999 layouts.
var (
	Header  = envelope.Header
	Trailer = envelope.Trailer
)

// Type3PS: service lines of the PS variant are not documented; the shared
// keys are assumed [?].
var Type3PS = fixed.MustLayout("3 service line PS", RecordLength,
	fl("type", 1, 1, kN),
	fl("partner", 2, 9, kN),
	fl("filler0", 11, 1, kRaw),
	fl("nir", 12, 13, kA),
	fl("nir_key", 25, 2, kN),
	fl("unknown1", 27, 102, kRaw),
)
