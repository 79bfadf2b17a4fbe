//! The running kernel (/proc/kcore), end to end: `corestub serve` runs
//! *inside* a QEMU guest as root, reading the guest's own /proc/kcore, and
//! GDB on the host debugs the guest kernel through a forwarded port.
//!
//! The guest: Debian's 6.1 cloud kernel (the fixtures' vmlinux; KASLR on)
//! under QEMU TCG, 2 CPUs, a busybox initramfs holding corestub (stripped),
//! its shared libraries and the dynamic loader (from `ldd`), the virtio
//! modules from the same kernel package, and the debug vmlinux on a
//! read-only virtio disk (an ext4 image made once with `mke2fs -d`). User
//! networking forwards 127.0.0.1:PORT to the guest's `corestub serve
//! --listen 0.0.0.0:1234 --allow-remote`. /init starts two sleepers (the
//! first with only `CORESTUB_MARK=<marker>` in its environment), logs the
//! marker to the kernel log, and prints what the checks compare against on
//! the serial console: the sleepers' PIDs and the first one's
//! env_start/env_end from /proc/PID/stat.
//!
//! Host GDB checks: `info threads` lists the sleepers as task threads and
//! marks CPU threads `[running]` (kcore has no CPU registers), `bt` of a
//! sleeper ends in its nanosleep, `p init_task.comm`, `dmesg` has the
//! marker, `ps` lists the sleepers, the sleeper's environment read through
//! its own page tables holds the marker, a write and a breakpoint are
//! refused, a `stepi` is answered by a stop (the connection lives on), and
//! `monitor refresh` and `continue` re-read the kernel (a new snapshot) and
//! still list the sleepers; `lsmod` matches the guest's /proc/modules,
//! `corestub info` in the guest prints the dump summary, and a second GDB
//! client gets a fresh snapshot.
//!
//! The same boot without a vmlinux: before the vmlinux disk is mounted
//! (corestub has no debug file to find), the guest runs `corestub info`
//! and a second `corestub serve` (port NODEBUG_PORT), which build their
//! symbol file from the kernel itself (kallsyms in memory, the BTF of
//! /sys/kernel/btf/vmlinux, ORC); the guest copies that file raw onto a
//! second, writable disk, and host GDB loads it from there by the
//! server's own `add-symbol-file` line. Checked: the summary, the task
//! threads, the sleeper's `bt` by function against the debug session's,
//! `dmesg`, `ps`, `sys`, `lsmod`, `continue`, `ptype struct task_struct`
//! and a task cast by the address `ps` gives.
//!
//! `kcore_510_without_vmlinux` does the nodebug half on Debian 11's 5.10
//! (fetched from bullseye through a private apt configuration), whose
//! VMCOREINFO does not locate kallsyms: symbols from /proc/kallsyms.
//! The two tests take turns (one guest at a time).
//!
//! Needs qemu-system-x86_64, busybox-static, gdb, mke2fs, strip, the
//! x86_64 vmlinux fixture and Debian's linux-image-6.1.0-56-cloud-amd64
//! (fetched with apt-get download into the fixture cache on first use,
//! with the disk image). Missing pieces: SKIP, or failure under
//! CORESTUB_REQUIRE_FIXTURES=1.

mod common;
/// qemu_other_kernel's private apt configuration (its fetch module only).
#[allow(dead_code)]
#[path = "other_kernels/fetch.rs"]
mod fetch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::guest::{
    INIT_PREAMBLE, Proc, TempDir, busybox, cmd_ok, downloaded, ext4_image, extract, have,
    initramfs_with, with_libraries,
};
use common::{GDB_BATCH, corestub_bin, frame_functions, same_functions, split_steps, step_args};

const TEST: &str = "kcore_guest";
const KVER: &str = "6.1.0-56-cloud-amd64";
/// Boot, the nodebug symbol file built under TCG, both servers started.
const BOOT_TIMEOUT: Duration = Duration::from_secs(400);
/// The guest port corestub listens on (with the debug vmlinux).
const GUEST_PORT: u16 = 1234;
/// The guest port of the corestub started before any vmlinux was
/// reachable (symbols built from the kernel itself).
const NODEBUG_PORT: u16 = 1235;
/// The second disk, onto which the guest copies the nodebug symbol file.
const OUT_DISK_BYTES: u64 = 64 << 20;

