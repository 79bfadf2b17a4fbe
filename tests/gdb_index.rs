//! corestub's own GDB index (src/kernel/gdb_index.rs, src/cli/gdb_index.rs)
//! with every GDB client: on a first start (empty caches) `corestub gdb`
//! writes `BUILD-ID.gdb-index` into the index cache it points GDB at; GDB
//! reads it instead of indexing the DWARF (the file is the same after GDB
//! ran: a GDB that indexed the DWARF itself would have stored its own), and
//! lookups of every kind of name answer as with GDB's own index.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::clients::{self, Client, Kind};
use common::guest::TempDir;
use common::{fixture, split_steps, step_args};

/// A static variable without location or value (optimized out).
const OPTIMIZED_OUT: &str = "optimized out";

/// Names of every kind the index lists, and a pc lookup.
const LOOKUPS: &[(&str, &str)] = &[
    ("function", "info line _printk"),
    ("struct", "ptype struct list_head"),
    ("sizeof", "p sizeof(struct task_struct)"),
    ("global", "p init_task.comm"),
    ("enumerator", "p PIDTYPE_TGID"),
    ("enum", "ptype enum pid_type"),
    ("typedef", "whatis pid_t"),
    ("base type", "ptype unsigned long"),
    ("linker symbol", "p &__bss_start"),
    ("declared", "whatis __SCK____perf_guest_get_ip"),
    ("static function", "info scope do_sys_openat2"),
    ("types", "info types ^task_struct$"),
    ("functions", "info functions ^do_sys_open$"),
    ("variables", "info variables ^jiffies_64$"),
    (OPTIMIZED_OUT, "whatis acpi_nobgrt"),
    ("bt", "bt"),
];

/// `corestub gdb` with `client`, XDG_CACHE_HOME = `xdg`, running
/// [`LOOKUPS`] after `extra` GDB arguments; each step's output by label.
fn lookups(
    client: &Client,
    xdg: &Path,
    dump: &Path,
    vmlinux: &Path,
    extra: &[String],
) -> std::collections::BTreeMap<String, String> {
    let mut cmd: Command = client.corestub();
    cmd.env("XDG_CACHE_HOME", xdg)
        .arg("--vmlinux")
        .arg(vmlinux)
        .arg(dump)
        .arg("--")
        .args(common::GDB_BATCH)
        .args(extra);
    for (label, c) in LOOKUPS {
        cmd.args(step_args(label, c));
    }
    cmd.args(["-ex", "echo @@STEP end\\n"]);
    let out = common::run(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    split_steps(&stdout)
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(d) => d.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn first_start_uses_corestubs_index_with_every_gdb() {
    let test = "first_start_uses_corestubs_index_with_every_gdb";
    let (Some(dump), Some(vmlinux)) = (
        fixture("x86_64-6.1", "kdump-zlib-d31.kdump", test),
        fixture("x86_64-6.1", "vmlinux", test),
    ) else {
        return;
    };
    let v = corestub::kernel::symbols::Vmlinux::open(&vmlinux).unwrap();
    let build_id = v.build_id().unwrap().to_string();
    let ours = corestub::kernel::gdb_index::build(v.debug_info().unwrap(), 2).unwrap();
    let clients = clients::clients(Kind::Gdb, test);
    clients::for_each(&clients, |c| {
        eprintln!("{test}: {}", c.version);
        // Under the target dir: the chroot clients see it at this path.
        let xdg =
            TempDir(Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("gdb-index-{}", c.name)));
        let _ = std::fs::remove_dir_all(&xdg.0);
        let cache = xdg.0.join("corestub/gdb-index/v2");
        let with_ours = lookups(c, &xdg.0, &dump, &vmlinux, &[]);
        let file = cache.join(format!("{build_id}.gdb-index"));
        let after = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            after == ours,
            "{} was replaced: GDB indexed the DWARF itself",
            file.display()
        );
        assert_eq!(
            files_in(&cache),
            std::slice::from_ref(&file),
            "only the index is left"
        );

        // The same lookups with GDB's own index (a later -iex wins).
        let own = xdg.0.join("gdb-own");
        std::fs::create_dir_all(&own).unwrap();
        let redirect = vec![
            "-iex".into(),
            format!("set index-cache directory {}", own.display()),
        ];
        let with_gdbs = lookups(c, &xdg.0, &dump, &vmlinux, &redirect);
        assert!(
            !files_in(&own).is_empty(),
            "GDB wrote no index of its own to {}",
            own.display()
        );
        for (label, _) in LOOKUPS {
            let (a, b) = (&with_ours[*label], &with_gdbs[*label]);
            assert!(!a.trim().is_empty(), "{label}: no output");
            if *label == OPTIMIZED_OUT {
                // GDB 16 lists these in its index, GDB 13 not: ours does.
                assert_eq!(a.trim(), "type = int", "{label}");
                continue;
            }
            assert_eq!(a, b, "{label}: corestub's index vs GDB's");
        }
    });
}
