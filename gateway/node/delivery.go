package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/octgw/oct/gateway/deliver"
	deliverfhir "github.com/octgw/oct/gateway/deliver/fhir"
	deliverhttps "github.com/octgw/oct/gateway/deliver/https"
	deliversftp "github.com/octgw/oct/gateway/deliver/sftp"
	deliversmtp "github.com/octgw/oct/gateway/deliver/smtp"
	"github.com/octgw/oct/referentials"
	"github.com/octgw/oct/referentials/certdir"
)

// deliveryFromConfig builds the outbound transports the configuration
// enables, behind one Dispatcher, and the certificate directory. It returns
// a nil Sender when no transport is configured.
func (n *Node) deliveryFromConfig() (deliver.Sender, Certs, error) {
	c := n.Config.Delivery
	senders := map[referentials.Transport]deliver.Sender{}
	if c.SMTP.Relay != "" {
		sc := deliversmtp.Config{Relay: c.SMTP.Relay, From: c.SMTP.From, Username: c.SMTP.Username, SubjectVersion: c.SMTP.SubjectVersion}
		if c.SMTP.PasswordFile != "" {
			pw, err := os.ReadFile(c.SMTP.PasswordFile)
			if err != nil {
				return nil, nil, fmt.Errorf("delivery.smtp.password_file: %w", err)
			}
			sc.Password = strings.TrimSpace(string(pw))
		}
		roots, err := loadRoots(c.SMTP.RootCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("delivery.smtp.root_ca_file: %w", err)
		}
		sc.RootCAs = roots
		s, err := deliversmtp.New(sc)
		if err != nil {
			return nil, nil, fmt.Errorf("delivery.smtp: %w", err)
		}
		senders[referentials.SMTP] = s
	}
	if c.SFTP.KeyFile != "" {
		pem, err := os.ReadFile(c.SFTP.KeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("delivery.sftp.key_file: %w", err)
		}
		signer, err := ssh.ParsePrivateKey(pem)
		if err != nil {
			return nil, nil, fmt.Errorf("delivery.sftp.key_file: %w", err)
		}
		s, err := deliversftp.New(deliversftp.Config{Signer: signer, KnownHosts: c.SFTP.KnownHostsFile})
		if err != nil {
			return nil, nil, fmt.Errorf("delivery.sftp: %w", err)
		}
		senders[referentials.SFTP] = s
	}
	if c.HTTPS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.HTTPS.CertFile, c.HTTPS.KeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("delivery.https: %w", err)
		}
		roots, err := loadRoots(c.HTTPS.RootCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("delivery.https.root_ca_file: %w", err)
		}
		hc := deliverhttps.Config{ClientCert: cert, RootCAs: roots}
		s, err := deliverhttps.New(hc)
		if err != nil {
			return nil, nil, fmt.Errorf("delivery.https: %w", err)
		}
		// One transport, three protocols: B2 files and PEC messages (the
		// https sender), certificates as FHIR Bundles to SSAs.
		fs, err := deliverfhir.New(hc)
		if err != nil {
			return nil, nil, fmt.Errorf("delivery.https (FHIR): %w", err)
		}
		senders[referentials.HTTPS] = deliver.ByFlow{Default: s, Flows: map[string]deliver.Sender{deliver.FlowCertificate: fs}}
		n.httpsClient = &hc
	}
	if len(senders) == 0 {
		return nil, nil, nil
	}
	d, err := deliver.NewDispatcher(deliver.DispatcherConfig{Senders: senders, MaxConcurrent: c.MaxConcurrent, Registry: n.Registry, Logger: n.Logger})
	if err != nil {
		return nil, nil, err
	}
	var certs Certs
	if cc := n.Config.Certificates; cc.LDAPURL != "" {
		dir, err := certdir.New(certdir.Config{URL: cc.LDAPURL, BaseDN: cc.BaseDN, TTL: cc.TTL, Now: time.Now, Logger: n.Logger})
		if err != nil {
			return nil, nil, fmt.Errorf("certificates: %w", err)
		}
		certs = dir
	}
	if dir := n.Config.Certificates.Dir; dir != "" && certs == nil {
		certs = CertsFunc(func(_ context.Context, mailbox string) (*x509.Certificate, error) {
			if strings.ContainsAny(mailbox, "/\\") || strings.HasPrefix(mailbox, ".") {
				return nil, fmt.Errorf("bad mailbox %q", mailbox)
			}
			b, err := os.ReadFile(filepath.Join(dir, strings.ToLower(mailbox)+".pem"))
			if err != nil {
				return nil, err
			}
			blk, _ := pem.Decode(b)
			if blk == nil {
				return nil, fmt.Errorf("%s: no PEM certificate", mailbox)
			}
			return x509.ParseCertificate(blk.Bytes)
		})
	}
	return d, certs, nil
}

// loadRoots reads a PEM bundle ("" = nil, the system roots).
func loadRoots(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return p, nil
}