/// The modules that give the guest a virtio NIC and disk (all `=m` in
/// Debian's cloud kernel), under lib/modules/KVER/kernel/.
const MODULES: &[&str] = &[
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci_modern_dev.ko",
    "drivers/virtio/virtio_pci.ko",
    "net/core/failover.ko",
    "drivers/net/net_failover.ko",
    "drivers/net/virtio_net.ko",
    "drivers/block/virtio_blk.ko",
];

/// Debian 11's last 5.10: before 6.0 (VMCOREINFO does not locate
/// kallsyms) and 5.13 (nor has it a BUILD-ID).
const KVER_510: &str = "5.10.0-32-cloud-amd64";

/// [`MODULES`] as 5.10 has them (virtio_pci not yet split).
const MODULES_510: &[&str] = &[
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_pci.ko",
    "net/core/failover.ko",
    "drivers/net/net_failover.ko",
    "drivers/net/virtio_net.ko",
    "drivers/block/virtio_blk.ko",
];

/// One guest at a time (the tests of this file run on parallel threads;
/// two TCG guests on a small machine slow both past their timeouts).
static ONE_GUEST: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn skip(why: &str) {
    common::guest::skip(TEST, why)
}

/// QEMU, GDB, strip and each of `more` (`"PROGRAM ARG"`) answer, and the
/// host's static busybox, for the guest's initramfs; None: skipped (said).
fn guest_prerequisites(more: &[&str]) -> Option<Vec<u8>> {
    let base = [
        "qemu-system-x86_64 --version",
        "gdb --version",
        "strip --version",
    ];
    for t in base.iter().chain(more) {
        let (tool, arg) = t.split_once(' ').unwrap_or((t, "--version"));
        if !have(tool, arg) {
            skip(&format!("{tool} is not installed"));
            return None;
        }
    }
    let bb = busybox();
    if bb.is_none() {
        skip("no static /bin/busybox (apt-get install busybox-static)");
    }
    bb
}

/// The kernel image and its virtio modules, cached in
/// `fixtures/kcore-guest/KVER/` (each file renamed into place whole).
struct GuestKernel {
    vmlinuz: PathBuf,
    modules: Vec<PathBuf>,
}

fn module_path(dir: &Path, m: &str) -> PathBuf {
    dir.join("modules").join(m.rsplit('/').next().unwrap())
}

/// Release `kver`'s image and `modules`, from the machine's own apt
/// configuration, or with `suite` from a private one for that suite of
/// the machine's Debian mirror (as qemu_other_kernel fetches).
fn guest_kernel(kver: &str, modules: &[&str], suite: Option<&str>) -> Result<GuestKernel, String> {
    let dir = corestub::fixtures::root().join("kcore-guest").join(kver);
    let k = GuestKernel {
        vmlinuz: dir.join("vmlinuz"),
        modules: modules.iter().map(|m| module_path(&dir, m)).collect(),
    };
    if k.vmlinuz.is_file() && k.modules.iter().all(|m| m.is_file()) {
        return Ok(k);
    }
    let work = dir.join(format!("tmp-{}", std::process::id()));
    std::fs::create_dir_all(work.join("modules")).map_err(|e| e.to_string())?;
    let _tmp = TempDir(work.clone());
    let pkg = format!("linux-image-{kver}");
    let opts = match suite {
        Some(suite) => {
            let opts = fetch::private_apt(&work.join("apt"), suite, "amd64")?;
            cmd_ok(
                Command::new("apt-get").args(&opts).args(["-q", "update"]),
                &format!("apt-get update ({suite})"),
            )?;
            opts
        }
        None => Vec::new(),
    };
    cmd_ok(
        Command::new("apt-get")
            .args(&opts)
            .args(["download", &pkg])
            .current_dir(&work),
        &format!("apt-get download {pkg}"),
    )?;
    let deb = downloaded(&work, &pkg)?;
    let image = format!("./boot/vmlinuz-{kver}");
    let mods: Vec<String> = modules
        .iter()
        .map(|m| format!("./lib/modules/{kver}/kernel/{m}"))
        .collect();
    let mut members = vec![image.clone()];
    members.extend(mods.iter().cloned());
    extract(&deb, &work, &members)?;
    std::fs::create_dir_all(dir.join("modules")).map_err(|e| e.to_string())?;
    for (m, rel) in modules.iter().zip(&mods) {
        std::fs::rename(work.join(rel), module_path(&dir, m)).map_err(|e| format!("{m}: {e}"))?;
    }
    std::fs::rename(work.join(&image), &k.vmlinuz).map_err(|e| format!("{image}: {e}"))?;
    Ok(k)
}

