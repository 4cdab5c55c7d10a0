//! Durations as recipes write them ("500ms", "30s", "2m", "1h", or a number of seconds): parsed,
//! bounded and formatted in one place for options, reports and the command line.

use std::time::Duration;

use rhai::Dynamic;

/// The longest duration Galley accepts anywhere (a sleep, a timeout, a persist time): one
/// year. Longer ones are refused with a report rather than overflowing a clock.
pub const MAX_DURATION: Duration = Duration::from_hours(8760);

/// What a duration option must be, for reports.
pub const DURATION_EXPECTED: &str =
    "a duration such as \"500ms\", \"30s\", \"2m\" or \"1h\" (at most 365 days)";

/// `seconds` as a duration, if it is a number from 0 to `MAX_DURATION`.
fn seconds(seconds: f64) -> Option<Duration> {
    (seconds.is_finite() && (0.0..=MAX_DURATION.as_secs_f64()).contains(&seconds))
        .then(|| Duration::from_secs_f64(seconds))
}

/// A duration from a string such as "250ms", "30s", "2m", "1h", or a number of seconds.
pub fn to_duration(v: &Dynamic) -> Option<Duration> {
    if let Ok(n) = v.as_int() {
        return u64::try_from(n)
            .ok()
            .map(Duration::from_secs)
            .filter(|d| *d <= MAX_DURATION);
    }
    if let Ok(f) = v.as_float() {
        return seconds(f);
    }
    parse_duration(&v.clone().into_string().ok()?)
}

/// Parses "250ms", "30s", "1.5s", "2m", "1h".
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    self::seconds(seconds)
}

/// Formats a duration the way recipes write them.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_mins(2)));
        assert_eq!(parse_duration("ten"), None);
        assert_eq!(parse_duration("10"), None);
        assert_eq!(format_duration(Duration::from_mins(2)), "2m");
        assert_eq!(format_duration(Duration::from_millis(300)), "300ms");
    }

    #[test]
    fn refuses_durations_past_a_year() {
        assert_eq!(parse_duration("999999999999999999999s"), None);
        assert_eq!(parse_duration("8761h"), None);
        assert_eq!(parse_duration("8760h"), Some(MAX_DURATION));
        assert_eq!(to_duration(&Dynamic::from(1e30_f64)), None);
        assert_eq!(to_duration(&Dynamic::from(f64::NAN)), None);
        assert_eq!(to_duration(&Dynamic::from(i64::MAX)), None);
        assert_eq!(to_duration(&Dynamic::from(-1_i64)), None);
    }
}
