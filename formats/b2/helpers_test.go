package b2

import (
	"os"
	"time"
)

func timeMonth(m int) time.Month { return time.Month(m) }

func readDoc() (string, error) {
	b, err := os.ReadFile("../../docs/formats/validation.md")
	return string(b), err
}
