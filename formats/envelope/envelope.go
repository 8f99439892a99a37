// Package envelope holds the 000 file header and 999 file trailer shared by
// the "norme d'échange" family: B2 invoice files, NOEMIE returns and (as
// designed by OCT) ARL files. Layouts come from docs/formats.md §1.4
// (confidence [I×2]: two independent implementations agree).
package envelope

import (
	"github.com/octgw/oct/formats/fixed"
)

// RecordLength is the physical length of 000/999 records.
const RecordLength = 128

// Header is the 000 layout.
var Header = fixed.MustLayout("000 file header", RecordLength,
	fixed.Field{Name: "type", Pos: 1, Len: 3, Kind: fixed.Numeric},
	fixed.Field{Name: "sender_type", Pos: 4, Len: 2, Kind: fixed.Alpha},
	fixed.Field{Name: "sender", Pos: 6, Len: 14, Kind: fixed.Alpha},
	fixed.Field{Name: "sender_program", Pos: 20, Len: 6, Kind: fixed.Alpha},
	fixed.Field{Name: "receiver_type", Pos: 26, Len: 2, Kind: fixed.Alpha},
	fixed.Field{Name: "receiver", Pos: 28, Len: 14, Kind: fixed.Alpha},
	fixed.Field{Name: "receiver_program", Pos: 42, Len: 6, Kind: fixed.Alpha},
	fixed.Field{Name: "application", Pos: 48, Len: 2, Kind: fixed.Alpha},
	fixed.Field{Name: "file_id", Pos: 50, Len: 6, Kind: fixed.Alpha},
	fixed.Field{Name: "created", Pos: 56, Len: 6, Kind: fixed.Date},
	fixed.Field{Name: "norm", Pos: 62, Len: 4, Kind: fixed.Alpha},
	fixed.Field{Name: "version", Pos: 66, Len: 2, Kind: fixed.Alpha},
	fixed.Field{Name: "compression", Pos: 68, Len: 1, Kind: fixed.Alpha},
	fixed.Field{Name: "encryption", Pos: 69, Len: 1, Kind: fixed.Alpha},
	fixed.Field{Name: "currency", Pos: 70, Len: 1, Kind: fixed.Alpha},
	fixed.Field{Name: "flow", Pos: 71, Len: 1, Kind: fixed.Alpha},
	fixed.Field{Name: "filler1", Pos: 72, Len: 11, Kind: fixed.Raw},
	fixed.Field{Name: "record_length", Pos: 83, Len: 3, Kind: fixed.Numeric},
	fixed.Field{Name: "password", Pos: 86, Len: 6, Kind: fixed.Raw},
	fixed.Field{Name: "message", Pos: 92, Len: 37, Kind: fixed.Alpha},
)

// Trailer is the 999 layout. Columns 1-55 repeat the header identification.
var Trailer = fixed.MustLayout("999 file trailer", RecordLength,
	fixed.Field{Name: "type", Pos: 1, Len: 3, Kind: fixed.Numeric},
	fixed.Field{Name: "ident", Pos: 4, Len: 52, Kind: fixed.Raw}, // = header cols 4-55
	fixed.Field{Name: "record_count", Pos: 56, Len: 8, Kind: fixed.Numeric},
	fixed.Field{Name: "flow", Pos: 64, Len: 1, Kind: fixed.Alpha},
	fixed.Field{Name: "filler1", Pos: 65, Len: 18, Kind: fixed.Raw},
	fixed.Field{Name: "lot_count", Pos: 83, Len: 3, Kind: fixed.Numeric},
	fixed.Field{Name: "amount", Pos: 86, Len: 11, Kind: fixed.Raw}, // blank in B2 (Calebasse), digits in NOEMIE
	fixed.Field{Name: "sign", Pos: 97, Len: 1, Kind: fixed.Alpha},
	fixed.Field{Name: "amount_other", Pos: 98, Len: 11, Kind: fixed.Raw},
	fixed.Field{Name: "filler2", Pos: 109, Len: 20, Kind: fixed.Raw},
)

// IdentLen is the number of leading columns the trailer copies from the
// header (type excepted: cols 4-55).
const IdentLen = 55

