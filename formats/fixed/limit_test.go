package fixed

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestLimitReader(t *testing.T) {
	b, err := io.ReadAll(&LimitReader{R: strings.NewReader("12345"), Max: 5})
	if err != nil || string(b) != "12345" {
		t.Fatalf("at the limit: %q %v", b, err)
	}
	_, err = io.ReadAll(&LimitReader{R: strings.NewReader("123456"), Max: 5})
	if !errors.Is(err, ErrByteLimit) {
		t.Fatalf("past the limit: %v", err)
	}
}
