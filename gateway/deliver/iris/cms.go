package iris

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/octgw/oct/referentials"
)

// Errors of Encrypt (errors.Is).
var (
	ErrCipher    = errors.New("iris: unsupported content cipher")
	ErrRecipient = errors.New("iris: unusable recipient certificate")
)

// OIDs (RFC 5652, RFC 3565, RFC 8018).
var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidEnvelopedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 3}
	oidRSA           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidAES128CBC     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidDESEDE3CBC    = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
)

// CMS structures, encoded with encoding/asn1. smallstep/pkcs7 can decrypt
// them (the simulator and the intake use it), but it cannot produce
// 3DES-CBC (its "DES-CBC" is single DES) and selects the cipher through a
// package-level variable, so encryption is done here, per call, with no
// shared state (docs/delivery.md).
type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue
}

type envelopedData struct {
	Version              int
	RecipientInfos       []keyTransRecipientInfo `asn1:"set"`
	EncryptedContentInfo encryptedContentInfo
}

type keyTransRecipientInfo struct {
	Version                int
	IssuerAndSerialNumber  issuerAndSerial
	KeyEncryptionAlgorithm pkix.AlgorithmIdentifier
	EncryptedKey           []byte
}

type issuerAndSerial struct {
	IssuerName   asn1.RawValue
	SerialNumber *big.Int
}

type encryptedContentInfo struct {
	ContentType                asn1.ObjectIdentifier
	ContentEncryptionAlgorithm pkix.AlgorithmIdentifier
	EncryptedContent           asn1.RawValue `asn1:"tag:0,optional"`
}

// Encrypt returns a DER CMS ContentInfo of type enveloped-data holding
// content encrypted for cert (RSA key transport, PKCS#1 v1.5) with the
// given cipher: referentials.AES128 (AES-128-CBC) or
// referentials.TripleDES (DES-EDE3-CBC). rnd is the randomness source
// (crypto/rand when nil).
func Encrypt(content []byte, cert *x509.Certificate, c referentials.Cipher, rnd io.Reader) ([]byte, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	if cert == nil {
		return nil, fmt.Errorf("%w: none given", ErrRecipient)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: key is %T, RSA required", ErrRecipient, cert.PublicKey)
	}
	var (
		block cipher.Block
		key   []byte
		oid   asn1.ObjectIdentifier
		err   error
	)
	switch c {
	case referentials.AES128, "":
		key = make([]byte, 16)
		if _, err = io.ReadFull(rnd, key); err != nil {
			return nil, err
		}
		block, err = aes.NewCipher(key)
		oid = oidAES128CBC
	case referentials.TripleDES:
		key = make([]byte, 24)
		if _, err = io.ReadFull(rnd, key); err != nil {
			return nil, err
		}
		setOddParity(key)
		block, err = des.NewTripleDESCipher(key)
		oid = oidDESEDE3CBC
	default:
		return nil, fmt.Errorf("%w: %q", ErrCipher, c)
	}
	if err != nil {
		return nil, err
	}
	iv := make([]byte, block.BlockSize())
	if _, err := io.ReadFull(rnd, iv); err != nil {
		return nil, err
	}
	padded := pkcs7Pad(content, block.BlockSize())
	ct := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, padded)

	ek, err := rsa.EncryptPKCS1v15(rnd, pub, key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRecipient, err)
	}
	if cert.SerialNumber == nil {
		return nil, fmt.Errorf("%w: no serial number", ErrRecipient)
	}
	ed := envelopedData{
		Version: 0,
		RecipientInfos: []keyTransRecipientInfo{{
			Version:                0,
			IssuerAndSerialNumber:  issuerAndSerial{IssuerName: asn1.RawValue{FullBytes: cert.RawIssuer}, SerialNumber: cert.SerialNumber},
			KeyEncryptionAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oidRSA, Parameters: asn1.NullRawValue},
			EncryptedKey:           ek,
		}},
		EncryptedContentInfo: encryptedContentInfo{
			ContentType: oidData,
			ContentEncryptionAlgorithm: pkix.AlgorithmIdentifier{
				Algorithm:  oid,
				Parameters: asn1.RawValue{Tag: asn1.TagOctetString, Bytes: iv},
			},
			EncryptedContent: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, Bytes: ct},
		},
	}
	inner, err := asn1.Marshal(ed)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(contentInfo{
		ContentType: oidEnvelopedData,
		Content:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner},
	})
}

// CipherOf reports the content cipher of a DER enveloped-data (for tests
// and the simulator's report): aes128, 3des, or the OID as text.
func CipherOf(der []byte) (string, error) {
	var ci contentInfo
	if _, err := asn1.Unmarshal(der, &ci); err != nil {
		return "", err
	}
	if !ci.ContentType.Equal(oidEnvelopedData) {
		return "", fmt.Errorf("iris: not enveloped-data: %v", ci.ContentType)
	}
	var ed envelopedData
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &ed); err != nil {
		return "", err
	}
	alg := ed.EncryptedContentInfo.ContentEncryptionAlgorithm.Algorithm
	switch {
	case alg.Equal(oidAES128CBC):
		return string(referentials.AES128), nil
	case alg.Equal(oidDESEDE3CBC):
		return string(referentials.TripleDES), nil
	}
	return alg.String(), nil
}

func pkcs7Pad(b []byte, n int) []byte {
	p := n - len(b)%n
	out := make([]byte, len(b)+p)
	copy(out, b)
	for i := len(b); i < len(out); i++ {
		out[i] = byte(p)
	}
	return out
}

// setOddParity sets the DES parity bit of each key byte (ignored by Go,
// checked by some other implementations).
func setOddParity(k []byte) {
	for i, b := range k {
		b &= 0xfe
		ones := 0
		for x := b; x != 0; x >>= 1 {
			ones += int(x & 1)
		}
		if ones%2 == 0 {
			b |= 1
		}
		k[i] = b
	}
}
