package signing

import (
	"testing"
	"time"
)

func TestWriteDevelopmentKeyOpensAsASoftwareMember(t *testing.T) {
	kf, cf, err := WriteDevelopmentKey(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m, err := OpenSoftware(MemberConfig{ID: "dev", Kind: KindSoftware, Profile: "default", KeyFile: kf, CertFile: cf})
	if err != nil {
		t.Fatal(err)
	}
	if m.Certificate() == nil || time.Until(m.Certificate().NotAfter) < 23*time.Hour {
		t.Fatalf("certificate %+v", m.Certificate())
	}
}
