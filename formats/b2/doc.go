// Package b2 reads, validates, writes, splits and generates B2 invoice files
// (FSE/DRE, norme B2 "IRIS"): fixed 128-character records, 000 file header,
// lots (1 … 6) of invoices (2 … 5) of lines (3, 4 and their complements),
// 999 file trailer. Layouts are fixed tables (layout.go) built from
// docs/formats.md §1; docs/formats/b2.md gives their confidence and the
// project conventions applied.
//
//   - Reader / Writer: streaming, records back to back or separated by LF,
//     CRLF or any CR/LF run; writing what was read gives the input back byte
//     for byte. No allocation per record.
//   - Validate / Validator: one streaming pass with flat memory; every
//     finding is a fixed.Error with a stable code (codes.go).
//   - ExtractLot / RebuildLot: one-lot files for the gateway's split.
//   - Generate: deterministic test files, optionally with one fault.
//
// Invoice summaries carry the insured's NIR: hash it (formats/nir), never
// log it.
package b2
