//! Formatting helpers shared by the monitor commands (crash's conventions).

/// Centres `s` in `width` columns (extra space goes right, as crash does).
pub(crate) fn center(s: &str, width: usize) -> String {
    let pad = width.saturating_sub(s.len());
    format!("{}{}{}", " ".repeat(pad / 2), s, " ".repeat(pad - pad / 2))
}

/// Civil date (year, month 1..=12, day 1..=31) of a day count since 1970-01-01.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Seconds since the epoch as crash's DATE: "Sat Nov 21 22:45:55 UTC 2026".
pub fn crash_date(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil(days);
    format!(
        "{} {} {d:2} {:02}:{:02}:{:02} UTC {y}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A duration as crash's UPTIME: "00:00:22", "3 days, 04:05:06".
pub(crate) fn uptime(secs: u64) -> String {
    let (d, rem) = (secs / 86400, secs % 86400);
    let hms = format!("{:02}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60);
    match d {
        0 => hms,
        1 => format!("1 day, {hms}"),
        _ => format!("{d} days, {hms}"),
    }
}

/// A byte count as crash's MEMORY: "511.5 MB", "15.6 GB".
pub(crate) fn mem_size(bytes: u64) -> String {
    const MB: f64 = 1024.0 * 1024.0;
    let mb = bytes as f64 / MB;
    if mb >= 1024.0 {
        format!("{:.1} GB", mb / 1024.0)
    } else if mb >= 1.0 {
        format!("{mb:.1} MB")
    } else {
        format!("{:.1} KB", bytes as f64 / 1024.0)
    }
}

/// A page or block size as crash's vtop suffix: "2MB", "1GB", "64KB".
pub(crate) fn page_size(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{}GB", bytes >> 30)
    } else if bytes >= 1 << 20 {
        format!("{}MB", bytes >> 20)
    } else {
        format!("{}KB", bytes >> 10)
    }
}

/// Printable ASCII of `b`, '.' for the rest.
pub(crate) fn ascii(b: &[u8]) -> String {
    b.iter()
        .map(|&c| {
            if (0x20..0x7f).contains(&c) {
                c as char
            } else {
                '.'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_sizes_like_crash() {
        assert_eq!(crash_date(1_795_301_155), "Sat Nov 21 22:45:55 UTC 2026");
        assert_eq!(crash_date(0), "Thu Jan  1 00:00:00 UTC 1970");
        assert_eq!(uptime(22), "00:00:22");
        assert_eq!(uptime(86400 + 3661), "1 day, 01:01:01");
        assert_eq!(mem_size(130_939 * 4096), "511.5 MB");
        assert_eq!(page_size(2 << 20), "2MB");
        assert_eq!(center("PTE", 16), "      PTE       ");
        assert_eq!(center("PTE", 7), "  PTE  ");
        assert_eq!(ascii(b"a\0~\x7f"), "a.~.");
    }
}
