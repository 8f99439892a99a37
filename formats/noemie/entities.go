package noemie

import "github.com/octgw/oct/formats/fixed"

// The entity dictionary of formats.md §3.4, as fixed layout tables. Every
// length includes the 3-digit code, the 2-digit break level ("niveau de
// rupture") and the trailing '@'. Positions are 1-based as in the norm.
//
// Source: the Calebasse NOEMIE-PS dictionary (confidence [I], one
// implementation); the 580 break levels come from a production AMC writer
// ([I]). Field names are ours.

// Role is the place of an entity in the 580 hierarchy (formats.md §3.3).
type Role uint8

const (
	// RoleOpen opens a break level (020→01, 040→02, 071→03, 081→04, 102→05).
	RoleOpen Role = iota + 1
	// RoleDetail is a detail entity (break level 99), allowed inside an
	// invoice (102) only.
	RoleDetail
	// RoleControl is the 990 control entity closing a level.
	RoleControl
)

// Entity describes one entity of the dictionary.
type Entity struct {
	Code       string // "102"
	Name       string
	Role       Role
	Level      int    // break level opened (RoleOpen); 99 for details; 0 for 990
	Confidence string // formats.md tag of the layout
	Layout     *fixed.Layout
}

// head is the common start of every entity; end is the delimiter.
func ent(code, name string, role Role, level int, length int, fields ...fixed.Field) *Entity {
	all := make([]fixed.Field, 0, len(fields)+3)
	all = append(all,
		fixed.Field{Name: "code", Pos: 1, Len: 3, Kind: fixed.Numeric},
		fixed.Field{Name: "level", Pos: 4, Len: 2, Kind: fixed.Numeric},
	)
	all = append(all, fields...)
	all = append(all, fixed.Field{Name: "end", Pos: length, Len: 1, Kind: fixed.Raw})
	return &Entity{Code: code, Name: name, Role: role, Level: level, Confidence: "[I]",
		Layout: fixed.MustLayout(code+" "+name, length, all...)}
}

type fl = fixed.Field

const (
	al = fixed.Alpha
	nu = fixed.Numeric
	am = fixed.Amount
	dt = fixed.Date
	rw = fixed.Raw
)

