//! Human durations in configuration: "250ms", "2s", "5m", "1h", "7d".

use std::time::Duration;

pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(|| format!("duration '{text}' has no unit (use ms, s, m, h or d)"))?;
    let (number, unit) = text.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("duration '{text}' does not start with a number"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        other => {
            return Err(format!(
                "unknown duration unit '{other}' (use ms, s, m, h or d)"
            ));
        }
    };
    // `from_secs_f64` panics past u64 seconds; "99999999999999999999d" is a typo, not a panic.
    Duration::try_from_secs_f64(secs).map_err(|_| format!("duration '{text}' is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse("7d").unwrap(), Duration::from_secs(7 * 86400));
        assert!(parse("5").is_err());
        assert!(parse("5y").is_err());
        assert!(parse("99999999999999999999d").is_err());
    }
}
