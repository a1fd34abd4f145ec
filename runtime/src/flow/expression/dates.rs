//! Date/time terms: ISO 8601 strings, read with `chrono`, or numbers of Unix seconds
//! or milliseconds, as instants in milliseconds since the epoch.

use chrono::format::{Parsed, StrftimeItems, parse};
use serde_json::Value;

use super::ExpressionError;
use super::coercion::{number_f64, string_to_number};
use super::operators::describe;

/// Numbers below this are Unix seconds, above it milliseconds (seed §6 #2): 1e11 s
/// is the year 5138, 1e11 ms is 1973.
const SECONDS_BELOW: f64 = 1e11;

/// A date/time term as milliseconds since the Unix epoch: an ISO 8601 string (`2021`,
/// `2021-03-20`, `2021-03-20T11:52:21.881Z`, `2021-03-20 11:52+02:00`; UTC when no
/// offset is given), or a number (or numeric string) of seconds or milliseconds.
pub fn to_date_ms(term: Option<&Value>) -> Result<i64, ExpressionError> {
    let invalid = || ExpressionError(format!("{} cannot be read as a date/time", describe(term)));
    let number = match term {
        Some(Value::Number(number)) => number_f64(number),
        Some(Value::String(text)) => match parse_iso_date(text.trim()) {
            Some(ms) => return Ok(ms),
            None => {
                let number = string_to_number(text);
                if text.trim().is_empty() || number.is_nan() {
                    return Err(invalid());
                }
                number
            }
        },
        _ => return Err(invalid()),
    };
    if !number.is_finite() {
        return Err(invalid());
    }
    let ms = if number.abs() < SECONDS_BELOW {
        number * 1000.0
    } else {
        number
    };
    Ok(ms.trunc() as i64)
}

/// The forms of the date part, by how many `-` it has: the year alone, a month, a day.
const DATE_FORMATS: [&str; 3] = ["%Y", "%Y-%m", "%Y-%m-%d"];

/// The forms of the time part (after `T` or a space), tried in order: with seconds
/// (and an optional fraction) or without, each with an offset (`Z`, `+02`, `+0200`,
/// `+02:00`) or without one (UTC).
const TIME_FORMATS: [&str; 4] = ["%H:%M:%S%.f%#z", "%H:%M:%S%.f", "%H:%M%#z", "%H:%M"];

/// Parses the ISO 8601 forms listed at [`to_date_ms`]; `None` for anything else.
fn parse_iso_date(text: &str) -> Option<i64> {
    // The year is exactly four digits: a longer run of digits is a number of seconds
    // or milliseconds (`"1616244630000"`), which chrono would read as a far year.
    let year_digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if year_digits != 4 {
        return None;
    }
    let (date, time) = match text.find(['T', 't', ' ']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let dashes = date.matches('-').count();
    let mut parsed = Parsed::new();
    parse(
        &mut parsed,
        date,
        StrftimeItems::new(DATE_FORMATS.get(dashes)?),
    )
    .ok()?;
    // `2021` is its first day, `2021-03` the first of March: midnight, UTC.
    if parsed.month().is_none() {
        parsed.set_month(1).ok()?;
    }
    if parsed.day().is_none() {
        parsed.set_day(1).ok()?;
    }
    match time {
        // A time of day goes with a whole date only.
        Some(time) if dashes == 2 && two_digit_fields(time) => {
            parsed = TIME_FORMATS.iter().find_map(|format| {
                let mut with_time = parsed.clone();
                parse(&mut with_time, time, StrftimeItems::new(format))
                    .ok()
                    .map(|()| with_time)
            })?;
        }
        Some(_) => return None,
        None => {
            parsed.set_hour(0).ok()?;
            parsed.set_minute(0).ok()?;
        }
    }
    // A leap second (`:60`) is not a time of day here, as it is not in JavaScript.
    if parsed.second().is_some_and(|second| second > 59) {
        return None;
    }
    if parsed.offset().is_none() {
        parsed.set_offset(0).ok()?;
    }
    parsed.to_datetime().ok().map(|at| at.timestamp_millis())
}

/// Whether a time part starts with `hh:mm` or `hh:mm:ss`, two digits each as ISO
/// 8601 writes them (chrono would also read `1:5`), and holds no white space.
fn two_digit_fields(time: &str) -> bool {
    let bytes = time.as_bytes();
    let digits = |at: usize| {
        bytes
            .get(at..at + 2)
            .is_some_and(|pair| pair.iter().all(u8::is_ascii_digit))
    };
    let after_minutes = bytes.get(5).copied();
    digits(0)
        && bytes.get(2) == Some(&b':')
        && digits(3)
        && !after_minutes.is_some_and(|byte| byte.is_ascii_digit())
        && (after_minutes != Some(b':')
            || (digits(6) && !bytes.get(8).is_some_and(u8::is_ascii_digit)))
        && !time.contains(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dates_parse() {
        let day = 86_400_000;
        assert_eq!(to_date_ms(Some(&json!("1970-01-02"))), Ok(day));
        assert_eq!(to_date_ms(Some(&json!("1970"))), Ok(0));
        assert_eq!(
            to_date_ms(Some(&json!("2021-03-20T12:50:30Z"))),
            Ok(1_616_244_630_000)
        );
        assert_eq!(
            to_date_ms(Some(&json!("2021-03-20T14:50:30.5+02:00"))),
            Ok(1_616_244_630_500)
        );
        assert_eq!(
            to_date_ms(Some(&json!(1_616_244_630))),
            Ok(1_616_244_630_000)
        );
        assert_eq!(
            to_date_ms(Some(&json!("1616244630000"))),
            Ok(1_616_244_630_000)
        );
        assert!(to_date_ms(Some(&json!("2021-02-30"))).is_err());
        assert!(to_date_ms(Some(&json!("yesterday"))).is_err());
        assert!(to_date_ms(Some(&json!(true))).is_err());
        assert!(to_date_ms(None).is_err());
    }

    #[test]
    fn every_documented_form_reads_as_the_same_instant_as_before() {
        for (text, ms) in [
            ("2021-03", 1_614_556_800_000),
            ("2021-3-5", 1_614_902_400_000),
            ("2020-02-29", 1_582_934_400_000),
            ("2021-03-20t11:52:21.881z", 1_616_241_141_881),
            ("2021-03-20 11:52+02:00", 1_616_233_920_000),
            ("2021-03-20T11:52:30-0530", 1_616_260_950_000),
            ("2021-03-20T11:52:30+02", 1_616_233_950_000),
            ("2021-03-20T11:52:30.123456789Z", 1_616_241_150_123),
        ] {
            assert_eq!(parse_iso_date(text), Some(ms), "{text}");
        }
        for text in [
            "2021-13",
            "2021-02-29",
            "2021-03T10:00",
            "2021-03-20T24:00",
            "2021-03-20T23:59:60Z",
            "2021-03-20T1:52",
            "2021-03-20T11:52:3",
            "2021-03-20T11:52:30+24:00",
            "20210",
            "1616244630000",
        ] {
            assert_eq!(parse_iso_date(text), None, "{text}");
        }
    }
}