// Entities of the dictionary. Zones that carry personal data we do not use
// (names) are Raw so that nothing reads them by accident.
var (
	E010 = ent("010", "organisme complementaire", RoleDetail, 99, 14,
		fl{Name: "amc", Pos: 6, Len: 7, Kind: nu}, fl{Name: "amc_key", Pos: 13, Len: 1, Kind: nu})
	E020 = ent("020", "mandataire", RoleOpen, 1, 21,
		fl{Name: "number", Pos: 6, Len: 15, Kind: nu})
	E040 = ent("040", "destinataire de reglement", RoleOpen, 2, 21,
		fl{Name: "number", Pos: 6, Len: 15, Kind: nu})
	E070 = ent("070", "date comptable", RoleOpen, 3, 12,
		fl{Name: "date", Pos: 6, Len: 6, Kind: dt})
	E071 = ent("071", "date comptable et virement", RoleOpen, 3, 86,
		fl{Name: "date", Pos: 6, Len: 6, Kind: dt},
		fl{Name: "label1", Pos: 12, Len: 32, Kind: al},
		fl{Name: "label2", Pos: 44, Len: 32, Kind: al},
		fl{Name: "payer", Pos: 76, Len: 10, Kind: al})
	E080 = ent("080", "lot", RoleDetail, 99, 15,
		fl{Name: "lot_date", Pos: 6, Len: 6, Kind: dt}, fl{Name: "lot", Pos: 12, Len: 3, Kind: nu})
	E081 = ent("081", "type de retour", RoleOpen, 4, 22,
		fl{Name: "return_type", Pos: 6, Len: 2, Kind: nu}, fl{Name: "place", Pos: 8, Len: 14, Kind: al})
	E100 = ent("100", "facture", RoleDetail, 99, 15,
		fl{Name: "invoice", Pos: 6, Len: 9, Kind: nu})
	E102 = ent("102", "facture", RoleOpen, 5, 40,
		fl{Name: "invoice", Pos: 6, Len: 9, Kind: al},
		fl{Name: "complement", Pos: 15, Len: 6, Kind: al},
		fl{Name: "lot", Pos: 21, Len: 3, Kind: al}, // A in the dictionary; read as a number when not blank
		fl{Name: "lot_date", Pos: 24, Len: 6, Kind: dt},
		fl{Name: "invoice_type", Pos: 30, Len: 1, Kind: al},
		fl{Name: "invoice_date", Pos: 31, Len: 6, Kind: dt},
		fl{Name: "amc_processing", Pos: 37, Len: 1, Kind: al},
		fl{Name: "nature", Pos: 38, Len: 2, Kind: al})
	E103 = ent("103", "assure et beneficiaire", RoleDetail, 99, 152,
		fl{Name: "nir", Pos: 6, Len: 13, Kind: al},
		fl{Name: "nir_key", Pos: 19, Len: 2, Kind: nu},
		fl{Name: "names", Pos: 21, Len: 65, Kind: rw}, // birth name 25, usage name 25, first name 15
		fl{Name: "individual_nir", Pos: 86, Len: 13, Kind: al},
		fl{Name: "individual_nir_key", Pos: 99, Len: 2, Kind: nu},
		fl{Name: "birth_date", Pos: 101, Len: 6, Kind: nu}, // AAMMJJ or JJMMAA: sources differ (§3.2); kept raw
		fl{Name: "birth_rank", Pos: 107, Len: 1, Kind: nu},
		fl{Name: "patient_names", Pos: 108, Len: 40, Kind: rw}, // name 25, first name 15
		fl{Name: "unit", Pos: 148, Len: 4, Kind: nu})
	E110 = ent("110", "assure", RoleDetail, 99, 88,
		fl{Name: "nir", Pos: 6, Len: 13, Kind: al}, fl{Name: "nir_key", Pos: 19, Len: 2, Kind: nu},
		fl{Name: "name_kind", Pos: 21, Len: 1, Kind: al}, fl{Name: "names", Pos: 22, Len: 66, Kind: rw})
	E120 = ent("120", "malade", RoleDetail, 99, 57,
		fl{Name: "birth_date", Pos: 6, Len: 6, Kind: nu}, fl{Name: "rank", Pos: 12, Len: 1, Kind: al},
		fl{Name: "names", Pos: 13, Len: 40, Kind: rw}, fl{Name: "unit", Pos: 53, Len: 4, Kind: al})
	E150 = ent("150", "nature d'assurance", RoleDetail, 99, 8,
		fl{Name: "nature", Pos: 6, Len: 2, Kind: al})
	E160 = ent("160", "archivage", RoleDetail, 99, 23,
		fl{Name: "archive", Pos: 6, Len: 17, Kind: nu})
	E198 = ent("198", "part AMO", RoleDetail, 99, 24, partFields()...)
	E199 = ent("199", "part AMC", RoleDetail, 99, 49, append(partFields(),
		fl{Name: "amc", Pos: 24, Len: 10, Kind: nu}, fl{Name: "member", Pos: 34, Len: 15, Kind: al})...)
	E210 = ent("210", "acte professionnel", RoleDetail, 99, 118,
		fl{Name: "line", Pos: 6, Len: 2, Kind: nu}, fl{Name: "regime_code", Pos: 8, Len: 2, Kind: nu},
		fl{Name: "exemption", Pos: 10, Len: 1, Kind: al}, fl{Name: "mt", Pos: 11, Len: 2, Kind: nu},
		fl{Name: "dmt", Pos: 13, Len: 3, Kind: nu}, fl{Name: "prescribed", Pos: 16, Len: 6, Kind: dt},
		fl{Name: "start", Pos: 22, Len: 6, Kind: dt}, fl{Name: "end_date", Pos: 28, Len: 6, Kind: dt},
		fl{Name: "unit_price", Pos: 34, Len: 8, Kind: am}, fl{Name: "base", Pos: 42, Len: 8, Kind: am},
		fl{Name: "rate", Pos: 50, Len: 3, Kind: nu}, fl{Name: "reimbursed", Pos: 53, Len: 8, Kind: am},
		fl{Name: "sign", Pos: 61, Len: 1, Kind: al}, fl{Name: "service", Pos: 62, Len: 3, Kind: al},
		fl{Name: "service_complement", Pos: 65, Len: 2, Kind: al}, fl{Name: "quantity", Pos: 67, Len: 3, Kind: nu},
		fl{Name: "coefficient", Pos: 70, Len: 5, Kind: nu}, fl{Name: "count", Pos: 75, Len: 3, Kind: nu},
		fl{Name: "expense", Pos: 78, Len: 8, Kind: am}, fl{Name: "qualifier", Pos: 86, Len: 2, Kind: al},
		fl{Name: "am_rate", Pos: 88, Len: 3, Kind: nu}, fl{Name: "am_amount", Pos: 91, Len: 8, Kind: am},
		fl{Name: "mutual_rate", Pos: 99, Len: 3, Kind: nu}, fl{Name: "mutual_amount", Pos: 102, Len: 8, Kind: am},
		fl{Name: "mutual_base", Pos: 110, Len: 8, Kind: am})
	E220 = ent("220", "frais hospitaliers", RoleDetail, 99, 118,
		fl{Name: "line", Pos: 6, Len: 2, Kind: nu}, fl{Name: "regime_code", Pos: 8, Len: 2, Kind: nu},
		fl{Name: "exemption", Pos: 10, Len: 1, Kind: al}, fl{Name: "mt", Pos: 11, Len: 2, Kind: nu},
		fl{Name: "dmt", Pos: 13, Len: 3, Kind: nu},
		fl{Name: "start", Pos: 16, Len: 6, Kind: dt}, fl{Name: "end_date", Pos: 22, Len: 6, Kind: dt},
		fl{Name: "unit_price", Pos: 28, Len: 8, Kind: am}, fl{Name: "base", Pos: 36, Len: 8, Kind: am},
		fl{Name: "rate", Pos: 44, Len: 3, Kind: nu}, fl{Name: "reimbursed", Pos: 47, Len: 8, Kind: am},
		fl{Name: "sign", Pos: 55, Len: 1, Kind: al}, fl{Name: "service", Pos: 56, Len: 3, Kind: al},
		fl{Name: "service_complement", Pos: 59, Len: 2, Kind: al}, fl{Name: "quantity", Pos: 61, Len: 3, Kind: nu},
		fl{Name: "coefficient", Pos: 64, Len: 5, Kind: nu}, fl{Name: "count", Pos: 69, Len: 3, Kind: nu},
		fl{Name: "expense", Pos: 72, Len: 8, Kind: am}, fl{Name: "qualifier", Pos: 80, Len: 2, Kind: al},
		fl{Name: "global_coefficient", Pos: 82, Len: 5, Kind: nu}, fl{Name: "flat_code", Pos: 87, Len: 1, Kind: nu},
		fl{Name: "am_rate", Pos: 88, Len: 3, Kind: nu}, fl{Name: "am_amount", Pos: 91, Len: 8, Kind: am},
		fl{Name: "mutual_rate", Pos: 99, Len: 3, Kind: nu}, fl{Name: "mutual_amount", Pos: 102, Len: 8, Kind: am},
		fl{Name: "mutual_base", Pos: 110, Len: 8, Kind: am})
	E250 = ent("250", "retenue", RoleDetail, 99, 47,
		fl{Name: "line", Pos: 6, Len: 2, Kind: nu}, fl{Name: "debt", Pos: 8, Len: 10, Kind: al},
		fl{Name: "debt_date", Pos: 18, Len: 6, Kind: dt}, fl{Name: "debt_nature", Pos: 24, Len: 3, Kind: al},
		fl{Name: "recovery", Pos: 27, Len: 3, Kind: al}, fl{Name: "amount", Pos: 30, Len: 8, Kind: am},
		fl{Name: "sign", Pos: 38, Len: 1, Kind: al}, fl{Name: "balance", Pos: 39, Len: 8, Kind: am})
	E261 = ent("261", "paiement ponctuel", RoleDetail, 99, 19,
		fl{Name: "payment_code", Pos: 6, Len: 5, Kind: nu}, fl{Name: "amount", Pos: 11, Len: 8, Kind: am})
	E262 = ent("262", "detail paiement ponctuel", RoleDetail, 99, 134,
		fl{Name: "payment_code", Pos: 6, Len: 5, Kind: al}, fl{Name: "label", Pos: 11, Len: 80, Kind: al},
		fl{Name: "nir", Pos: 91, Len: 13, Kind: al}, fl{Name: "nir_key", Pos: 104, Len: 2, Kind: nu},
		fl{Name: "birth_date", Pos: 106, Len: 6, Kind: nu}, fl{Name: "birth_rank", Pos: 112, Len: 1, Kind: nu},
		fl{Name: "period", Pos: 113, Len: 1, Kind: al}, fl{Name: "period_start", Pos: 114, Len: 6, Kind: dt},
		fl{Name: "period_end", Pos: 120, Len: 6, Kind: dt}, fl{Name: "amount", Pos: 126, Len: 8, Kind: am})
	E290 = ent("290", "rejet ou signalement", RoleDetail, 99, 98,
		fl{Name: "line", Pos: 6, Len: 2, Kind: nu}, fl{Name: "reject_code", Pos: 8, Len: 10, Kind: al},
		fl{Name: "label", Pos: 18, Len: 80, Kind: al})
	E294 = ent("294", "ligne rejet", RoleDetail, 99, 153,
		fl{Name: "reject_code", Pos: 6, Len: 4, Kind: al}, fl{Name: "label", Pos: 10, Len: 86, Kind: al},
		fl{Name: "reject_level", Pos: 96, Len: 1, Kind: al}, fl{Name: "part", Pos: 97, Len: 1, Kind: al},
		fl{Name: "service", Pos: 98, Len: 5, Kind: al}, fl{Name: "care_date", Pos: 103, Len: 6, Kind: dt},
		fl{Name: "executant", Pos: 109, Len: 9, Kind: nu}, fl{Name: "line", Pos: 118, Len: 3, Kind: nu},
		fl{Name: "rank", Pos: 121, Len: 2, Kind: nu}, fl{Name: "info", Pos: 123, Len: 30, Kind: al})
	E295 = ent("295", "commentaire", RoleDetail, 99, 135,
		fl{Name: "comment_code", Pos: 6, Len: 1, Kind: al}, fl{Name: "text", Pos: 7, Len: 128, Kind: al})
	E990 = ent("990", "controle", RoleControl, 0, 43,
		fl{Name: "ident", Pos: 6, Len: 17, Kind: al}, fl{Name: "count", Pos: 23, Len: 8, Kind: nu},
		fl{Name: "sum", Pos: 31, Len: 11, Kind: am}, fl{Name: "sign", Pos: 42, Len: 1, Kind: al})
)

