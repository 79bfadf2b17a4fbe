//! Keeps the debugger's main thread and the thread serving it on one CPU
//! while packets flow.
//!
//! The remote protocol is strict request/response: GDB sends a packet and
//! sleeps until the reply, then the server sleeps until the next packet. When
//! the two sleepers sit on different CPUs, every packet wakes an idle CPU; on
//! a virtual machine that is an inter-processor interrupt and a VM exit each
//! way. `info threads` over 10,000 tasks (40,000 round trips) took 6.4-7.9 s
//! that way on a 2-vCPU VM and 3.8-4.2 s with both on one CPU, where each
//! wakeup is a plain context switch (README, B5).
//!
//! Only the peer's main thread is pinned (GDB's worker threads keep their
//! CPUs) and only during a burst of packets ([`BURST`]): once the link has
//! been quiet for [`QUIET`], both masks are restored, so what GDB runs
//! meanwhile (`shell`, its own indexing) is not confined. A program GDB
//! starts in the middle of a burst inherits the one CPU.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// Quiet time after which the peer and this thread are released.
const QUIET: Duration = Duration::from_millis(50);

/// Reads without a quiet period before pinning: a few packets (a `bt`, a
/// `p`) are not worth it, and a program GDB starts while pinned (`shell`)
/// would inherit the one CPU.
const BURST: u32 = 64;

/// A reader on a unix socket whose peer is the debugger (`target remote |
/// corestub serve --stdio`, or the pipes `corestub gdb` is handed).
pub struct Colocated<R> {
    inner: R,
    peer: libc::pid_t,
    /// The peer's start time (/proc/PID/stat), to know that its pid still
    /// names it when its mask is restored.
    peer_start: Option<u64>,
    pinned: Option<Saved>,
    /// Reads since the link was last quiet.
    reads: u32,
}

/// The affinity masks to restore.
struct Saved {
    peer: libc::cpu_set_t,
    own: libc::cpu_set_t,
}

impl<R: Read + AsRawFd> Colocated<R> {
    /// `inner` itself when its peer cannot be named (not a unix socket, a
    /// peer in another PID namespace) or the machine has one CPU.
    pub fn wrap(inner: R) -> Result<Self, R> {
        let several = std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
        match peer_pid(inner.as_raw_fd()) {
            Some(peer) if several && peer != std::process::id() as libc::pid_t => Ok(Colocated {
                inner,
                peer,
                peer_start: start_time(peer),
                pinned: None,
                reads: 0,
            }),
            _ => Err(inner),
        }
    }
}

impl<R> Colocated<R> {
    /// Pins the peer and this thread to the CPU this thread runs on, if
    /// both may run there (a mask the user set is narrowed, never left).
    fn pin(&mut self) {
        if self.pinned.is_some() {
            return;
        }
        // SAFETY: sched_getcpu takes no arguments.
        let cpu = unsafe { libc::sched_getcpu() };
        let (Some(peer), Some(own), Ok(cpu)) =
            (affinity(self.peer), affinity(0), usize::try_from(cpu))
        else {
            return;
        };
        // SAFETY: CPU_ISSET checks `cpu` against the set's size.
        if !unsafe { libc::CPU_ISSET(cpu, &peer) && libc::CPU_ISSET(cpu, &own) } {
            return;
        }
        // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET checks `cpu`
        // against the set's size.
        let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        unsafe { libc::CPU_SET(cpu, &mut one) };
        if set_affinity(self.peer, &one) && set_affinity(0, &one) {
            self.pinned = Some(Saved { peer, own });
        } else {
            set_affinity(self.peer, &peer);
            set_affinity(0, &own);
        }
    }

    /// Restores both masks; the peer's only if its pid still names the
    /// process that was pinned (a peer that exited may have left its pid to
    /// another one).
    fn release(&mut self) {
        if let Some(s) = self.pinned.take() {
            if self.peer_start.is_some() && start_time(self.peer) == self.peer_start {
                set_affinity(self.peer, &s.peer);
            }
            set_affinity(0, &s.own);
        }
    }
}

impl<R: Read + AsRawFd> Read for Colocated<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.inner.as_raw_fd();
        if !readable_within(fd, QUIET) {
            self.release();
            self.reads = 0;
            readable_within(fd, Duration::MAX);
        }
        self.reads = self.reads.saturating_add(1);
        // Once per burst: a pin the masks refuse is not retried per packet.
        if self.reads == BURST {
            self.pin();
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            // hang-up: GDB `disconnect`ed and goes on, or is exiting
            self.release();
        }
        Ok(n)
    }
}

impl<R> Drop for Colocated<R> {
    fn drop(&mut self) {
        self.release();
    }
}

/// A process's start time in clock ticks since boot (/proc/PID/stat field
/// 22), which a reused pid does not share.
fn start_time(pid: libc::pid_t) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // fields after the parenthesised command name, which may hold spaces
    let rest = stat.rsplit_once(") ")?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Waits until `fd` has data or hangs up (`Duration::MAX`: forever).
fn readable_within(fd: RawFd, wait: Duration) -> bool {
    let ms = if wait == Duration::MAX {
        -1
    } else {
        i32::try_from(wait.as_millis()).unwrap_or(i32::MAX)
    };
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one pollfd on the stack.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return n != 0;
        }
    }
}

