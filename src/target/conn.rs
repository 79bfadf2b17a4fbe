//! Buffered connections and the per-connection serve loop.
//!
//! gdbstub reads one byte at a time; unbuffered that is one syscall per byte.
//! We buffer both directions and flush when gdbstub finishes a packet.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::sync::Arc;

use gdbstub::common::Signal;
use gdbstub::conn::{Connection, ConnectionExt};
use gdbstub::stub::run_blocking::{BlockingEventLoop, Event, WaitForStopReasonError};
use gdbstub::stub::{DisconnectReason, GdbStub, MultiThreadStopReason};

use super::{ArchSupport, DumpTarget, Session};

/// Packet buffer size advertised as PacketSize: GDB reads up to half of it
/// per `m` packet, so a large buffer means few round trips.
pub const PACKET_SIZE: usize = 0x20000;

/// The client-to-stub half of a connection: bytes one at a time, with a
/// non-blocking look at the next one.
pub trait ByteSource {
    fn read_byte(&mut self) -> io::Result<u8>;
    fn peek_byte(&mut self) -> io::Result<Option<u8>>;
}

impl ByteSource for BufReader<Box<dyn Read + Send>> {
    fn read_byte(&mut self) -> io::Result<u8> {
        let mut b = [0u8];
        self.read_exact(&mut b)?;
        Ok(b[0])
    }

    fn peek_byte(&mut self) -> io::Result<Option<u8>> {
        use std::io::BufRead;
        Ok(self.fill_buf()?.first().copied())
    }
}

/// A gdbstub connection: any [`ByteSource`] in, a buffered writer out.
pub struct Conn<R> {
    pub(crate) reader: R,
    writer: BufWriter<Box<dyn Write + Send>>,
}

impl<R> Conn<R> {
    pub fn with_reader(reader: R, w: Box<dyn Write + Send>) -> Self {
        Conn {
            reader,
            writer: BufWriter::with_capacity(PACKET_SIZE * 2 + 64, w),
        }
    }
}

/// A plain stream (TCP, unix socket, stdio), read through a buffer.
pub type BufConn = Conn<BufReader<Box<dyn Read + Send>>>;

impl BufConn {
    pub fn new(r: Box<dyn Read + Send>, w: Box<dyn Write + Send>) -> Self {
        Conn::with_reader(BufReader::with_capacity(PACKET_SIZE, r), w)
    }
}

impl<R: ByteSource> Connection for Conn<R> {
    type Error = io::Error;

    fn write(&mut self, byte: u8) -> io::Result<()> {
        self.writer.write_all(&[byte])
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

impl<R: ByteSource> ConnectionExt for Conn<R> {
    fn read(&mut self) -> io::Result<u8> {
        self.reader.read_byte()
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        self.reader.peek_byte()
    }
}

struct EventLoop<A: ArchSupport>(std::marker::PhantomData<A>);

impl<A: ArchSupport> BlockingEventLoop for EventLoop<A> {
    type Target = DumpTarget<A>;
    type Connection = BufConn;
    type StopReason = MultiThreadStopReason<u64>;

    // The target never runs (gdbstub's resume stub answers continue/step),
    // so this only forwards client bytes.
    fn wait_for_stop_reason(
        _target: &mut DumpTarget<A>,
        conn: &mut BufConn,
    ) -> Result<Event<Self::StopReason>, WaitForStopReasonError<String, io::Error>> {
        let b = conn.read().map_err(WaitForStopReasonError::Connection)?;
        Ok(Event::IncomingData(b))
    }

    fn on_interrupt(_target: &mut DumpTarget<A>) -> Result<Option<Self::StopReason>, String> {
        Ok(Some(MultiThreadStopReason::Signal(Signal::SIGINT)))
    }
}

/// Serves one client until it detaches or disconnects.
pub fn serve_connection<A: ArchSupport>(
    session: Arc<Session>,
    conn: BufConn,
) -> Result<DisconnectReason, String> {
    let mut target = DumpTarget::<A>::new(session);
    let gdb = GdbStub::builder(conn)
        .packet_buffer_size(PACKET_SIZE)
        .build()
        .map_err(|e| e.to_string())?;
    session_end(gdb.run_blocking::<EventLoop<A>>(&mut target))
}

/// How a client session ended. GDB's `disconnect` (or its exit) just closes
/// the pipe or socket: the normal end of a session, not an error.
pub(crate) fn session_end<T: std::fmt::Display>(
    r: Result<DisconnectReason, gdbstub::stub::GdbStubError<T, io::Error>>,
) -> Result<DisconnectReason, String> {
    r.or_else(|e| {
        let msg = e.to_string();
        match e.into_connection_error() {
            Some((io, _)) if io.kind() == io::ErrorKind::UnexpectedEof => {
                Ok(DisconnectReason::Disconnect)
            }
            _ => Err(msg),
        }
    })
}
