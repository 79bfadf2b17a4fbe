//! Hands GDB's `target remote | CMD` pipes to a server that is already warm.
//!
//! `corestub gdb` must give GDB a stdio pipe, but a `serve --stdio` child
//! started by GDB only begins opening the dump once GDB has finished loading
//! vmlinux: its start-up (dump, symbols, DWARF layouts, the task list) adds
//! to what the user waits for. Instead `corestub gdb` opens and warms the
//! session itself while GDB loads symbols, and the pipe child (`serve --stdio
//! --handoff-fd N`) only passes its stdin/stdout to it over a socketpair
//! inherited through GDB (SCM_RIGHTS) and exits. The server then talks to
//! GDB's pipes directly: no proxy, no extra copy. If the hand-off fails (the
//! parent is gone), the child serves by itself as before.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A connected pair of unix stream sockets, both close-on-exec.
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Lets `fd` survive exec (called in the child between fork and exec, so
/// only async-signal-safe calls).
pub fn keep_across_exec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor number; no memory is involved.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

const MAX_FDS: usize = 2;

/// Sends `fds` (with one payload byte) over the unix socket `sock`.
pub fn send_fds(sock: RawFd, fds: &[RawFd]) -> io::Result<()> {
    assert!(fds.len() <= MAX_FDS);
    let byte = [b'H'];
    let mut iov = libc::iovec {
        iov_base: byte.as_ptr() as *mut libc::c_void,
        iov_len: 1,
    };
    // u64 words keep the control buffer aligned for cmsghdr
    let mut control = [0u64; 8];
    let data_len = std::mem::size_of_val(fds) as u32;
    // SAFETY: the msghdr points at live local buffers; CMSG_* stay inside
    // `control`, which is larger than CMSG_SPACE of two descriptors.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(data_len) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(data_len) as _;
        std::ptr::copy_nonoverlapping(
            fds.as_ptr().cast::<u8>(),
            libc::CMSG_DATA(cmsg),
            data_len as usize,
        );
        if libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) != 1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Receives one message of descriptors; `Ok(None)` once every holder of
/// the other end has closed it (GDB and its children are gone).
pub fn recv_fds(sock: &OwnedFd) -> io::Result<Option<Vec<OwnedFd>>> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = [0u64; 8];
    // SAFETY: as in send_fds; every descriptor the kernel put in the
    // control message is taken into an OwnedFd exactly once.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = loop {
            let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
            if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break n;
            }
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            return Ok(None);
        }
        let mut fds = Vec::new();
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let len = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let data = libc::CMSG_DATA(cmsg);
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        if msg.msg_flags & libc::MSG_CTRUNC != 0 {
            return Err(io::Error::other(
                "hand-off message carried too many descriptors",
            ));
        }
        Ok(Some(fds))
    }
}

/// The pipe child's side: passes stdin and stdout to the warm server.
pub fn send_stdio(sock: RawFd) -> io::Result<()> {
    send_fds(sock, &[0, 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn descriptors_cross_and_eof_ends_the_loop() {
        let (a, b) = socketpair().unwrap();
        let (r, w) = std::io::pipe().unwrap();
        send_fds(b.as_raw_fd(), &[r.as_raw_fd(), w.as_raw_fd()]).unwrap();
        let got = recv_fds(&a).unwrap().unwrap();
        assert_eq!(got.len(), 2);
        drop((r, w));
        let mut wf = std::fs::File::from(got[1].try_clone().unwrap());
        let mut rf = std::fs::File::from(got[0].try_clone().unwrap());
        wf.write_all(b"ok").unwrap();
        let mut buf = [0u8; 2];
        rf.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ok");
        drop(b);
        assert!(recv_fds(&a).unwrap().is_none());
    }
}