/// The process at the other end of a unix socket (SO_PEERCRED).
fn peer_pid(fd: RawFd) -> Option<libc::pid_t> {
    // SAFETY: a zeroed ucred is valid; getsockopt writes at most `len` bytes.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (r == 0 && cred.pid > 0).then_some(cred.pid)
}

/// The affinity of thread `tid` (0: the calling thread).
fn affinity(tid: libc::pid_t) -> Option<libc::cpu_set_t> {
    // SAFETY: the kernel fills the set; its size is passed.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let r =
        unsafe { libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    (r == 0).then_some(set)
}

fn set_affinity(tid: libc::pid_t, set: &libc::cpu_set_t) -> bool {
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), set) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_socketpair_names_its_creator_and_reads_through() {
        let (a, mut b) = UnixStream::pair().unwrap();
        // Both ends were made by this process: nothing to pin against.
        assert_eq!(
            peer_pid(a.as_raw_fd()),
            Some(std::process::id() as libc::pid_t)
        );
        let mut a = match Colocated::wrap(a) {
            Ok(_) => panic!("own process taken as a peer"),
            Err(a) => a,
        };
        b.write_all(b"$g#67").unwrap();
        let mut got = [0u8; 5];
        a.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"$g#67");
    }

    /// Allowed CPUs of thread `tid` as a list.
    fn cpus(tid: libc::pid_t) -> Vec<usize> {
        let set = affinity(tid).unwrap();
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
            .collect()
    }

    fn only(cpu: usize) -> libc::cpu_set_t {
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        unsafe { libc::CPU_SET(cpu, &mut set) };
        set
    }

    /// A sleeping child process standing in for GDB, killed when dropped.
    struct Peer(std::process::Child);

    impl Peer {
        fn start() -> Peer {
            Peer(
                std::process::Command::new("sleep")
                    .arg("5")
                    .spawn()
                    .unwrap(),
            )
        }

        fn pid(&self) -> libc::pid_t {
            self.0.id() as libc::pid_t
        }
    }

    impl Drop for Peer {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// A link whose peer is `peer` (the socketpair's real peer is this
    /// process), and the end that plays GDB.
    fn link(peer: &Peer) -> (Colocated<UnixStream>, UnixStream) {
        let (r, w) = UnixStream::pair().unwrap();
        let c = Colocated {
            inner: r,
            peer: peer.pid(),
            peer_start: start_time(peer.pid()),
            pinned: None,
            reads: 0,
        };
        (c, w)
    }

    /// `n` one-byte packets through the link.
    fn packets(c: &mut Colocated<UnixStream>, gdb: &mut UnixStream, n: u32) {
        let mut one = [0u8; 1];
        for _ in 0..n {
            gdb.write_all(b"+").unwrap();
            c.read_exact(&mut one).unwrap();
        }
    }

    #[test]
    fn pinning_restores_both_masks() {
        let peer = Peer::start();
        let before = (cpus(peer.pid()), cpus(0));
        let (mut c, mut gdb) = link(&peer);
        // A few packets pin nothing.
        packets(&mut c, &mut gdb, BURST - 1);
        assert!(c.pinned.is_none());
        packets(&mut c, &mut gdb, 1);
        if before.1.len() > 1 {
            assert!(c.pinned.is_some());
            assert_eq!(cpus(0).len(), 1);
            assert_eq!(cpus(peer.pid()), cpus(0));
        }
        c.release();
        assert_eq!((cpus(peer.pid()), cpus(0)), before);
    }

    #[test]
    fn a_peer_kept_off_this_cpu_is_not_moved() {
        let [a, b, ..] = cpus(0)[..] else {
            return; // one CPU: nothing to test
        };
        // The peer may only run on `a`, this thread only on `b`.
        let peer = Peer::start();
        assert!(set_affinity(peer.pid(), &only(a)));
        let (mut c, mut gdb) = link(&peer);
        let pid = peer.pid();
        std::thread::spawn(move || {
            assert!(set_affinity(0, &only(b)));
            packets(&mut c, &mut gdb, BURST + 1);
            assert!(c.pinned.is_none());
            assert_eq!(cpus(pid), vec![a]);
            assert_eq!(cpus(0), vec![b]);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_hang_up_restores_both_masks_while_the_peer_lives() {
        if cpus(0).len() < 2 {
            return;
        }
        let peer = Peer::start();
        let before = (cpus(peer.pid()), cpus(0));
        let (mut c, mut gdb) = link(&peer);
        packets(&mut c, &mut gdb, BURST);
        assert!(c.pinned.is_some());
        // GDB's `disconnect`: the socket closes, GDB goes on
        drop(gdb);
        assert_eq!(c.read(&mut [0u8; 1]).unwrap(), 0);
        assert!(c.pinned.is_none());
        assert_eq!((cpus(peer.pid()), cpus(0)), before);
        // a pid whose start time differs is not the peer: left alone
        c.peer_start = c.peer_start.map(|t| t + 1);
        c.pinned = Some(Saved {
            peer: only(before.1[0]),
            own: affinity(0).unwrap(),
        });
        c.release();
        assert_eq!(cpus(peer.pid()), before.0);
    }
}