/// An ext4 image holding `vmlinux` (as /vmlinux), made once beside the
/// kernel: the guest mounts it read-only for corestub's `--vmlinux`.
fn vmlinux_disk(vmlinux: &Path) -> Result<PathBuf, String> {
    let dir = corestub::fixtures::root().join("kcore-guest").join(KVER);
    let img = dir.join("vmlinux.ext4");
    if img.is_file() {
        return Ok(img);
    }
    let src = dir.join(format!("disk-src-{}", std::process::id()));
    std::fs::create_dir_all(&src).map_err(|e| e.to_string())?;
    let _tmp = TempDir(src.clone());
    let inside = src.join("vmlinux");
    if std::fs::hard_link(vmlinux, &inside).is_err() {
        std::fs::copy(vmlinux, &inside).map_err(|e| format!("copy vmlinux: {e}"))?;
    }
    let size_mb = std::fs::metadata(vmlinux).map_err(|e| e.to_string())?.len() / (1 << 20) + 64;
    ext4_image(&src, &img, size_mb)?;
    Ok(img)
}

/// corestub (stripped) and everything `ldd` says it loads, as initramfs
/// files at their own paths; corestub itself at /corestub.
fn corestub_files(work: &Path) -> Result<Vec<(String, Vec<u8>)>, String> {
    let stripped = work.join("corestub");
    cmd_ok(
        Command::new("strip")
            .arg("-o")
            .arg(&stripped)
            .arg(corestub_bin()),
        "strip corestub",
    )?;
    let mut files = vec![(
        "corestub".to_string(),
        std::fs::read(&stripped).map_err(|e| e.to_string())?,
    )];
    // the libraries as the unstripped binary names them
    files.extend(
        with_libraries(Path::new(corestub_bin()))?
            .into_iter()
            .skip(1),
    );
    Ok(files)
}

fn loader(files: &[(String, Vec<u8>)]) -> String {
    let l = files
        .iter()
        .find(|(p, _)| p.contains("ld-linux"))
        .expect("checked in corestub_files");
    format!("/{}", l.0)
}

/// /init: modules, network, two sleepers, facts on the console; then,
/// before any vmlinux is reachable, `corestub info` and a nodebug `serve`
/// on NODEBUG_PORT (its banner's lines prefixed `KCORE-NB `), the
/// symbol file they built copied raw onto the out disk; then, with
/// `debug`, the vmlinux disk mounted, `corestub info --vmlinux` and the
/// debug `serve`.
fn init_script(marker: &str, loader: &str, debug: bool) -> String {
    let run = format!(
        "{loader} --library-path /lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu /corestub"
    );
    // the out disk follows the vmlinux disk (vda) when there is one
    let (out, debug_part) = match debug {
        true => (
            "vdb",
            format!(
                "mkdir -p /mnt
mount -t ext4 -o ro /dev/vda /mnt || echo KCORE-FAIL mount
{run} info --vmlinux /mnt/vmlinux | sed 's/^/KCORE-INFO /'
{run} serve --listen 0.0.0.0:{GUEST_PORT} --allow-remote --vmlinux /mnt/vmlinux &
"
            ),
        ),
        false => ("vda", String::new()),
    };
    format!(
        "{INIT_PREAMBLE}for pass in 1 2 3; do for m in /modules/*.ko; do insmod $m 2>/dev/null; done; done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
env -i CORESTUB_MARK={marker} sleep 100001 &
s1=$!
sleep 100002 &
s2=$!
echo KCORE-MARKER {marker} > /dev/kmsg
sleep 1
echo \"KCORE-SLEEPERS $s1 $s2\"
echo \"KCORE-ENV $s1 $(cut -d' ' -f50,51 /proc/$s1/stat)\"
echo \"KCORE-COMM $(cat /proc/$s1/comm)\"
echo \"KCORE-MODULES $(cut -d' ' -f1 /proc/modules | tr '\\n' ' ')\"
chmod 755 {loader}
export XDG_CACHE_HOME=/cache
echo \"KCORE-UPTIME nodebug-start $(cut -d' ' -f1 /proc/uptime)\"
RUST_LOG=corestub::cli=info {run} info >/nb-info.log 2>&1
echo \"KCORE-UPTIME nodebug-info $(cut -d' ' -f1 /proc/uptime)\"
sed 's/^/KCORE-NB-INFO /' /nb-info.log
f=$(ls /cache/corestub/nodebug/*/*/vmlinux) || echo KCORE-FAIL no symbol file
cat $f > /dev/{out} && sync || echo KCORE-FAIL copy
echo \"KCORE-SYMFILE $(wc -c < $f)\"
{run} serve --listen 0.0.0.0:{NODEBUG_PORT} --allow-remote 2>/nb.log &
while ! grep -q 'target remote' /nb.log; do sleep 1; done
echo \"KCORE-UPTIME nodebug-serving $(cut -d' ' -f1 /proc/uptime)\"
sed 's/^/KCORE-NB /' /nb.log
{debug_part}while true; do sleep 1000; done
"
    )
}

