//! Protocol abuse against a running `corestub serve` on a real dump: huge
//! and malformed `m` requests, invalid hex, bad checksums, oversized
//! packets, clients that vanish mid-packet or never read. Every reply must
//! come (before common::HANG_GUARD), be a well-formed packet, and the server must keep
//! serving other clients (no panic, bounded memory).

mod common;

use std::net::Shutdown;
use std::time::Instant;

use common::server::{Server, frame};
use corestub::kernel::Kernel;

const PACKET_SIZE: usize = corestub::target::conn::PACKET_SIZE;

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let v = f();
    assert!(
        t.elapsed() < common::HANG_GUARD,
        "{what}: took {:?}",
        t.elapsed()
    );
    v
}

fn still_serves(srv: &Server, what: &str) {
    let mut c = srv.connect();
    let r = timed(what, || c.request(b"?")).unwrap_or_else(|e| panic!("after {what}: {e}"));
    assert!(
        r.starts_with(b"T"),
        "after {what}: {}",
        String::from_utf8_lossy(&r)
    );
}

#[test]
fn protocol_abuse() {
    let Some(dump) = common::fixture("x86_64-6.1", "kdump-zlib-d31.kdump", "protocol_abuse") else {
        return;
    };
    let k = Kernel::new(corestub::dump::open(&dump).unwrap()).unwrap();
    let sym = k.vmcoreinfo.symbol("init_uts_ns").expect("init_uts_ns");
    drop(k);
    let mut srv = Server::start(&dump, &[]);
    let mut c = srv.connect();

    let sup = timed("qSupported", || {
        c.request(b"qSupported:multiprocess+;swbreak+")
    })
    .unwrap();
    let sup = String::from_utf8_lossy(&sup).into_owned();
    let ps = sup
        .split(';')
        .find_map(|f| f.strip_prefix("PacketSize="))
        .and_then(|v| usize::from_str_radix(v, 16).ok());
    assert_eq!(ps, Some(PACKET_SIZE), "{sup}");
    timed("?", || c.request(b"?")).unwrap();

    // a 4 GiB read: answered with at most one packet buffer of data
    let small = c.request(format!("m{sym:x},10").as_bytes()).unwrap();
    assert_eq!(small.len(), 32, "{}", String::from_utf8_lossy(&small));
    for req in [
        format!("m{sym:x},ffffffff"),
        format!("m{sym:x},ffffffffffffffff"),
        "mffffffff81000000,ffffffff".to_string(),
        "mfffffffffffff000,ffffffff".to_string(),
        "mffffffffffffffff,10".to_string(),
        "m7fffffffffff,2".to_string(),
    ] {
        let r = timed(&req, || c.request(req.as_bytes())).unwrap_or_else(|e| panic!("{req}: {e}"));
        assert!(r.len() <= 2 * PACKET_SIZE, "{req}: {} bytes", r.len());
        let hex = r.iter().all(u8::is_ascii_hexdigit) && r.len() % 2 == 0;
        let err = r.starts_with(b"E") && r.len() == 3;
        assert!(
            hex || err,
            "{req}: {}",
            String::from_utf8_lossy(&r[..r.len().min(80)])
        );
        if req.starts_with(&format!("m{sym:x},")) {
            assert!(r.len() > 2 * 0x1000 && r.starts_with(&small), "{req}");
        }
    }
    assert_eq!(c.request(b"m0,0").unwrap(), b"");

    // malformed packets: some reply (E16 or empty = unsupported), and the
    // connection stays usable
    for bad in [
        &b"mzz,10"[..],
        b"m1234",
        b"m,",
        b"m",
        b"m-1,-1",
        b"m1234,zz",
        b"m12345678901234567890,10",
        b"g1",
        b"pzz",
        b"p999999",
        b"Hgzz",
        b"Hgp0.ffffffff",
        b"HgFFFFFFFFFFFFFFFFFF",
        b"T0",
        b"qThreadExtraInfo,ffffffff",
        b"qThreadStopInfo",
        b"qThreadStopInfozz",
        b"qThreadStopInfoffffffffffffffffffff",
        b"qThreadStopInfo0",
        b"qThreadStopInfo-1",
        b"qThreadStopInfop1.ffffffff",
        b"qXfer:features:read:target.xml:zz,10",
        b"qXfer:features:read:target.xml:ffffffffffffffff,ffffffffffffffff",
        b"qXfer:features:read:nope.xml:0,10",
        b"qRcmd,zz",
        b"qRcmd,",
        b"M0,4:zz",
        b"Mffffffff81000000,ffffffff:00",
        b"X0,1:\x7d",
        b"vCont;c:zz",
        b"Z0,0,1",
        b"\xff\xfe",
    ] {
        let r = timed(&String::from_utf8_lossy(bad), || c.request(bad));
        match r {
            Ok(_) => {
                let r = c.request(b"?");
                assert!(
                    r.as_ref().is_ok_and(|r| r.starts_with(b"T")),
                    "after {}: {r:?}",
                    String::from_utf8_lossy(bad)
                );
            }
            // vendored gdbstub patch 5: garbage gets an error reply, the
            // client keeps its connection
            Err(e) => panic!("{}: connection ended ({e})", String::from_utf8_lossy(bad)),
        }
    }

    // a bad checksum: an error reply (vendored gdbstub patch 5), never a
    // hang, and the connection stays usable
    let mut bad = srv.connect();
    bad.send_raw(b"$g#00").unwrap();
    let r = timed("bad checksum", || bad.reply());
    assert_eq!(r.as_deref(), Ok(&b"E16"[..]), "bad checksum");
    assert!(bad.request(b"?").is_ok_and(|r| r.starts_with(b"T")));
    still_serves(&srv, "bad checksum");

    // a packet larger than PacketSize: the connection is dropped quickly
    let mut big = srv.connect();
    let mut body = b"m0,".to_vec();
    body.resize(PACKET_SIZE * 3, b'1');
    let _ = big.send_raw(&frame(&body));
    // refused quickly: an error reply (the overflowing bytes are garbage to
    // the stub) or a closed connection, never a hang or a huge reply
    let r = timed("oversized packet", || big.reply());
    assert!(
        r.as_ref().map_or(true, |r| r.as_slice() == b"E16"),
        "oversized packet not refused: {r:?}"
    );
    still_serves(&srv, "oversized packet");

    // clients that vanish mid-packet, or mid-reply
    for partial in [
        &b"$m"[..],
        b"$m1234,",
        b"$qSupported:multi",
        b"$m0,10#2",
        b"$",
    ] {
        let mut p = srv.connect();
        p.send_raw(partial).unwrap();
        p.s.shutdown(Shutdown::Both).unwrap();
        still_serves(&srv, &String::from_utf8_lossy(partial));
    }
    // a client that asks for a lot and never reads: others are not stalled
    let mut hog = srv.connect();
    for _ in 0..64 {
        if hog
            .send_raw(&frame(format!("m{sym:x},20000").as_bytes()))
            .is_err()
        {
            break;
        }
    }
    still_serves(&srv, "a client that never reads");
    drop(hog);

    // the first connection still works too
    let r = c.request(format!("m{sym:x},10").as_bytes()).unwrap();
    assert_eq!(r, small);
    assert!(srv.alive(), "server died");
    let rss = srv.peak_rss_kib();
    assert!(rss < 512 * 1024, "server peak RSS {rss} KiB");
    let log = srv.stop();
    assert!(!log.contains("panicked"), "{log}");
}
