//go:build unix

package sftp

import "syscall"

// noFollow makes opening a symbolic link fail (os.Root already keeps links
// inside the root; nothing in a tenant tree should be a link at all).
const noFollow = syscall.O_NOFOLLOW
