// corestub patch: the `x` packet (PATCHES.md, 9), in the shape of
// gdbstub's upstream master (PR #186).
use super::prelude::*;
use crate::protocol::commands::ext::XLowcasePacket;
use crate::stub::core_impl::base::read_addr_handler;

impl<T: Target, C: Connection> GdbStubImpl<T, C> {
    pub(crate) fn handle_x_lowcase_packet(
        &mut self,
        res: &mut ResponseWriter<'_, C>,
        target: &mut T,
        command: XLowcasePacket<'_>,
    ) -> Result<HandlerStatus, Error<T::Error, C::Error>> {
        if !target.use_x_lowcase_packet() {
            return Ok(HandlerStatus::Handled);
        }

        crate::__dead_code_marker!("x_lowcase_packet", "impl");

        let handler_status = match command {
            XLowcasePacket::x(cmd) => {
                // Same read as `m`: one read of at most one packet buffer.
                // Escaping at most doubles each byte, so the reply is at
                // most `1 + 2 * len`: no longer than the `m` reply for the
                // same request (two hex digits per byte) plus the `b`.
                let data = read_addr_handler::<C, T>(
                    self.current_mem_tid,
                    target,
                    cmd.buf,
                    cmd.len,
                    cmd.addr,
                )?;

                // `b` starts the data, also when there is none (`x ADDR,0`):
                // an empty reply would tell the client that `x` is not
                // supported, and `E..` is an error.
                res.write_str("b")?;
                res.write_binary_buf(data)?;

                HandlerStatus::Handled
            }
        };

        Ok(handler_status)
    }
}

/// corestub patch: the `x` packet end to end through the stub, on a target
/// with three readable pages at 0x1000..0x4000 (nothing below or above).
#[cfg(test)]
mod tests {
    use crate::arch::{Arch, Registers};
    use crate::conn::Connection;
    use crate::stub::state_machine::GdbStubStateMachine;
    use crate::stub::GdbStub;
    use crate::target::ext::base::singlethread::SingleThreadBase;
    use crate::target::ext::base::BaseOps;
    use crate::target::{Target, TargetError, TargetResult};
    use alloc::vec::Vec;

    const BASE: u64 = 0x1000;
    const END: u64 = 0x4000;
    const PACKET_BUF: usize = 0x1000;

    enum TestArch {}

    #[derive(Debug, Default, Clone, PartialEq)]
    struct NoRegs;

    impl Registers for NoRegs {
        type ProgramCounter = u64;
        fn pc(&self) -> u64 {
            0
        }
        fn gdb_serialize(&self, _write_byte: impl FnMut(Option<u8>)) {}
        fn gdb_deserialize(&mut self, _bytes: &[u8]) -> Result<(), ()> {
            Ok(())
        }
    }

    impl Arch for TestArch {
        type Usize = u64;
        type Registers = NoRegs;
        type BreakpointKind = usize;
        type RegId = ();
    }

    struct Mem {
        bytes: Vec<u8>,
        /// the length of every `read_addrs` call
        reads: Vec<usize>,
        use_x: bool,
    }

    impl Mem {
        /// Every byte value, the escaped ones in runs of every length.
        fn new(use_x: bool) -> Mem {
            let mut bytes = Vec::new();
            let mut i = 0u32;
            while bytes.len() < (END - BASE) as usize {
                let b = (i.wrapping_mul(2654435761) >> 24) as u8;
                let run = 1 + (i as usize % 7);
                bytes.extend(core::iter::repeat_n(b, run));
                for &special in b"#$}*" {
                    bytes.extend(core::iter::repeat_n(special, i as usize % 5));
                }
                i += 1;
            }
            bytes.truncate((END - BASE) as usize);
            // a zeroed page, as dumps have
            for b in &mut bytes[0x2000..0x3000] {
                *b = 0;
            }
            Mem {
                bytes,
                reads: Vec::new(),
                use_x,
            }
        }
    }

    impl Target for Mem {
        type Arch = TestArch;
        type Error = ();

        fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
            BaseOps::SingleThread(self)
        }

        fn guard_rail_implicit_sw_breakpoints(&self) -> bool {
            true
        }

