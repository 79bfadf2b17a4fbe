//! Binary memory reads (`x`, gdbstub patch 9) against `corestub serve` on
//! the x86_64 kdump: offered in qSupported (`binary-upload+`), the bytes
//! equal the `m` replies for the same ranges (kernel text, data, a range
//! crossing from a dumped page into one the dump leaves out), unreadable
//! memory is an `E` reply, `x ADDR,0` is `b`, and a huge request is one
//! bounded reply.

mod common;

use common::server::{Server, text, x_and_m, x_data};
use corestub::addr::VirtAddr;
use corestub::kernel::Kernel;

const PACKET_SIZE: usize = corestub::target::conn::PACKET_SIZE;

fn is_error(r: &[u8]) -> bool {
    r.len() == 3 && r[0] == b'E' && r[1..].iter().all(u8::is_ascii_hexdigit)
}

/// A dumped page of the direct map followed by one the dump leaves out
/// (a `-d 31` dump drops free, cache, user and zero pages): the address
/// where the readable memory stops.
fn readable_edge(k: &Kernel, from: u64) -> u64 {
    let space = k.kernel_space();
    let mut page = [0u8; 4096];
    let mut prev_readable = false;
    for i in 0..(1u64 << 18) {
        let va = from + i * 4096;
        let (n, _) = k.read_virt_partial(&space, VirtAddr(va), &mut page);
        if prev_readable && n == 0 {
            return va;
        }
        prev_readable = n == page.len();
    }
    panic!("no dumped page followed by a missing one in 1 GiB from {from:#x}");
}

#[test]
fn binary_reads() {
    let Some(dump) = common::fixture("x86_64-6.1", "kdump-zlib-d31.kdump", "binary_reads") else {
        return;
    };
    let truth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(corestub::fixtures::root().join("x86_64-6.1/truth.json")).unwrap(),
    )
    .unwrap();
    let hex_field = |v: &serde_json::Value| {
        let s = v.as_str().expect("a hex string");
        u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
    };
    let stext = hex_field(&truth["boots"]["kdump"]["symbols"]["_stext"]);
    let page_offset = hex_field(&truth["boots"]["kdump"]["page_offset_base"]);
    let k = Kernel::new(corestub::dump::open(&dump).unwrap()).unwrap();
    let uts = k.vmcoreinfo.symbol("init_uts_ns").expect("init_uts_ns");
    let edge = readable_edge(&k, page_offset + (16 << 20));
    drop(k);

    let srv = Server::start(&dump, &[]);
    let mut c = srv.connect();
    let sup = c.request(b"qSupported:multiprocess+;swbreak+").unwrap();
    let sup = String::from_utf8_lossy(&sup).into_owned();
    assert!(sup.split(';').any(|f| f == "binary-upload+"), "{sup}");
    c.request(b"?").unwrap();

    // kernel text (every byte value, escapes included) in the packet sizes
    // GDB uses, odd starts and lengths, and kernel data around init_uts_ns
    let mut escaped = 0;
    for block in 0..8u64 {
        let data = x_and_m(&mut c, stext + block * 0x10000, 0x10000);
        assert_eq!(
            data.len(),
            0x10000,
            "text at {:#x}",
            stext + block * 0x10000
        );
        escaped += data.iter().filter(|b| b"#$}*".contains(b)).count();
    }
    assert!(escaped > 0, "kernel text without one byte to escape?");
    for (addr, len) in [(stext + 1, 1), (stext + 0xfff, 0x1001), (uts - 3, 0x203)] {
        assert_eq!(x_and_m(&mut c, addr, len).len(), len, "{addr:#x},{len:#x}");
    }
    // init_uts_ns holds the utsname (sysname "Linux" first)
    let uname = x_and_m(&mut c, uts, 0x100);
    assert!(
        uname.windows(6).any(|w| w == b"Linux\0"),
        "{}",
        text(&uname)
    );

    // a range that runs from a dumped page into a missing one: a short reply
    // with what is there, as `m` gives; the missing page alone is an error
    let short = x_and_m(&mut c, edge - 8, 0x20);
    assert_eq!(short.len(), 8, "{:#x}", edge - 8);
    for req in [
        format!("x{edge:x},10"),
        "x0,10".to_string(),
        "xffffffffffffffff,10".to_string(),
    ] {
        let r = c.request(req.as_bytes()).unwrap();
        assert!(is_error(&r), "{req}: {}", text(&r));
    }

    // nothing asked: `b` (empty would mean "no x packet"); LLDB <= 19's
    // probe for its own `x` wants `OK` and so keeps using `m`
    for req in [format!("x{uts:x},0"), "x0,0".to_string()] {
        assert_eq!(c.request(req.as_bytes()).unwrap(), b"b", "{req}");
    }

    // 4 GiB asked: one read of at most one packet buffer
    let req = format!("x{stext:x},ffffffff");
    let big = x_data(&req, &c.request(req.as_bytes()).unwrap());
    assert!(
        !big.is_empty() && big.len() <= PACKET_SIZE,
        "{req}: {} bytes",
        big.len()
    );
    assert_eq!(big[..0x10], x_and_m(&mut c, stext, 0x10)[..], "{req}");

    // the connection still serves plain requests
    let r = c.request(b"?").unwrap();
    assert!(r.starts_with(b"T"), "{}", text(&r));
}
