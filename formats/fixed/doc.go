// Package fixed describes fixed-width record layouts as data.
//
// A Layout is a table of fields (1-based position, length, kind, name), the
// way the French exchange norms print them. Layouts are checked once when they
// are built (no overlap, inside the record); afterwards field access goes
// through precomputed Refs that slice the record without allocating, so a
// reader can walk millions of records with no reflection and no garbage.
//
// The package also carries the error vocabulary shared by every format
// reader: a stable Code (usable with errors.Is) and an Error that adds the
// 1-based physical record number and the field name.
package fixed
