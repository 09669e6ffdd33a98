//! The part of Java's `DateTimeFormatter` pattern language that `!{timestamp:…}` accepts.
//!
//! Firehose documents the value of a `timestamp` expression as "a valid Java `DateTimeFormatter`
//! string", so this follows `DateTimeFormatterBuilder.appendPattern` (JDK 8–21) rule by rule, for a
//! subset of its letters, and formats in UTC with English names:
//!
//! - An ASCII letter (`A`–`Z`, `a`–`z`) outside quotes is a pattern letter; a run of the same letter is
//!   one field, its length the "count". Any other character is copied, except the five below.
//! - `'…'` is literal text, `''` a single quote (inside or outside quoted text). A quote left open is an
//!   error, as in Java ("Pattern ends with an incomplete string literal").
//! - `[` and `]` open and close an optional section. Every field weir supports is always present in a
//!   UTC date-time, so a section always prints and the brackets print nothing; a `]` with no `[` is an
//!   error, an unclosed `[` is not (both as in Java).
//! - `#`, `{` and `}` are reserved by Java and refused.
//!
//! Supported letters, with the counts Java allows for them:
//!
//! | letter | field | 1 | 2 | 3 | 4+ |
//! |---|---|---|---|---|---|
//! | `y` | year of era | `2018` | `18` | `2018` | zero-padded to the count, `+` when longer (≤ 19) |
//! | `u` | proleptic year | as `y`, but negative before year 1 | | | |
//! | `M` | month | `8` | `08` | `Aug` | `August` (4), `A` (5) |
//! | `d` | day of month | `7` | `07` | | |
//! | `D` | day of year | `5` | `05`, `238` | `005` | |
//! | `H` / `k` | hour 0–23 / 1–24 | `9` | `09` | | |
//! | `h` / `K` | hour of AM/PM 1–12 / 0–11 | `9` | `09` | | |
//! | `m`, `s` | minute, second | `5` | `05` | | |
//! | `S` | fraction of second, truncated | `5` | `50` | `500` | up to 9 digits |
//! | `a` | `AM` / `PM` | `AM` | | | |
//! | `E` | day of week | `Mon` | `Mon` | `Mon` | `Monday` (4), `M` (5) |
//!
//! These cover every pattern in AWS's Firehose documentation and the date layouts people partition by.
//! The other letters Java knows are refused with a reason rather than guessed at: the week-based ones
//! (`Y`, `w`, `W`, `e`, `c`, `F`) depend on the JVM locale's week definition, which Firehose does not
//! document (and `YYYY` is usually a slip for `yyyy`: they differ in the last days of December); the
//! zone ones (`V`, `v`, `z`, `O`, `X`, `x`, `Z`) depend on how Firehose represents UTC, also
//! undocumented; the rest (`G`, `Q`, `q`, `L`, `A`, `n`, `N`, `B`, `g`, `p`) are not implemented. A
//! letter Java does not know is refused as Java refuses it.