/// A free TCP port on 127.0.0.1 for QEMU's forward.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The first console line that starts with `key`, the rest of it (the
/// nodebug server's lines carry a prefix).
fn console_line_start<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| Some(l.strip_prefix(key)?.trim()))
        .unwrap_or_else(|| panic!("no line starting {key:?} on the console:\n{text}"))
}

/// The first console line with `key`, the rest of it.
fn console_line<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| Some(l.split_once(key)?.1.trim()))
        .unwrap_or_else(|| panic!("no {key:?} on the console:\n{text}"))
}

/// GDB on the host, connected to the guest's corestub, running `steps`.
fn gdb(port: u16, symbols: &str, steps: &[(&str, &str)]) -> (BTreeMap<String, String>, String) {
    let scripts = concat!(env!("CARGO_MANIFEST_DIR"), "/gdb-scripts/corestub.py");
    let mut args: Vec<String> = GDB_BATCH.map(String::from).to_vec();
    for c in [
        "set remotetimeout 60".to_string(),
        "set confirm off".to_string(),
        symbols.to_string(),
        format!("source {scripts}"),
        format!("target remote 127.0.0.1:{port}"),
    ] {
        args.push("-ex".into());
        args.push(c);
    }
    for (label, cmd) in steps {
        args.extend(step_args(label, cmd));
    }
    args.extend(step_args("end", "echo"));
    let out = common::run(Command::new("gdb").args(&args).stdin(Stdio::null()));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (split_steps(&stdout), all)
}