        fn use_x_lowcase_packet(&self) -> bool {
            self.use_x
        }
    }

    impl SingleThreadBase for Mem {
        fn read_registers(&mut self, _regs: &mut NoRegs) -> TargetResult<(), Self> {
            Ok(())
        }

        fn write_registers(&mut self, _regs: &NoRegs) -> TargetResult<(), Self> {
            Err(TargetError::NonFatal)
        }

        fn read_addrs(&mut self, start: u64, data: &mut [u8]) -> TargetResult<usize, Self> {
            self.reads.push(data.len());
            if !(BASE..END).contains(&start) {
                return Err(TargetError::Errno(14));
            }
            let from = (start - BASE) as usize;
            let n = data.len().min(self.bytes.len() - from);
            data[..n].copy_from_slice(&self.bytes[from..from + n]);
            Ok(n)
        }

        fn write_addrs(&mut self, _start: u64, _data: &[u8]) -> TargetResult<(), Self> {
            Err(TargetError::Errno(30))
        }
    }

    struct Wire(Vec<u8>);

    impl Connection for Wire {
        type Error = ();
        fn write(&mut self, byte: u8) -> Result<(), ()> {
            self.0.push(byte);
            Ok(())
        }
        fn flush(&mut self) -> Result<(), ()> {
            Ok(())
        }
    }

    /// Sends each packet in turn; returns each reply's body (between `$`
    /// and `#`, checksum verified, still escaped and run-length encoded).
    fn exchange(target: &mut Mem, packets: &[&[u8]]) -> Vec<Vec<u8>> {
        let stub = GdbStub::<Mem, Wire>::builder(Wire(Vec::new()))
            .packet_buffer_size(PACKET_BUF)
            .build()
            .unwrap();
        let mut sm = stub.run_state_machine(target).unwrap();
        let mut replies = Vec::new();
        for p in packets {
            let sum = p.iter().fold(0u8, |a, &b| a.wrapping_add(b));
            let mut framed = alloc::vec![b'$'];
            framed.extend_from_slice(p);
            framed.extend_from_slice(alloc::format!("#{:02x}", sum).as_bytes());
            for &b in &framed {
                sm = match sm {
                    GdbStubStateMachine::Idle(s) => s.incoming_data(target, b).unwrap(),
                    _ => panic!("stub left the idle state"),
                };
            }
            let GdbStubStateMachine::Idle(mut s) = sm else {
                panic!("stub left the idle state")
            };
            let wire = core::mem::take(&mut s.borrow_conn().0);
            sm = GdbStubStateMachine::Idle(s);
            // `+` (ack), `$`, body, `#`, two checksum digits
            assert_eq!(&wire[..2], b"+$", "{:?}", wire);
            let hash = wire.len() - 3;
            assert_eq!(wire[hash], b'#');
            let body = &wire[2..hash];
            assert!(!body.contains(&b'#') && !body.contains(&b'$'));
            let sum = body.iter().fold(0u8, |a, &b| a.wrapping_add(b));
            assert_eq!(&wire[hash + 1..], alloc::format!("{:02x}", sum).as_bytes());
            replies.push(body.to_vec());
        }
        replies
    }

    /// GDB's decoding: runs expanded on the raw bytes (`read_frame`), then
    /// escapes undone (`remote_unescape_input`).
    fn gdb_decode(body: &[u8]) -> Vec<u8> {
        let mut raw: Vec<u8> = Vec::new();
        let mut i = 0;
        while i < body.len() {
            if body[i] == b'*' {
                let last = *raw.last().unwrap();
                raw.extend(core::iter::repeat_n(last, (body[i + 1] - 29) as usize));
                i += 2;
            } else {
                raw.push(body[i]);
                i += 1;
            }
        }
        let mut out = Vec::new();
        let mut it = raw.into_iter();
        while let Some(b) = it.next() {
            out.push(if b == b'}' {
                it.next().unwrap() ^ 0x20
            } else {
                b
            });
        }
        out
    }

    /// LLDB's decoding (`GDBRemoteCommunication::ExpandRLE`): escapes and
    /// runs in one pass, a run repeating the last decoded byte.
    fn lldb_decode(body: &[u8]) -> Vec<u8> {
        let mut out: Vec<u8> = Vec::new();
        let mut i = 0;
        while i < body.len() {
            match body[i] {
                b'*' => {
                    let last = *out.last().unwrap();
                    out.extend(core::iter::repeat_n(last, (body[i + 1] - 29) as usize));
                    i += 2;
                }
                b'}' => {
                    out.push(body[i + 1] ^ 0x20);
                    i += 2;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        out
    }

    fn hex(data: &[u8]) -> Vec<u8> {
        data.iter()
            .flat_map(|b| alloc::format!("{:02x}", b).into_bytes())
            .collect()
    }

    /// The data of an `x` reply as both clients decode it (they must agree).
    fn x_data(body: &[u8]) -> Vec<u8> {
        assert_eq!(body.first(), Some(&b'b'), "{:?}", body);
        let gdb = gdb_decode(&body[1..]);
        assert_eq!(
            gdb,
            lldb_decode(&body[1..]),
            "GDB and LLDB read the reply differently"
        );
        gdb
    }

    fn packet(cmd: char, addr: u64, len: usize) -> Vec<u8> {
        alloc::format!("{}{:x},{:x}", cmd, addr, len).into_bytes()
    }

    #[test]
    fn x_reads_what_m_reads() {
        let mut mem = Mem::new(true);
        for (addr, len) in [
            (BASE, 1),
            (BASE, 0x100),
            (BASE + 3, 0x7ff),
            (0x1ff0, 0x20),
            (0x2000, 0x1000), // the zeroed page: long runs
            (0x2f00, 0x200),  // runs ending at the page
            (END - 5, 5),
        ] {
            let (x, m) = (packet('x', addr, len), packet('m', addr, len));
            let r = exchange(&mut mem, &[&x, &m]);
            let want = &mem.bytes[(addr - BASE) as usize..][..x_data(&r[0]).len()];
            assert_eq!(x_data(&r[0]), want, "x{:x},{:x}", addr, len);
            assert_eq!(unrle(&r[1]), hex(want));
            assert!(!want.is_empty());
        }
    }

    /// Every byte that needs an escape, alone, in runs of every length and
    /// next to runs of the byte its escape sends: both decodings agree.
    #[test]
    fn escapes_never_start_a_run() {
        let mut mem = Mem::new(true);
        let mut data = Vec::new();
        for &special in b"#$}*" {
            for run in 0..120 {
                data.push(special);
                data.extend(core::iter::repeat_n(special ^ 0x20, run));
                data.extend(core::iter::repeat_n(special, run % 9));
            }
        }
        data.truncate((END - BASE) as usize);
        mem.bytes[..data.len()].copy_from_slice(&data);
        let mut at = 0;
        while at < data.len() {
            let len = (data.len() - at).min(0x400);
            let r = exchange(&mut mem, &[&packet('x', BASE + at as u64, len)]);
            let got = x_data(&r[0]);
            assert_eq!(got, &data[at..at + got.len()]);
            at += got.len();
        }
    }

    /// One read, of at most the packet buffer, however long the request: a
    /// short reply; its size stays within `1 + 2 * len` (every byte escaped).
    #[test]
    fn x_is_one_read_of_at_most_one_buffer() {
        let mut mem = Mem::new(true);
        mem.bytes.iter_mut().for_each(|b| *b = b'}');
        let r = exchange(&mut mem, &[b"x1000,ffffffff"]);
        assert_eq!(mem.reads.len(), 1);
        assert!(mem.reads[0] <= PACKET_BUF, "{:?}", mem.reads);
        let got = x_data(&r[0]);
        assert_eq!(got.len(), mem.reads[0]);
        assert_eq!(r[0].len(), 1 + 2 * got.len());
    }

    #[test]
    fn x_errors_short_reads_and_empty_requests() {
        let mut mem = Mem::new(true);
        let r = exchange(
            &mut mem,
            &[
                b"x0,10",                // unmapped
                b"xffffffffffffffff,10", // unmapped, at the top of the address space
                b"x3ff8,100",            // crosses into unmapped memory: short
                b"x1000,0",              // nothing asked: `b`, no read
                b"x0,0",                 // LLDB <= 19's probe: not `OK`
            ],
        );
        assert_eq!(r[0], b"E0e");
        assert_eq!(r[1], b"E0e");
        assert_eq!(x_data(&r[2]), &mem.bytes[(0x3ff8 - BASE) as usize..]);
        assert_eq!(r[3], b"b");
        assert_eq!(r[4], b"b");
        assert_eq!(mem.reads.len(), 3, "x ADDR,0 must not read");
    }

    /// Opt-in: without `use_x_lowcase_packet`, `x` is an unknown packet (empty
    /// reply) and qSupported does not offer `binary-upload+`.
    #[test]
    fn x_is_opt_in() {
        for use_x in [false, true] {
            let mut mem = Mem::new(use_x);
            let r = exchange(&mut mem, &[b"qSupported:multiprocess+", b"x1000,4"]);
            let offered = r[0].windows(15).any(|w| w == b"binary-upload+;")
                || r[0].ends_with(b"binary-upload+");
            assert_eq!(
                offered,
                use_x,
                "{:?}",
                alloc::string::String::from_utf8_lossy(&r[0])
            );
            if use_x {
                assert_eq!(x_data(&r[1]), &mem.bytes[..4]);
            } else {
                assert!(r[1].is_empty());
            }
        }
    }

    /// `m` replies are run-length encoded hex: expanded here.
    fn unrle(body: &[u8]) -> Vec<u8> {
        gdb_decode(body)
    }
}