use chrono::{DateTime, Datelike, Timelike, Utc};
use thiserror::Error;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Why a `timestamp` pattern is refused. Offsets are 0-based character offsets into the pattern.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatternError {
    /// `!{timestamp:}`: Java accepts an empty pattern, but it would print nothing.
    #[error("the pattern is empty")]
    Empty,
    /// A `'` that opens quoted text which is never closed.
    #[error("the quote at offset {offset} is never closed (write '' for a literal quote)")]
    UnterminatedQuote {
        /// Where the quote is.
        offset: usize,
    },
    /// A letter that is not a pattern letter in Java either.
    #[error("`{letter}` at offset {offset} is not a pattern letter; quote literal text, as in 'T'")]
    UnknownLetter {
        /// The letter.
        letter: char,
        /// Where its run starts.
        offset: usize,
    },
    /// A letter Java knows that weir does not implement.
    #[error("pattern letter `{letter}` at offset {offset} is not supported: {why}")]
    UnsupportedLetter {
        /// The letter.
        letter: char,
        /// Where its run starts.
        offset: usize,
        /// Why weir refuses it.
        why: &'static str,
    },
    /// A run longer than Java allows for its letter (`ddd`, `aa`, `MMMMMM`, …).
    #[error("{count} × `{letter}` at offset {offset} is too many pattern letters")]
    TooManyLetters {
        /// The letter.
        letter: char,
        /// How many in the run.
        count: usize,
        /// Where the run starts.
        offset: usize,
    },
    /// `#`, `{` or `}`, which Java reserves.
    #[error("`{character}` at offset {offset} is reserved in Java's DateTimeFormatter; quote it")]
    ReservedCharacter {
        /// The character.
        character: char,
        /// Where it is.
        offset: usize,
    },
    /// A `]` that closes no `[`.
    #[error("`]` at offset {offset} closes no optional section `[`")]
    UnmatchedOptionalEnd {
        /// Where it is.
        offset: usize,
    },
}

/// A parsed pattern: literal text and fields, ready to format any instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pattern {
    /// The pattern as written, to show the template back.
    source: String,
    items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Literal(String),
    /// A supported letter and a count [`check_letter`] accepted.
    Field {
        letter: char,
        count: usize,
    },
}

impl Pattern {
    pub(super) fn parse(source: &str) -> Result<Pattern, PatternError> {
        let chars: Vec<char> = source.chars().collect();
        if chars.is_empty() {
            return Err(PatternError::Empty);
        }
        let mut items = Vec::new();
        let mut literal = String::new();
        let mut open_sections = 0usize;
        let mut pos = 0;
        while pos < chars.len() {
            let c = chars[pos];
            if c.is_ascii_alphabetic() {
                let start = pos;
                while pos < chars.len() && chars[pos] == c {
                    pos += 1;
                }
                let count = pos - start;
                check_letter(c, count, start)?;
                if !literal.is_empty() {
                    items.push(Item::Literal(std::mem::take(&mut literal)));
                }
                items.push(Item::Field { letter: c, count });
                continue;
            }
            match c {
                '\'' => {
                    let start = pos;
                    pos += 1;
                    let mut text = String::new();
                    loop {
                        match chars.get(pos) {
                            None => return Err(PatternError::UnterminatedQuote { offset: start }),
                            Some('\'') if chars.get(pos + 1) == Some(&'\'') => {
                                text.push('\'');
                                pos += 2;
                            }
                            Some('\'') => break,
                            Some(&other) => {
                                text.push(other);
                                pos += 1;
                            }
                        }
                    }
                    // `''` with nothing between is Java's way to write one quote.
                    if text.is_empty() {
                        literal.push('\'');
                    } else {
                        literal.push_str(&text);
                    }
                }
                '[' => open_sections += 1,
                ']' => {
                    if open_sections == 0 {
                        return Err(PatternError::UnmatchedOptionalEnd { offset: pos });
                    }
                    open_sections -= 1;
                }
                '#' | '{' | '}' => {
                    return Err(PatternError::ReservedCharacter {
                        character: c,
                        offset: pos,
                    });
                }
                other => literal.push(other),
            }
            pos += 1;
        }
        if !literal.is_empty() {
            items.push(Item::Literal(literal));
        }
        Ok(Pattern {
            source: source.to_owned(),
            items,
        })
    }

    pub(super) fn source(&self) -> &str {
        &self.source
    }

    /// Appends `time` formatted by this pattern to `out`.
    pub(super) fn format(&self, time: &DateTime<Utc>, out: &mut String) {
        for item in &self.items {
            match item {
                Item::Literal(text) => out.push_str(text),
                Item::Field { letter, count } => format_field(*letter, *count, time, out),
            }
        }
    }
}