// 198 and 199 share their first fields.
func partFields() []fixed.Field {
	return []fixed.Field{
		{Name: "requested", Pos: 6, Len: 8, Kind: am},
		{Name: "state", Pos: 14, Len: 1, Kind: al},
		{Name: "paid", Pos: 15, Len: 8, Kind: am},
		{Name: "sign", Pos: 23, Len: 1, Kind: al}, // sign of the paid amount: P or N
	}
}

// Dictionary lists every entity, in code order.
var Dictionary = []*Entity{E010, E020, E040, E070, E071, E080, E081, E100, E102, E103, E110, E120,
	E150, E160, E198, E199, E210, E220, E250, E261, E262, E290, E294, E295, E990}

// byCode indexes the dictionary by numeric code (immutable after init).
var byCode = func() (t [1000]*Entity) {
	for _, e := range Dictionary {
		n := int(e.Code[0]-'0')*100 + int(e.Code[1]-'0')*10 + int(e.Code[2]-'0')
		t[n] = e
	}
	return t
}()

// Lookup returns the entity of a 3-byte code, or nil.
func Lookup(code []byte) *Entity {
	if len(code) != 3 || !fixed.AllDigits(code) {
		return nil
	}
	return byCode[int(code[0]-'0')*100+int(code[1]-'0')*10+int(code[2]-'0')]
}

