//! `lsmod`: the loaded modules, rendered from the kernel's module view
//! ([`crate::kernel::objects::module`]); `--json` gives the same rows to the
//! GDB scripts' `lsmod`/`modsyms`.

use serde_json::{Value, json};

use super::{CmdResult, Session, usage};
use crate::kernel::objects::module::{Module, modules};

/// `lsmod [--json]`
pub(super) fn lsmod(s: &Session, args: &[&str]) -> CmdResult {
    let json = match args {
        [] => false,
        ["--json"] => true,
        _ => return usage("lsmod takes only --json"),
    };
    let (mods, stopped) = modules(&s.kernel)?;
    let stopped = stopped.map(|e| e.to_string());
    if json {
        let rows: Vec<Value> = mods.iter().map(row_json).collect();
        return Ok(json!({ "modules": rows, "stopped": stopped }).to_string());
    }
    // addresses are pointer-wide, as the GDB-side lsmod prints them
    let w = 2 * s.kernel.arch.pointer_size() as usize;
    let mut out = format!(
        "{:<w$}  {:<24} {:<w$} {:>8}  {:>4}  STATE\n",
        "MODULE", "NAME", "BASE", "SIZE", "REFS"
    );
    for m in &mods {
        out.push_str(&format!(
            "{:0w$x}  {:<24} {:0w$x} {:>8}  {:>4}  {}\n",
            m.addr,
            m.name,
            m.base,
            m.size,
            m.refs.map_or("-".to_string(), |r| r.to_string()),
            m.state.as_deref().unwrap_or("-")
        ));
    }
    if mods.is_empty() {
        out.push_str("(no modules loaded)\n");
    }
    if let Some(e) = stopped {
        out.push_str(&format!("(the list stops early: {e})\n"));
    }
    Ok(out)
}

fn row_json(m: &Module) -> Value {
    json!({
        "module": format!("{:#x}", m.addr),
        "name": m.name,
        "base": format!("{:#x}", m.base),
        "size": m.size,
        "state": m.state,
        "refs": m.refs,
        "sect_attrs": format!("{:#x}", m.sect_attrs),
    })
}