// Refs for the fields every format reads.
var (
	HType         = Header.Ref("type")
	HSenderType   = Header.Ref("sender_type")
	HSender       = Header.Ref("sender")
	HReceiverType = Header.Ref("receiver_type")
	HReceiver     = Header.Ref("receiver")
	HApplication  = Header.Ref("application")
	HFileID       = Header.Ref("file_id")
	HCreated      = Header.Ref("created")
	HNorm         = Header.Ref("norm")
	HVersion      = Header.Ref("version")
	HFlow         = Header.Ref("flow")
	HRecordLength = Header.Ref("record_length")
	HMessage      = Header.Ref("message")
	TType         = Trailer.Ref("type")
	TIdent        = Trailer.Ref("ident")
	TRecordCount  = Trailer.Ref("record_count")
	TFlow         = Trailer.Ref("flow")
	TLotCount     = Trailer.Ref("lot_count")
	TAmount       = Trailer.Ref("amount")
	TSign         = Trailer.Ref("sign")
)

// Info is the decoded identification of a 000 header.
type Info struct {
	SenderType   string    `json:"sender_type"`
	Sender       string    `json:"sender"`
	ReceiverType string    `json:"receiver_type"`
	Receiver     string    `json:"receiver"`
	Application  string    `json:"application"`
	FileID       string    `json:"file_id"`
	Created      fixed.Day `json:"-"`
	Norm         string    `json:"norm"`
	Version      string    `json:"version"`
	Test         bool      `json:"test"` // type de flux T (test) or D (demo)
	Message      string    `json:"message,omitempty"`
}

// Decode reads the identification of a 000 record (at least 128 bytes).
// Field faults are not reported here: the format readers check the layout.
func Decode(rec []byte) Info {
	created, _ := HCreated.Date(rec)
	f := HFlow.Bytes(rec)[0]
	return Info{
		SenderType:   HSenderType.String(rec),
		Sender:       HSender.String(rec),
		ReceiverType: HReceiverType.String(rec),
		Receiver:     HReceiver.String(rec),
		Application:  HApplication.String(rec),
		FileID:       HFileID.String(rec),
		Created:      created,
		Norm:         HNorm.String(rec),
		Version:      HVersion.String(rec),
		Test:         f == 'T' || f == 'D',
		Message:      HMessage.String(rec),
	}
}

// Encode writes a 000 record for info (norm, version and the constant
// fields as given), returning a 128-byte record.
func Encode(info Info) ([]byte, error) {
	rec := make([]byte, RecordLength)
	for i := range rec {
		rec[i] = ' '
	}
	copy(rec, "000")
	flow := ""
	if info.Test {
		flow = "T"
	}
	steps := []error{
		HSenderType.SetString(rec, info.SenderType),
		HSender.SetString(rec, info.Sender),
		HReceiverType.SetString(rec, info.ReceiverType),
		HReceiver.SetString(rec, info.Receiver),
		HApplication.SetString(rec, info.Application),
		HFileID.SetString(rec, info.FileID),
		HCreated.SetDate(rec, info.Created),
		HNorm.SetString(rec, info.Norm),
		HVersion.SetString(rec, info.Version),
		HFlow.SetString(rec, flow),
		Header.Ref("compression").SetString(rec, "N"),
		Header.Ref("encryption").SetString(rec, "N"),
		Header.Ref("currency").SetString(rec, "U"),
		HRecordLength.SetInt(rec, RecordLength),
		HMessage.SetString(rec, info.Message),
	}
	for _, err := range steps {
		if err != nil {
			return nil, err
		}
	}
	return rec, nil
}

// EncodeTrailer writes the 999 record matching header: identification
// copied, record count (000 and 999 included, formats.md §8.2) and lot count.
// amount < 0 leaves the amount zone blank (B2 practice).
func EncodeTrailer(header []byte, records, lots int64, amount int64) ([]byte, error) {
	rec := make([]byte, RecordLength)
	for i := range rec {
		rec[i] = ' '
	}
	copy(rec, "999")
	copy(rec[3:IdentLen], header[3:IdentLen])
	if err := TRecordCount.SetInt(rec, records); err != nil {
		return nil, err
	}
	copy(TFlow.Bytes(rec), HFlow.Bytes(header))
	if err := TLotCount.SetInt(rec, lots); err != nil {
		return nil, err
	}
	if amount >= 0 {
		if err := TAmount.SetInt(rec, amount); err != nil {
			return nil, err
		}
		copy(TSign.Bytes(rec), "P")
	}
	return rec, nil
}

// SameIdent reports whether a 999 record repeats the header identification
// (cols 4-55).
func SameIdent(header, trailer []byte) bool {
	return string(header[3:IdentLen]) == string(trailer[3:IdentLen])
}