// MaxEntityLen is the length of the longest entity (294).
const MaxEntityLen = 153

// Precomputed accessors.
var (
	rLevel = E020.Layout.Ref("level") // same place in every entity

	r020Number = E020.Layout.Ref("number")
	r040Number = E040.Layout.Ref("number")
	r070Date   = E070.Layout.Ref("date")
	r071Date   = E071.Layout.Ref("date")
	r071Label1 = E071.Layout.Ref("label1")
	r071Label2 = E071.Layout.Ref("label2")
	r071Payer  = E071.Layout.Ref("payer")
	r081Type   = E081.Layout.Ref("return_type")
	r081Place  = E081.Layout.Ref("place")

	r102Invoice    = E102.Layout.Ref("invoice")
	r102Complement = E102.Layout.Ref("complement")
	r102Lot        = E102.Layout.Ref("lot")
	r102LotDate    = E102.Layout.Ref("lot_date")
	r102Type       = E102.Layout.Ref("invoice_type")
	r102Date       = E102.Layout.Ref("invoice_date")
	r102AMC        = E102.Layout.Ref("amc_processing")
	r102Nature     = E102.Layout.Ref("nature")

	r103NIR       = E103.Layout.Ref("nir")
	r103Key       = E103.Layout.Ref("nir_key")
	r103Birth     = E103.Layout.Ref("birth_date")
	r103BirthRank = E103.Layout.Ref("birth_rank")

	rPartRequested = E198.Layout.Ref("requested")
	rPartState     = E198.Layout.Ref("state")
	rPartPaid      = E198.Layout.Ref("paid")
	rPartSign      = E198.Layout.Ref("sign")
	r199AMC        = E199.Layout.Ref("amc")

	r290Line  = E290.Layout.Ref("line")
	r290Code  = E290.Layout.Ref("reject_code")
	r290Label = E290.Layout.Ref("label")

	r294Code  = E294.Layout.Ref("reject_code")
	r294Label = E294.Layout.Ref("label")
	r294Level = E294.Layout.Ref("reject_level")
	r294Part  = E294.Layout.Ref("part")
	r294Line  = E294.Layout.Ref("line")
	r294Info  = E294.Layout.Ref("info")

	r990Ident = E990.Layout.Ref("ident")
	r990Count = E990.Layout.Ref("count")
	r990Sum   = E990.Layout.Ref("sum")
	r990Sign  = E990.Layout.Ref("sign")
)

// Norm is the value of the 000 "norme" field for référence 580.
const Norm = "580"
