//go:build !unix

package sftp

const noFollow = 0