/// Java's count rules for the letters weir supports, and the reasons for the ones it refuses.
fn check_letter(letter: char, count: usize, offset: usize) -> Result<(), PatternError> {
    let max = match letter {
        // Java's appendValue takes a minimum width of at most 19.
        'y' | 'u' => 19,
        'M' | 'E' => 5,
        'd' | 'H' | 'h' | 'k' | 'K' | 'm' | 's' => 2,
        'D' => 3,
        'S' => 9,
        'a' => 1,
        'Y' => {
            return Err(unsupported(
                letter,
                offset,
                "`Y` is the week-based year, whose weeks depend on the JVM locale Firehose runs with; \
                 for the calendar year write `y`",
            ));
        }
        'w' | 'W' | 'e' | 'c' | 'F' => {
            return Err(unsupported(
                letter,
                offset,
                "week fields depend on the JVM locale's week definition, which Firehose does not document",
            ));
        }
        'V' | 'v' | 'z' | 'O' | 'X' | 'x' | 'Z' => {
            return Err(unsupported(
                letter,
                offset,
                "zone fields depend on how Firehose names UTC, which it does not document",
            ));
        }
        'G' | 'Q' | 'q' | 'L' | 'A' | 'n' | 'N' | 'B' | 'g' | 'p' => {
            return Err(unsupported(
                letter,
                offset,
                "weir implements only the letters in its documentation",
            ));
        }
        _ => return Err(PatternError::UnknownLetter { letter, offset }),
    };
    if count > max {
        return Err(PatternError::TooManyLetters { letter, count, offset });
    }
    Ok(())
}

fn unsupported(letter: char, offset: usize, why: &'static str) -> PatternError {
    PatternError::UnsupportedLetter { letter, offset, why }
}

fn format_field(letter: char, count: usize, time: &DateTime<Utc>, out: &mut String) {
    let hour = time.hour();
    match letter {
        'y' => {
            // Year of era: 1 BC is 1, so it is never negative.
            let year = i64::from(time.year());
            format_year(if year >= 1 { year } else { 1 - year }, count, out);
        }
        'u' => format_year(i64::from(time.year()), count, out),
        'M' => {
            let name = MONTHS[time.month0() as usize];
            match count {
                1 | 2 => format_number(time.month(), count, out),
                3 => out.push_str(&name[..3]),
                4 => out.push_str(name),
                _ => out.push_str(&name[..1]),
            }
        }
        'd' => format_number(time.day(), count, out),
        // `DD` is Java's appendValue(field, 2, 3, NOT_NEGATIVE): at least two digits.
        'D' => format_number(time.ordinal(), count, out),
        'H' => format_number(hour, count, out),
        'k' => format_number(if hour == 0 { 24 } else { hour }, count, out),
        'K' => format_number(hour % 12, count, out),
        'h' => format_number(if hour.is_multiple_of(12) { 12 } else { hour % 12 }, count, out),
        'm' => format_number(time.minute(), count, out),
        's' => format_number(time.second(), count, out),
        'S' => {
            // Java's appendFraction(NANO_OF_SECOND, n, n, false): exactly n digits, truncated.
            let nanos = format!("{:09}", time.nanosecond().min(999_999_999));
            out.push_str(&nanos[..count]);
        }
        'a' => out.push_str(if hour < 12 { "AM" } else { "PM" }),
        'E' => {
            let name = WEEKDAYS[time.weekday().num_days_from_monday() as usize];
            match count {
                1..=3 => out.push_str(&name[..3]),
                4 => out.push_str(name),
                _ => out.push_str(&name[..1]),
            }
        }
        // `check_letter` admits no other letter into a pattern.
        _ => {}
    }
}

/// A non-negative number, zero-padded to `width`.
fn format_number(value: u32, width: usize, out: &mut String) {
    out.push_str(&format!("{value:0width$}"));
}