#[test]
fn kcore_in_a_guest() {
    let _one = ONE_GUEST.lock().unwrap_or_else(|e| e.into_inner());
    let t0 = Instant::now();
    let Some(bb) = guest_prerequisites(&["mke2fs -V"]) else {
        return;
    };
    let Some(vmlinux) = corestub::fixtures::fixture("x86_64-6.1", "vmlinux", TEST) else {
        return;
    };
    let kernel = match guest_kernel(KVER, MODULES, None) {
        Ok(k) => k,
        Err(e) => return skip(&format!("cannot fetch linux-image-{KVER}: {e}")),
    };
    let disk = match vmlinux_disk(&vmlinux) {
        Ok(d) => d,
        Err(e) => return skip(&format!("cannot make the vmlinux disk: {e}")),
    };
    eprintln!("{TEST}: kernel and disk ready in {:.1?}", t0.elapsed());

    let (g, text) = boot(&bb, &kernel, Some(&disk), "6.1");
    let read_console = || g.console();
    let (marker, port) = (g.marker.clone(), g.port);
    let sleepers: Vec<u32> = console_line(&text, "KCORE-SLEEPERS ")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    let env: Vec<u64> = console_line(&text, "KCORE-ENV ")
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(sleepers.len(), 2, "console:\n{text}");
    assert_eq!(env.len(), 3, "KCORE-ENV PID START END; console:\n{text}");
    assert_eq!(console_line(&text, "KCORE-COMM "), "sleep");
    // the banner's add-symbol-file line, with the host's vmlinux
    let symbols = console_line_start(&text, "corestub: in GDB: ")
        .replace("/mnt/vmlinux", &vmlinux.display().to_string());
    assert!(symbols.starts_with("add-symbol-file "), "{symbols}");
    // `corestub info` on the running kernel: the summary a dump gets
    let info = |key: &str| console_line(&text, &format!("KCORE-INFO {key:>18}: ")).to_string();
    assert_eq!(info("RELEASE"), KVER);
    assert!(
        info("FORMAT").starts_with("running kernel (kcore"),
        "{}",
        info("FORMAT")
    );
    let tasks: usize = info("TASKS").parse().unwrap();
    assert!(tasks > 40, "TASKS {tasks}");
    assert_eq!(info("CPUS"), "2");
    assert!(
        !text.contains("KCORE-INFO              PANIC"),
        "no panic on a running kernel"
    );
    eprintln!(
        "{TEST}: corestub info in the guest:\n{}",
        text.lines()
            .filter(|l| l.contains("KCORE-INFO"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let (s1, s2) = (sleepers[0], sleepers[1]);
    let env_start = env[1];

    let t_gdb = Instant::now();
    let (steps, all) = gdb(
        port,
        &symbols,
        &[
            ("threads", "info threads"),
            ("task", &format!("task {s1}")),
            ("bt", "bt"),
            ("comm", "p init_task.comm"),
            ("dmesg", "dmesg"),
            ("ps", "ps"),
            ("task-again", &format!("task {s1}")),
            ("user", &format!("x/s {env_start:#x}")),
            ("write", "set var init_task.comm[0] = 88"),
            ("comm-after", "p init_task.comm"),
            ("refresh", "monitor refresh"),
            ("flush", "maintenance flush register-cache"),
            ("threads-after", "info threads"),
            ("continue", "continue"),
            ("threads-continue", "info threads"),
            ("help", "monitor help"),
            ("lsmod", "lsmod"),
            ("sys", "sys"),
            // last: after a step GDB spends a long time in its own symbol
            // lookups (a minute under load), whatever the server answers
            ("break", "break do_nanosleep"),
            ("continue-bp", "continue"),
            ("delete", "delete"),
            ("stepi", "stepi"),
            ("after-stepi", "monitor info version"),
        ],
    );
    eprintln!("{TEST}: GDB session {:.1?}", t_gdb.elapsed());
    let step = |l: &str| steps.get(l).map(String::as_str).unwrap_or("");
    eprintln!("{TEST}: sys in GDB:\n{}", step("sys"));
    let ctx = || format!("GDB output:\n{all}\nconsole:\n{}", read_console());
    for (l, want) in [
        ("threads", format!("pid {s1} sleep")),
        ("threads", format!("pid {s2} sleep")),
        ("threads", "[running]".to_string()),
        // a task on a CPU (corestub itself, reading) is marked too
        ("threads", "] [running])".to_string()),
        ("sys", format!("RELEASE: {KVER}")),
        ("sys", "DUMPFILE: /proc/kcore".to_string()),
        ("comm", "\"swapper/0".to_string()),
        ("dmesg", format!("KCORE-MARKER {marker}")),
        ("user", format!("CORESTUB_MARK={marker}")),
        ("comm-after", "\"swapper/0".to_string()),
        ("threads-after", format!("pid {s1} sleep")),
        ("continue", "received signal SIGINT".to_string()),
        // a step is refused with a stop; the connection lives on
        ("stepi", "received signal SIGINT".to_string()),
        ("threads-continue", format!("pid {s2} sleep")),
    ] {
        assert!(
            step(l).contains(&want),
            "step {l}: no {want:?} in {:?}\n{}",
            step(l),
            ctx()
        );
    }
    let bt = step("bt");
    assert!(
        ["do_nanosleep", "hrtimer_nanosleep", "schedule"]
            .iter()
            .any(|f| bt.contains(f)),
        "bt of sleeper {s1}: {bt}\n{}",
        ctx()
    );
    let modules: Vec<&str> = console_line(&text, "KCORE-MODULES ")
        .split_whitespace()
        .collect();
    assert!(modules.contains(&"virtio_net"), "{modules:?}");
    for m in &modules {
        assert!(
            step("lsmod")
                .lines()
                .any(|l| l.split_whitespace().any(|w| w == *m)),
            "lsmod lacks {m} (the guest's /proc/modules: {modules:?}):\n{}",
            ctx()
        );
    }
    let ps = step("ps");
    for pid in [s1, s2] {
        assert!(
            ps.lines()
                .any(|l| l.split_whitespace().next() == Some(&pid.to_string())
                    && l.contains("sleep")),
            "ps lists sleeper {pid}:\n{ps}\n{}",
            ctx()
        );
    }
    // monitor output goes to GDB's stderr: the refresh took snapshot 2
    // (continue took the third), and `monitor help` lists it
    for want in [
        "running kernel re-read (snapshot 2)",
        "refresh re-read the running kernel",
        // answered after the refused step: the connection lives on
        "corestub 0.",
    ] {
        assert!(all.contains(want), "no {want:?}:\n{}", ctx());
    }
    // the breakpoint's insertion (a memory write) was refused by the server
    let bp = step("break")
        .split_whitespace()
        .find(|w| w.starts_with("0x"))
        .map(|w| w.trim_end_matches(':').to_string())
        .unwrap_or_else(|| panic!("no breakpoint address:\n{}", ctx()));
    assert!(
        read_console().contains(&format!("refused a memory write at {bp}")),
        "breakpoint at {bp} not refused:\n{}",
        ctx()
    );
    // the write was refused, and said so
    assert!(
        all.contains("Cannot access memory") || all.contains("Could not write"),
        "the write to init_task.comm was not refused:\n{}",
        ctx()
    );
    // a second client gets its own fresh snapshot
    let (steps2, all2) = gdb(port, &symbols, &[("threads", "info threads")]);
    assert!(
        steps2
            .get("threads")
            .is_some_and(|t| t.contains(&format!("pid {s1} sleep"))),
        "second client:\n{all2}"
    );
    let t_nodebug = Instant::now();
    let facts = Facts {
        text: &text,
        marker: &marker,
        sleepers: (s1, s2),
        kver: KVER,
        debug_bt: Some(frame_functions(bt)),
    };
    check_nodebug(&g, &facts);
    eprintln!("{TEST}: nodebug GDB sessions {:.1?}", t_nodebug.elapsed());
    drop(g);
    eprintln!("{TEST}: total {:.1?}", t0.elapsed());
}

/// A guest serving its kcore: QEMU (killed first when dropped), its
/// scratch directory (console, initrd, the out disk), the host ports
/// forwarded to the servers, the marker it logged.
struct Guest {
    qemu: Proc,
    dir: PathBuf,
    port: u16,
    nodebug_port: u16,
    marker: String,
    _tmp: TempDir,
}

impl Guest {
    fn console(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.dir.join("console.log")).unwrap_or_default())
            .to_string()
    }

    fn out_disk(&self) -> PathBuf {
        self.dir.join("out.img")
    }
}

/// Boots `kernel` (2 CPUs, TCG) with the /init of [`init_script`]: with
/// `vmlinux_disk`, both servers, else the nodebug one only. Returns once
/// they listen, with the console so far.
fn boot(
    bb: &[u8],
    kernel: &GuestKernel,
    vmlinux_disk: Option<&Path>,
    tag: &str,
) -> (Guest, String) {
    let dir = std::env::temp_dir().join(format!("corestub-kcore-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _tmp = TempDir(dir.clone());
    let marker = common::guest::marker("CORESTUB-KCORE");
    let mut files = corestub_files(&dir).unwrap();
    let loader = loader(&files);
    for m in &kernel.modules {
        let name = format!("modules/{}", m.file_name().unwrap().to_string_lossy());
        files.push((name, std::fs::read(m).unwrap()));
    }
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice()))
        .collect();
    let initrd = dir.join("initrd.gz");
    let debug = vmlinux_disk.is_some();
    std::fs::write(
        &initrd,
        initramfs_with(bb, &init_script(&marker, &loader, debug), &refs),
    )
    .unwrap();
    drop(files);
    let out_disk = dir.join("out.img");
    std::fs::File::create(&out_disk)
        .and_then(|f| f.set_len(OUT_DISK_BYTES))
        .unwrap();
    let (port, nodebug_port) = (free_port(), free_port());
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args(["-accel", "tcg", "-cpu", "max,la57=off"])
        .args(["-machine", "pc", "-m", "1024", "-smp", "2"])
        .args(["-display", "none", "-nodefaults", "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", dir.join("console.log").display()));
    // the vmlinux disk first (vda), the out disk after it
    if let Some(disk) = vmlinux_disk {
        qemu.arg("-drive").arg(format!(
            "file={},format=raw,if=virtio,readonly=on",
            disk.display()
        ));
    }
    qemu.arg("-drive")
        .arg(format!("file={},format=raw,if=virtio", out_disk.display()))
        .arg("-netdev")
        .arg(format!(
            "user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:{GUEST_PORT},\
             hostfwd=tcp:127.0.0.1:{nodebug_port}-:{NODEBUG_PORT}"
        ))
        .args(["-device", "virtio-net-pci,netdev=n0"])
        .arg("-kernel")
        .arg(&kernel.vmlinuz)
        .arg("-initrd")
        .arg(&initrd)
        .args(["-append", "console=ttyS0 panic=-1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("qemu.err")).unwrap());
    let mut g = Guest {
        qemu: Proc::spawn("qemu", &mut qemu),
        dir,
        port,
        nodebug_port,
        marker,
        _tmp,
    };
    let boot = Instant::now();
    // corestub's banner ends with the `target remote` line once it listens
    let text = loop {
        let text = g.console();
        if text.contains("KCORE-NB corestub:         target remote")
            && (!debug
                || text
                    .lines()
                    .any(|l| l.starts_with("corestub:         target remote")))
        {
            break text;
        }
        assert!(
            !text.contains("KCORE-FAIL") && !text.contains("/init: line"),
            "guest set-up failed; console:\n{text}"
        );
        assert!(
            g.qemu.alive(),
            "QEMU exited: {}\nconsole:\n{text}",
            std::fs::read_to_string(g.dir.join("qemu.err")).unwrap_or_default()
        );
        assert!(
            boot.elapsed() < BOOT_TIMEOUT,
            "corestub did not start serving within {BOOT_TIMEOUT:?}; console:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("{TEST}: {tag} guest serving after {:.1?}", boot.elapsed());
    (g, text)
}

/// What the session without a vmlinux is checked against.
struct Facts<'a> {
    /// The console up to both servers' banners.
    text: &'a str,
    marker: &'a str,
    sleepers: (u32, u32),
    kver: &'a str,
    /// The debug session's `bt` of the first sleeper, by frame function;
    /// without one, the functions its sleep goes through, in order.
    debug_bt: Option<Vec<String>>,
}

/// The guest's `corestub info` and `serve` started before any vmlinux was
/// reachable: the summary, then GDB on the host with the symbol file the
/// guest built from its own kernel (kallsyms, /sys/kernel/btf/vmlinux,
/// ORC), copied off the guest's second disk.
fn check_nodebug(g: &Guest, f: &Facts) {
    let text = f.text;
    let (dir, port, read_console) = (&g.dir, g.nodebug_port, || g.console());
    let info = |key: &str| console_line(text, &format!("KCORE-NB-INFO {key:>18}: ")).to_string();
    assert!(
        text.contains("KCORE-NB-INFO corestub: no debug vmlinux for the running kernel"),
        "{text}"
    );
    // the types from the kernel's own BTF file, not the copy in memory
    assert!(text.contains("BTF from /sys/kernel/btf/vmlinux"), "{text}");
    assert_eq!(info("RELEASE"), f.kver);
    assert!(info("FORMAT").starts_with("running kernel (kcore"));
    assert_eq!(info("CPUS"), "2");
    let tasks: usize = info("TASKS").parse().unwrap();
    assert!(tasks > 40, "TASKS {tasks} without a vmlinux");
    let guest_file = info("VMLINUX");
    assert!(
        guest_file.starts_with("/cache/corestub/nodebug/"),
        "{guest_file}"
    );
    eprintln!(
        "{TEST}: corestub info in the guest without a vmlinux:\n{}",
        text.lines()
            .filter(|l| l.contains("KCORE-NB-INFO") || l.contains("KCORE-UPTIME"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // the symbol file, off the raw disk
    let size: usize = console_line(text, "KCORE-SYMFILE ").parse().unwrap();
    let bytes = std::fs::read(g.out_disk()).unwrap();
    assert!(
        size > 1 << 20 && size <= bytes.len(),
        "symbol file of {size} bytes"
    );
    let host_file = dir.join("nodebug-vmlinux");
    std::fs::write(&host_file, &bytes[..size]).unwrap();
    let symbols = console_line(text, "KCORE-NB corestub: in GDB: ")
        .replace(&guest_file, &host_file.display().to_string());
    assert!(symbols.starts_with("add-symbol-file "), "{symbols}");

    let (s1, s2) = f.sleepers;
    let (steps, all) = gdb(
        port,
        &symbols,
        &[
            ("threads", "info threads"),
            ("task", &format!("task {s1}")),
            ("bt", "bt"),
            ("dmesg", "dmesg"),
            ("ps", "ps"),
            ("ptype", "ptype struct task_struct"),
            ("sys", "sys"),
            ("lsmod", "lsmod"),
            ("continue", "continue"),
            ("threads-after", "info threads"),
        ],
    );
    let step = |l: &str| steps.get(l).map(String::as_str).unwrap_or("");
    let ctx = || format!("GDB output:\n{all}\nconsole:\n{}", read_console());
    eprintln!("{TEST}: sys without a vmlinux:\n{}", step("sys"));
    for (l, want) in [
        ("threads", format!("pid {s1} sleep")),
        ("threads", format!("pid {s2} sleep")),
        ("threads", "[running]".to_string()),
        ("dmesg", format!("KCORE-MARKER {}", f.marker)),
        ("ptype", "char comm[16];".to_string()),
        ("ptype", "struct list_head tasks;".to_string()),
        ("sys", format!("RELEASE: {}", f.kver)),
        ("lsmod", "virtio_net".to_string()),
        ("continue", "received signal SIGINT".to_string()),
        ("threads-after", format!("pid {s1} sleep")),
    ] {
        assert!(
            step(l).contains(&want),
            "nodebug step {l}: no {want:?} in {:?}\n{}",
            step(l),
            ctx()
        );
    }
    let ours = frame_functions(step("bt"));
    eprintln!(
        "{TEST}: bt of {s1} without a vmlinux: {ours:?}\n with it: {:?}",
        f.debug_bt
    );
    match &f.debug_bt {
        Some(theirs) => same_functions(&ours, theirs),
        None => {
            let sleep = ["schedule", "do_nanosleep", "hrtimer_nanosleep"];
            let at: Vec<Option<usize>> = sleep
                .iter()
                .map(|f| ours.iter().position(|o| o == f))
                .collect();
            assert!(
                at.iter().all(Option::is_some) && at.is_sorted(),
                "bt of {s1}: {ours:?}\n{}",
                ctx()
            );
        }
    }
    // ps: the sleepers, and the first one's task_struct address
    let ps = step("ps");
    let row = |pid: u32| {
        ps.lines()
            .find(|l| l.split_whitespace().next() == Some(&pid.to_string()) && l.contains("sleep"))
            .unwrap_or_else(|| panic!("ps lacks sleeper {pid}:\n{ps}\n{}", ctx()))
    };
    row(s2);
    let task = row(s1).split_whitespace().nth(3).unwrap();
    let task = if task.starts_with("0x") {
        task.to_string()
    } else {
        format!("0x{task}")
    };
    // a second client (a fresh snapshot): the task cast by its address
    let (steps2, all2) = gdb(
        port,
        &symbols,
        &[("comm", &format!("p ((struct task_struct *){task})->comm"))],
    );
    assert!(
        steps2.get("comm").is_some_and(|c| c.contains("\"sleep")),
        "comm of task {task}:\n{all2}"
    );
}

/// The running 5.10 kernel with no vmlinux at all: VMCOREINFO does not
/// locate its kallsyms tables (it does from 6.0), so they are found in
/// memory by their shape (/proc/kallsyms would be the fallback), the build-id (for the cache) from
/// /sys/kernel/notes; the checks of the 6.1 guest's nodebug half, with
/// the sleeper's `bt` checked for its sleep path (no debug session to
/// compare with). The kernel comes from bullseye through a private apt
/// configuration, cached beside the fixtures.
#[test]
fn kcore_510_without_vmlinux() {
    let _one = ONE_GUEST.lock().unwrap_or_else(|e| e.into_inner());
    let t0 = Instant::now();
    let Some(bb) = guest_prerequisites(&["apt-get --version"]) else {
        return;
    };
    let kernel = match guest_kernel(KVER_510, MODULES_510, Some("bullseye")) {
        Ok(k) => k,
        Err(e) => return skip(&format!("cannot fetch linux-image-{KVER_510}: {e}")),
    };
    eprintln!("{TEST}: 5.10 kernel ready in {:.1?}", t0.elapsed());
    let (g, text) = boot(&bb, &kernel, None, "5.10");
    let sleepers: Vec<u32> = console_line(&text, "KCORE-SLEEPERS ")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(sleepers.len(), 2, "console:\n{text}");
    // VMCOREINFO does not locate 5.10's tables: they are found in memory
    // by their shape (kernel/kallsyms_search.rs), so /proc/kallsyms, the
    // fallback when that fails, is not needed here
    assert!(
        text.contains("symbol file built from the dump") && !text.contains("trying /proc/kallsyms"),
        "{text}"
    );
    let facts = Facts {
        text: &text,
        marker: &g.marker,
        sleepers: (sleepers[0], sleepers[1]),
        kver: KVER_510,
        debug_bt: None,
    };
    check_nodebug(&g, &facts);
    drop(g);
    eprintln!("{TEST}: 5.10 total {:.1?}", t0.elapsed());
}
