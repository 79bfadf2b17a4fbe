//! What IDE front ends (VS Code cppdbg, CLion, Emacs gud) do: a GDB/MI
//! conversation with `gdb --interpreter=mi3` over `corestub serve --stdio`.
//! Every command carries a token and its result record is parsed; each wait
//! is bounded, so a hang fails the test instead of blocking it.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use common::{corestub_bin, fixture};

/// An MI value: a C string, a tuple `{a=..}` or a list `[..]` (of values or
/// of `name=value` results; names are kept in both).
#[derive(Debug, Clone)]
enum Mi {
    Str(String),
    Tuple(Vec<(String, Mi)>),
    List(Vec<(String, Mi)>),
}

impl Mi {
    fn get(&self, key: &str) -> Option<&Mi> {
        match self {
            Mi::Tuple(v) | Mi::List(v) => v.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            Mi::Str(_) => None,
        }
    }
    fn str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Mi::Str(s) => Some(s),
            _ => None,
        }
    }
    fn items(&self) -> Vec<&Mi> {
        match self {
            Mi::Tuple(v) | Mi::List(v) => v.iter().map(|(_, v)| v).collect(),
            Mi::Str(_) => vec![],
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn cstring(&mut self) -> String {
        assert!(self.eat(b'"'), "expected a string at {}", self.i);
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = self.peek().unwrap();
                    self.i += 1;
                    out.push(match e {
                        b'n' => b'\n',
                        b't' => b'\t',
                        other => other,
                    });
                }
                c => out.push(c),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    fn name(&mut self) -> String {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c == b'=' || c == b',' || c == b'}' || c == b']' {
                break;
            }
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
    fn value(&mut self) -> Mi {
        match self.peek() {
            Some(b'"') => Mi::Str(self.cstring()),
            Some(b'{') => {
                self.i += 1;
                Mi::Tuple(self.results(b'}'))
            }
            Some(b'[') => {
                self.i += 1;
                Mi::List(self.results(b']'))
            }
            other => panic!("bad MI value {other:?} at {}", self.i),
        }
    }
    /// `a=v,b=v` or `v,v` up to `end`.
    fn results(&mut self, end: u8) -> Vec<(String, Mi)> {
        let mut v = Vec::new();
        if self.eat(end) {
            return v;
        }
        loop {
            let name = if matches!(self.peek(), Some(b'"' | b'{' | b'[')) {
                String::new()
            } else {
                let n = self.name();
                assert!(self.eat(b'='), "expected = after {n}");
                n
            };
            v.push((name, self.value()));
            if self.eat(end) {
                return v;
            }
            assert!(self.eat(b','), "expected , at {}", self.i);
        }
    }
}

/// `TOKEN^class,results` → (class, results as a tuple).
fn parse_result(line: &str) -> (String, Mi) {
    let rest = &line[line.find('^').unwrap() + 1..];
    let (class, body) = rest.split_once(',').unwrap_or((rest, ""));
    // the results are a tuple without its braces
    let wrapped = format!("{body}}}");
    let mut p = Parser {
        s: wrapped.as_bytes(),
        i: 0,
    };
    (class.to_string(), Mi::Tuple(p.results(b'}')))
}

struct Gdb {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    token: u32,
    transcript: String,
}

impl Gdb {
    /// Sends `cmd` and waits (bounded) for its result record.
    fn cmd(&mut self, cmd: &str, limit: Duration) -> (String, Mi) {
        self.token += 1;
        let t = self.token;
        writeln!(self.stdin, "{t}{cmd}").unwrap();
        self.stdin.flush().unwrap();
        self.transcript.push_str(&format!("<- {t}{cmd}\n"));
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.transcript.push_str(&format!("-> {line}\n"));
                    if line.starts_with(&format!("{t}^")) {
                        return parse_result(&line);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!(
                        "no answer to {cmd:?} within {limit:?} (a hang):\n{}",
                        self.transcript
                    );
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("gdb exited during {cmd:?}:\n{}", self.transcript)
                }
            }
        }
    }
}