/// Java's year printing: `yy` keeps the last two digits (appendValueReduced, base 2000); `y` and `yyy`
/// pad to the count with the sign only when negative (SignStyle.NORMAL); four or more pad to the count
/// and add `+` when the year has more digits than the count (SignStyle.EXCEEDS_PAD).
fn format_year(year: i64, count: usize, out: &mut String) {
    let digits = year.unsigned_abs().to_string();
    if count == 2 {
        out.push_str(&format!("{:02}", year.unsigned_abs() % 100));
        return;
    }
    if year < 0 {
        out.push('-');
    } else if count >= 4 && digits.len() > count {
        out.push('+');
    }
    for _ in digits.len()..count {
        out.push('0');
    }
    out.push_str(&digits);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, ms: u32) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|date| date.and_hms_milli_opt(h, mi, s, ms))
            .expect("a valid test date")
            .and_utc()
    }

    fn fmt(pattern: &str, time: DateTime<Utc>) -> String {
        let pattern = Pattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern:?} refused: {e}"));
        let mut out = String::new();
        pattern.format(&time, &mut out);
        out
    }

    fn err(pattern: &str) -> PatternError {
        match Pattern::parse(pattern) {
            Ok(parsed) => panic!("{pattern:?} accepted as {parsed:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn numeric_fields_pad_to_their_count() {
        let t = at(2018, 8, 7, 9, 5, 3, 0);
        assert_eq!(fmt("yyyy/MM/dd/HH/", t), "2018/08/07/09/");
        assert_eq!(fmt("y-M-d-H-m-s", t), "2018-8-7-9-5-3");
        assert_eq!(fmt("yy", t), "18");
        assert_eq!(fmt("yyy", t), "2018");
        assert_eq!(fmt("yyyyy", t), "02018");
        assert_eq!(fmt("uuuu-MM-dd'T'HH:mm:ss", t), "2018-08-07T09:05:03");
    }

    #[test]
    fn day_of_year_follows_java_widths() {
        let early = at(2018, 1, 5, 0, 0, 0, 0);
        let late = at(2018, 8, 26, 0, 0, 0, 0);
        assert_eq!(fmt("D|DD|DDD", early), "5|05|005");
        assert_eq!(fmt("D|DD|DDD", late), "238|238|238");
    }

    #[test]
    fn twelve_and_twenty_four_hour_clocks() {
        let midnight = at(2018, 8, 27, 0, 30, 0, 0);
        let noon = at(2018, 8, 27, 12, 30, 0, 0);
        let evening = at(2018, 8, 27, 17, 26, 0, 0);
        assert_eq!(fmt("H k K h a", midnight), "0 24 0 12 AM");
        assert_eq!(fmt("HH kk KK hh a", noon), "12 12 00 12 PM");
        assert_eq!(fmt("hh:mm a", evening), "05:26 PM");
    }

    #[test]
    fn names_are_english() {
        let t = at(2018, 8, 27, 10, 30, 0, 0); // a Monday
        assert_eq!(fmt("MMM MMMM MMMMM", t), "Aug August A");
        assert_eq!(fmt("E EE EEE EEEE EEEEE", t), "Mon Mon Mon Monday M");
        assert_eq!(fmt("EEEE", at(2018, 9, 2, 0, 0, 0, 0)), "Sunday");
        assert_eq!(fmt("MMMM", at(2018, 5, 2, 0, 0, 0, 0)), "May");
    }

    #[test]
    fn fractions_are_truncated_to_the_count() {
        let t = at(2018, 8, 27, 10, 30, 15, 987);
        assert_eq!(fmt("ss.S", t), "15.9");
        assert_eq!(fmt("ss.SSS", t), "15.987");
        assert_eq!(fmt("SSSSSSSSS", t), "987000000");
    }

    #[test]
    fn quotes_optional_sections_and_other_characters() {
        let t = at(2018, 8, 27, 10, 30, 0, 0);
        assert_eq!(
            fmt("'year='yyyy'/month='MM'/day='dd'/hour='HH", t),
            "year=2018/month=08/day=27/hour=10"
        );
        assert_eq!(fmt("''yyyy''", t), "'2018'");
        assert_eq!(fmt("'it''s' yyyy", t), "it's 2018");
        assert_eq!(fmt("'''quoted'''", t), "'quoted'");
        assert_eq!(fmt("yyyy[-MM[-dd]]", t), "2018-08-27");
        assert_eq!(fmt("yyyy[-MM", t), "2018-08");
        assert_eq!(fmt("yyyy_MM=é/ü", t), "2018_08=é/ü");
    }

    #[test]
    fn years_outside_four_digits_follow_java_sign_styles() {
        let far = at(12345, 1, 1, 0, 0, 0, 0);
        assert_eq!(fmt("yyyy", far), "+12345");
        assert_eq!(fmt("y", far), "12345");
        assert_eq!(fmt("yy", far), "45");
        let bc = at(-5, 1, 1, 0, 0, 0, 0); // proleptic -5 is 6 BC
        assert_eq!(fmt("u", bc), "-5");
        assert_eq!(fmt("uuuu", bc), "-0005");
        assert_eq!(fmt("yyyy", bc), "0006");
    }

    #[test]
    fn refusals_name_the_letter_and_offset() {
        assert_eq!(err(""), PatternError::Empty);
        assert_eq!(err("yyyy'/month"), PatternError::UnterminatedQuote { offset: 4 });
        // AWS's own documentation once had this typo (awsdocs/amazon-kinesis-data-firehose-developer-guide#8).
        assert_eq!(
            err("'year='yyyy'/month='MM'/day='dd'/hour='HH'"),
            PatternError::UnterminatedQuote { offset: 41 }
        );
        assert_eq!(err("yyyy-tt"), PatternError::UnknownLetter { letter: 't', offset: 5 });
        assert!(matches!(
            err("YYYY/MM"),
            PatternError::UnsupportedLetter {
                letter: 'Y',
                offset: 0,
                ..
            }
        ));
        assert!(matches!(
            err("HH:mmZ"),
            PatternError::UnsupportedLetter {
                letter: 'Z',
                offset: 5,
                ..
            }
        ));
        assert!(matches!(
            err("yyyy-QQ"),
            PatternError::UnsupportedLetter {
                letter: 'Q',
                offset: 5,
                ..
            }
        ));
        assert_eq!(
            err("dd/ddd"),
            PatternError::TooManyLetters {
                letter: 'd',
                count: 3,
                offset: 3
            }
        );
        assert_eq!(
            err("aa"),
            PatternError::TooManyLetters {
                letter: 'a',
                count: 2,
                offset: 0
            }
        );
        assert_eq!(
            err("MMMMMM"),
            PatternError::TooManyLetters {
                letter: 'M',
                count: 6,
                offset: 0
            }
        );
        assert_eq!(
            err("yyyy#"),
            PatternError::ReservedCharacter {
                character: '#',
                offset: 4
            }
        );
        assert_eq!(err("yyyy]"), PatternError::UnmatchedOptionalEnd { offset: 4 });
    }

    #[test]
    fn every_ascii_letter_is_either_formatted_or_refused() {
        let t = at(2018, 8, 27, 10, 30, 0, 0);
        for letter in ('A'..='Z').chain('a'..='z') {
            match Pattern::parse(&letter.to_string()) {
                Ok(pattern) => {
                    let mut out = String::new();
                    pattern.format(&t, &mut out);
                    assert!(!out.is_empty(), "{letter} formatted to nothing");
                    assert!(!out.contains(letter), "{letter} passed through as {out:?}");
                }
                Err(PatternError::UnknownLetter { .. } | PatternError::UnsupportedLetter { .. }) => {}
                Err(other) => panic!("{letter}: unexpected {other:?}"),
            }
        }
    }
}
