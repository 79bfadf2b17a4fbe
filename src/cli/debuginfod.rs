//! Fetching a debug file by build-id from debuginfod servers.
//!
//! The protocol is elfutils' (`GET URL/buildid/ID/debuginfo`), the servers
//! come from `$DEBUGINFOD_URLS` (space-separated) and the cache is the one
//! GDB and elfutils share: `$DEBUGINFOD_CACHE_PATH`, else
//! `$XDG_CACHE_HOME/debuginfod_client`, else `~/.cache/debuginfod_client`,
//! holding `ID/debuginfo`. That name only ever holds a complete file: a
//! download goes to `ID/.debuginfo.corestub-part` first (kept when a
//! transfer breaks, so the next run resumes it with an HTTP range request)
//! and is renamed once its build-id has been checked.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A build-id as debuginfod names it: lowercase hex, at least 2 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildId(String);

impl BuildId {
    /// Accepts only hex of even length (VMCOREINFO's `BUILD-ID` is dump
    /// data: anything else is refused, never sliced).
    pub fn parse(text: &str) -> Option<BuildId> {
        let t = text.trim();
        let hex =
            t.len() >= 4 && t.len().is_multiple_of(2) && t.bytes().all(|b| b.is_ascii_hexdigit());
        hex.then(|| BuildId(t.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Servers named by `$DEBUGINFOD_URLS`, without trailing slashes.
pub fn server_urls() -> Vec<String> {
    std::env::var("DEBUGINFOD_URLS")
        .unwrap_or_default()
        .split_whitespace()
        .map(|u| u.trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty())
        .collect()
}

/// The client cache directory shared with GDB and elfutils.
pub fn cache_dir() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(p) = env("DEBUGINFOD_CACHE_PATH") {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = env("XDG_CACHE_HOME") {
        return Some(PathBuf::from(p).join("debuginfod_client"));
    }
    env("HOME").map(|h| PathBuf::from(h).join(".cache/debuginfod_client"))
}

/// The cached debug file for `id`, if a complete one is there.
pub fn cached(id: &BuildId) -> Option<PathBuf> {
    let p = cache_dir()?.join(id.as_str()).join("debuginfo");
    p.is_file().then_some(p)
}

/// Why no debug file came from debuginfod.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("DEBUGINFOD_URLS is not set")]
    NoServers,
    #[error("no debuginfod cache directory (set DEBUGINFOD_CACHE_PATH or HOME)")]
    NoCache,
    #[error("{url}: {reason}")]
    Server { url: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Fetches `ID/debuginfo` from the first server that has it, into the
/// cache, and returns its path. `check` validates the finished download
/// (its build-id) before it takes the cache's name. Every server's answer
/// is kept for the error when none has it.
pub fn fetch(
    id: &BuildId,
    check: &dyn Fn(&Path) -> Result<(), String>,
) -> Result<PathBuf, FetchError> {
    let urls = server_urls();
    if urls.is_empty() {
        return Err(FetchError::NoServers);
    }
    let dir = cache_dir().ok_or(FetchError::NoCache)?.join(id.as_str());
    std::fs::create_dir_all(&dir).map_err(|source| FetchError::Io {
        path: dir.clone(),
        source,
    })?;
    let done = dir.join("debuginfo");
    let part = dir.join(".debuginfo.corestub-part");
    let mut reasons = Vec::new();
    for base in &urls {
        let url = format!("{base}/buildid/{}/debuginfo", id.as_str());
        match download(&url, &part).and_then(|()| check(&part)) {
            Ok(()) => {
                std::fs::rename(&part, &done).map_err(|source| FetchError::Io {
                    path: done.clone(),
                    source,
                })?;
                return Ok(done);
            }
            Err(reason) => {
                log::info!("debuginfod {url}: {reason}");
                reasons.push(format!("{url}: {reason}"));
            }
        }
    }
    Err(FetchError::Server {
        url: urls.join(" "),
        reason: reasons.join("; "),
    })
}

/// Downloads `url` into `part`, resuming from its current length when the
/// server honours the range. A 404 or a refused range leaves no bytes of
/// another file behind.
fn download(url: &str, part: &Path) -> Result<(), String> {
    let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_recv_body(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.get(url);
    if have > 0 {
        req = req.header("Range", format!("bytes={have}-"));
    }
    let resp = req.call().map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let (file, start) = match status {
        206 => (open_part(part, true)?, have),
        200 => (open_part(part, false)?, 0),
        404 => {
            let _ = std::fs::remove_file(part);
            return Err("the server does not have this build-id (404)".into());
        }
        // a range past the end: what is there is the whole file
        416 if have > 0 => return Ok(()),
        s => return Err(format!("HTTP status {s}")),
    };
    let total = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(|n| n.saturating_add(start));
    copy_with_progress(resp.into_body().into_reader(), file, start, total, url)
}

fn open_part(part: &Path, append: bool) -> Result<File, String> {
    let mut o = OpenOptions::new();
    o.create(true);
    if append {
        o.append(true);
    } else {
        o.write(true).truncate(true);
    }
    o.open(part).map_err(|e| format!("{}: {e}", part.display()))
}

/// Copies the body to the file, showing a progress bar on a terminal.
fn copy_with_progress(
    mut body: impl Read,
    mut file: File,
    start: u64,
    total: Option<u64>,
    url: &str,
) -> Result<(), String> {
    let bar = match total {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::no_length(),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "debuginfod {bytes}/{total_bytes} {wide_bar} {bytes_per_sec} {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_position(start);
    log::info!("fetching {url}");
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = body
            .read(&mut buf)
            .map_err(|e| format!("transfer broke: {e}"))?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n]).map_err(|e| e.to_string())?;
        bar.inc(n as u64);
    }
    file.sync_all().map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    let got = file.metadata().map(|m| m.len()).unwrap_or(0);
    match total {
        Some(t) if got != t => Err(format!("short transfer: {got} of {t} bytes")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_ids_must_be_hex() {
        assert_eq!(
            BuildId::parse("ABCDef0123").map(|b| b.0),
            Some("abcdef0123".into())
        );
        assert!(BuildId::parse("ab").is_none(), "too short");
        assert!(BuildId::parse("abc").is_none(), "odd length");
        assert!(BuildId::parse("é0a1b2").is_none(), "non-ASCII");
        assert!(BuildId::parse("zz00").is_none());
        assert!(BuildId::parse("../etc").is_none(), "never a path");
    }
}