impl Drop for Gdb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_gdb() -> Gdb {
    let mut child = Command::new("gdb")
        .args(["--interpreter=mi3", "-nx", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run gdb");
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Gdb {
        child,
        stdin,
        lines: rx,
        token: 0,
        transcript: String::new(),
    }
}

#[test]
fn mi_conversation_on_kdump() {
    let test = "mi_conversation_on_kdump";
    let (Some(dump), Some(vmlinux)) = (
        fixture("x86_64-6.1", "kdump-zlib-d31.kdump", test),
        fixture("x86_64-6.1", "vmlinux", test),
    ) else {
        return;
    };
    let truth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(corestub::fixtures::root().join("x86_64-6.1/truth.json")).unwrap(),
    )
    .unwrap();
    let boot = &truth["boots"]["kdump"];
    let panic_cpu = boot["panic_cpu"].as_u64().unwrap() as usize;
    let kaslr = boot["kernel_offset"].as_str().unwrap().to_string();

    let short = Duration::from_secs(120);
    let long = Duration::from_secs(300); // symbol loading, first DWARF reads
    let mut gdb = spawn_gdb();
    let ok = |gdb: &Gdb, r: &(String, Mi)| {
        assert_eq!(r.0, "done", "{r:?}\n{}", gdb.transcript);
    };

    let r = gdb.cmd("-gdb-set confirm off", short);
    ok(&gdb, &r);
    // What an IDE's setupCommands do: load vmlinux at the KASLR offset.
    let r = gdb.cmd(
        &format!(
            "-interpreter-exec console \"add-symbol-file {} -o {kaslr} -s .data..percpu 0\"",
            vmlinux.display()
        ),
        long,
    );
    ok(&gdb, &r);
    let r = gdb.cmd(
        &format!(
            "-target-select remote | {} serve --stdio --vmlinux {} {}",
            corestub_bin(),
            vmlinux.display(),
            dump.display()
        ),
        long,
    );
    assert_eq!(r.0, "connected", "{}", gdb.transcript);

    // 1. threads: one per CPU, the panicking one current
    let (class, threads) = gdb.cmd("-thread-info", short);
    assert_eq!(class, "done");
    let all = threads.get("threads").unwrap().items();
    // CPU threads first (task threads follow, "pid N comm [state]")
    let list: Vec<_> = all
        .iter()
        .filter(|t| t.str("details").is_some_and(|d| d.starts_with("CPU ")))
        .collect();
    assert_eq!(list.len(), 4, "{}", gdb.transcript);
    assert!(all.len() > 4, "task threads follow the CPU threads");
    for (cpu, t) in list.iter().enumerate() {
        assert_eq!(t.str("id"), Some((cpu + 1).to_string().as_str()));
        assert!(
            t.str("details")
                .unwrap()
                .starts_with(&format!("CPU {cpu} ")),
            "{t:?}"
        );
        assert_eq!(t.str("state"), Some("stopped"));
    }
    let current = (panic_cpu + 1).to_string();
    assert_eq!(
        threads.str("current-thread-id"),
        Some(current.as_str()),
        "{}",
        gdb.transcript
    );

    // 2. frames of the panicking CPU, with file:line
    let (class, frames) = gdb.cmd(&format!("-stack-list-frames --thread {current}"), long);
    assert_eq!(class, "done", "{}", gdb.transcript);
    let frames = frames.get("stack").unwrap().items();
    let funcs: Vec<&str> = frames.iter().filter_map(|f| f.str("func")).collect();
    let mut at = 0;
    for want in ["__crash_kexec", "panic", "sysrq_handle_crash"] {
        let i = funcs[at..]
            .iter()
            .position(|f| *f == want)
            .unwrap_or_else(|| panic!("{want} missing or out of order in {funcs:?}"));
        let f = frames[at + i];
        assert!(f.str("file").is_some_and(|s| s.ends_with(".c")), "{f:?}");
        assert!(f.str("line").unwrap().parse::<u32>().unwrap() > 0);
        at += i + 1;
    }
    let panic_frame = frames
        .iter()
        .find(|f| f.str("func") == Some("panic"))
        .unwrap();
    assert_eq!(panic_frame.str("file"), Some("kernel/panic.c"));

    // locals/arguments of a frame, as the IDE's variables pane asks for them
    let level = panic_frame.str("level").unwrap().to_string();
    let (class, vars) = gdb.cmd(
        &format!("-stack-list-variables --thread {current} --frame {level} --simple-values"),
        long,
    );
    assert_eq!(class, "done", "{}", gdb.transcript);
    let vars = vars.get("variables").unwrap().items();
    assert!(
        vars.iter().any(|v| v.str("name") == Some("fmt")
            && v.str("value")
                .unwrap_or("")
                .contains("sysrq triggered crash")),
        "{vars:?}"
    );

    // 3. an expression
    let (class, v) = gdb.cmd("-data-evaluate-expression jiffies", short);
    assert_eq!(class, "done");
    assert_eq!(
        v.str("value").unwrap(),
        boot["jiffies_at_crash"].as_u64().unwrap().to_string()
    );

    // 4. memory
    let (class, m) = gdb.cmd("-data-read-memory-bytes linux_banner 64", short);
    assert_eq!(class, "done", "{}", gdb.transcript);
    let contents = m.get("memory").unwrap().items()[0].str("contents").unwrap();
    let bytes: Vec<u8> = (0..contents.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&contents[i..i + 2], 16).unwrap())
        .collect();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.starts_with(&format!(
            "Linux version {}",
            truth["kernel_release"].as_str().unwrap()
        )),
        "{text}"
    );

    // 5. a variable object and its children
    let (class, var) = gdb.cmd("-var-create - * init_task", long);
    assert_eq!(class, "done", "{}", gdb.transcript);
    assert_eq!(var.str("type"), Some("struct task_struct"));
    let name = var.str("name").unwrap().to_string();
    let (class, kids) = gdb.cmd(&format!("-var-list-children --all-values {name}"), long);
    assert_eq!(class, "done", "{}", gdb.transcript);
    let kids = kids.get("children").unwrap().items();
    let comm = kids
        .iter()
        .find(|c| c.str("exp") == Some("comm"))
        .unwrap_or_else(|| panic!("no comm child in {kids:?}"));
    // var objects show arrays as "[16]": the string comes from an expression
    assert_eq!(comm.str("type"), Some("char [16]"), "{comm:?}");
    let (class, v) = gdb.cmd("-data-evaluate-expression init_task.comm", short);
    assert_eq!(class, "done");
    assert!(v.str("value").unwrap().contains("\"swapper/0"), "{v:?}");
    let pid = kids.iter().find(|c| c.str("exp") == Some("pid")).unwrap();
    assert_eq!(pid.str("value"), Some("0"));

    // 6. unreadable memory: ^error records, never a hang, and the session
    // keeps working afterwards
    let (class, e) = gdb.cmd("-data-read-memory-bytes 0x10 8", short);
    assert_eq!(class, "error", "{}", gdb.transcript);
    assert!(e.str("msg").is_some());
    let (class, e) = gdb.cmd("-data-evaluate-expression \"*(long *)0x10\"", short);
    assert_eq!(class, "error");
    assert_eq!(e.str("msg"), Some("Cannot access memory at address 0x10"));
    // writes are refused as errors too
    let (class, _) = gdb.cmd("-data-evaluate-expression jiffies=1", short);
    assert_eq!(class, "error", "{}", gdb.transcript);
    let (class, v) = gdb.cmd("-data-evaluate-expression jiffies", short);
    assert_eq!(class, "done");
    assert_eq!(
        v.str("value").unwrap(),
        boot["jiffies_at_crash"].as_u64().unwrap().to_string()
    );

    let (class, _) = gdb.cmd("-gdb-exit", short);
    assert_eq!(class, "exit");
}
