//! A bounded stand-in for `fuzz/run.sh` that runs in the normal test
//! command: every fuzz harness (src/fuzz_harness.rs) over its seed corpus
//! (fuzz/corpus/TARGET) and deterministic random mutations of it, for a
//! fixed number of inputs. Each input must return (no panic, no hang).
//! `CORESTUB_FUZZ_SECS=N` turns each target into an N-second random run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use corestub::fuzz_harness as h;

/// Only a hang crosses this; speed is measured by bench/, not asserted.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: [u64; 12] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x1000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
];

/// One libFuzzer-style mutation of `seed`.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    let rounds = 1 + rng.below(8);
    for _ in 0..rounds {
        if v.is_empty() {
            v.push(rng.next() as u8);
        }
        let at = rng.below(v.len());
        match rng.below(7) {
            0 => v[at] ^= 1 << rng.below(8),
            1 => v[at] = rng.next() as u8,
            2 => {
                let val = INTERESTING[rng.below(INTERESTING.len())];
                let w = [1usize, 2, 4, 8][rng.below(4)];
                let at = at & !(w - 1);
                let end = (at + w).min(v.len());
                v[at..end].copy_from_slice(&val.to_le_bytes()[..end - at]);
            }
            3 => v.truncate(at),
            4 => {
                let n = rng.below(64).min(v.len() - at);
                v[at..at + n].fill(0);
            }
            5 => {
                let n = rng.below(256).min(v.len() - at);
                let chunk = v[at..at + n].to_vec();
                let to = rng.below(v.len());
                v.splice(to..to, chunk);
            }
            _ => {
                let n = rng.below(16);
                for _ in 0..n {
                    let c = b"$#,:;0123456789abcdefxXmMgGpPqQvH\n"[rng.below(34)];
                    v.insert(at.min(v.len()), c);
                }
            }
        }
    }
    v
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .collect();
    out.push(Vec::new());
    out
}

fn run(target: &str, inputs: usize, f: impl Fn(&[u8])) {
    let secs: Option<u64> = std::env::var("CORESTUB_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok());
    let seeds = seeds(target);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ target.len() as u64);
    let start = Instant::now();
    let mut n = 0usize;
    let mut slowest = Duration::ZERO;
    loop {
        let input = if n < seeds.len() {
            seeds[n].clone()
        } else {
            let s = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, s)
        };
        let t = Instant::now();
        f(&input);
        let took = t.elapsed();
        slowest = slowest.max(took);
        assert!(
            took < HANG_GUARD,
            "{target}: input #{n} ({} bytes) took {took:?}",
            input.len()
        );
        n += 1;
        match secs {
            Some(s) if start.elapsed() >= Duration::from_secs(s) => break,
            None if n >= inputs => break,
            _ => {}
        }
    }
    eprintln!(
        "fuzz_smoke {target}: {n} inputs in {:?} (slowest {slowest:?})",
        start.elapsed()
    );
}

#[test]
fn fuzz_smoke_elf() {
    run("elf", 300, h::elf);
}

#[test]
fn fuzz_smoke_kdump() {
    run("kdump", 300, h::kdump);
}

#[test]
fn fuzz_smoke_flat() {
    run("flat", 300, h::flat);
}

#[test]
fn fuzz_smoke_vmcoreinfo() {
    run("vmcoreinfo", 1000, h::vmcoreinfo);
}

#[test]
fn fuzz_smoke_walkers() {
    run("walkers", 3000, h::walkers);
}

#[test]
fn fuzz_smoke_rsp() {
    let s = h::synthetic_session();
    run("rsp", 1000, |b| h::rsp(&s, b));
}

#[test]
fn fuzz_smoke_dwarf() {
    run("dwarf", 300, h::dwarf);
}

/// The targets over damaged real fixtures (src/fuzz_harness/real.rs): both
/// fixtures present, or a loud skip (a failure with
/// CORESTUB_REQUIRE_FIXTURES=1).
fn real_fixtures(test: &str) -> bool {
    h::real::FIXTURES.iter().all(|(set, file)| {
        corestub::fixtures::fixture(set, file, test).is_some()
            && corestub::fixtures::fixture(set, "vmlinux", test).is_some()
    })
}

/// Each real target's seeds first hit a fixture that opened and recorded
/// the pages a session reads (else every input would return at once).
fn real_run(target: &str, inputs: usize, f: impl Fn(&[u8])) {
    if !real_fixtures(&format!("fuzz_smoke_{target}")) {
        return;
    }
    for i in 0..h::real::FIXTURES.len() {
        let fx = h::real::fixture(i).expect("fixture opens and serves");
        assert!(
            fx.hot.len() > 100,
            "{}: {} hot pages",
            fx.name,
            fx.hot.len()
        );
    }
    run(target, inputs, f);
}

/// The undamaged overlay serves what the fixture holds: task threads with
/// registers, and a kernel log (so the targets start from working paths).
#[test]
fn real_targets_start_from_a_working_session() {
    if !real_fixtures("real_targets_start_from_a_working_session") {
        return;
    }
    for i in 0..h::real::FIXTURES.len() as u8 {
        let s = h::real::intact_session(i).expect("intact session");
        let tasks = s.tasks();
        assert!(tasks.len() > 20, "fixture {i}: {} tasks", tasks.len());
        assert!(
            tasks
                .iter()
                .any(|t| t.task.pid == 1 && t.switch_regs.is_ok())
        );
        let log = corestub::kernel::printk::read_log(&s.kernel).expect("log");
        assert!(log.len() > 50, "fixture {i}: {} log records", log.len());
        let ps = corestub::target::monitor::run(&s, "ps");
        assert!(ps.lines().count() > 20, "fixture {i}: {ps}");
    }
}

#[test]
fn fuzz_smoke_session() {
    real_run("session", 40, h::real::session_target);
}

#[test]
fn fuzz_smoke_tasks() {
    real_run("tasks", 60, h::real::tasks_target);
}

#[test]
fn fuzz_smoke_printk() {
    real_run("printk", 60, h::real::printk_target);
}

#[test]
fn fuzz_smoke_monitor() {
    real_run("monitor", 60, h::real::monitor_target);
}

#[test]
fn fuzz_smoke_regs() {
    real_run("regs", 40, h::real::regs_target);
}

/// The synthetic dump the RSP target serves is itself right.
#[test]
fn synthetic_session_reads_kernel_text() {
    let s = h::synthetic_session();
    let k = &s.kernel;
    let mut b = [0u8; 8];
    k.read_virt(
        &k.kernel_space(),
        corestub::addr::VirtAddr(0xffff_ffff_8100_0000),
        &mut b,
    )
    .unwrap();
    assert_eq!(&b, b"corestub");
}
