//! How an office's export writes its text: the byte-order mark, the delimiter, the decimal
//! mark, and a cell's text read as a number, a code or a string.

use serde_json::Value;

use crate::blueprint::settings::DecimalMark;

/// The delimiters a header line is sniffed for, in the order that breaks ties.
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// `bytes` without a leading UTF-8 byte-order mark (Excel writes one in "CSV UTF-8").
pub fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// The delimiter of a CSV text: the most frequent of `,` `;` tab `|` outside quotes in its
/// first line; `,` when the line has none (a single column).
pub fn sniff_delimiter(text: &[u8]) -> u8 {
    let mut counts = [0usize; DELIMITERS.len()];
    let mut quoted = false;
    for &b in text {
        match b {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            _ if !quoted => {
                if let Some(i) = DELIMITERS.iter().position(|&d| d == b)
                    && let Some(n) = counts.get_mut(i)
                {
                    *n += 1;
                }
            }
            _ => {}
        }
    }
    let mut best = (b',', 0);
    for (&d, &n) in DELIMITERS.iter().zip(&counts) {
        if n > best.1 {
            best = (d, n);
        }
    }
    best.0
}

/// The decimal mark of one column from its cells: a comma when some cell is a number
/// written with one (`12,5`, `1.234,5`) and none with a decimal point (`12.5`); a point
/// otherwise. `1.234` alone says nothing: it reads either way.
pub fn column_mark<'a>(cells: impl Iterator<Item = &'a str>) -> DecimalMark {
    let mut comma = false;
    for cell in cells {
        let t = cell.trim();
        if t.contains(',') {
            comma |= comma_number(t).is_some();
        } else if point_fraction(t) && comma_number(t).is_none() {
            return DecimalMark::Point;
        }
    }
    if comma {
        DecimalMark::Comma
    } else {
        DecimalMark::Point
    }
}

/// `12.5`, `-0.25`: digits, one point, digits.
fn point_fraction(t: &str) -> bool {
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    body.split_once('.')
        .is_some_and(|(i, f)| digits(i) && digits(f))
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A number written with a decimal comma and optional `.` thousands groups, rewritten with
/// a decimal point and no groups: `12,5` → `12.5`, `-1.234,5` → `-1234.5`, `1.234` →
/// `1234`. `None` when `t` is not such a number (`35.03`, `1.2.3`, `12,`).
pub fn comma_number(t: &str) -> Option<String> {
    let (sign, body) = match t.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = match body.split_once(',') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    if frac.is_some_and(|f| !digits(f)) {
        return None;
    }
    let mut whole = String::with_capacity(int.len());
    let mut groups = int.split('.');
    let first = groups.next().unwrap_or_default();
    if !digits(first) {
        return None;
    }
    whole.push_str(first);
    let mut grouped = false;
    for g in groups {
        if g.len() != 3 || !digits(g) {
            return None;
        }
        grouped = true;
        whole.push_str(g);
    }
    if grouped && first.len() > 3 {
        return None;
    }
    Some(match frac {
        Some(f) => format!("{sign}{whole}.{f}"),
        None => format!("{sign}{whole}"),
    })
}

/// A cell's text under `mark`: numbers as numbers, codes with leading zeros and everything
/// else as text, blank as null.
pub fn cell_with(text: &str, mark: DecimalMark) -> Value {
    let t = text.trim();
    match mark {
        DecimalMark::Point => cell(t),
        DecimalMark::Comma => match comma_number(t) {
            Some(n) => match cell(&n) {
                Value::String(_) => Value::from(t),
                number => number,
            },
            // `35.03` under a decimal comma is a code, not thirty-five.
            None if t.contains(['.', ',']) => Value::from(t),
            None => cell(t),
        },
    }
}

/// A cell's text with a decimal point.
pub fn cell(text: &str) -> Value {
    let t = text.trim();
    if t.is_empty() {
        return Value::Null;
    }
    if let Ok(i) = t.parse::<i64>() {
        if !(t.len() > 1 && t.starts_with('0')) {
            return Value::from(i);
        }
        // Leading zeros are codes ("0351"), not numbers.
        return Value::from(t);
    }
    if let Ok(f) = t.parse::<f64>()
        && f.is_finite()
        && !t.starts_with('0')
    {
        return Value::from(f);
    }
    if let Ok(f) = t.parse::<f64>()
        && t.starts_with("0.")
    {
        return Value::from(f);
    }
    Value::from(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_keep_codes_as_text() {
        assert_eq!(cell("0351"), Value::from("0351"));
        assert_eq!(cell("42"), Value::from(42));
        assert_eq!(cell("10.29"), Value::from(10.29));
        assert_eq!(cell("0.5"), Value::from(0.5));
        assert_eq!(cell(""), Value::Null);
    }

    #[test]
    fn a_bom_is_stripped_once() {
        assert_eq!(strip_bom(b"\xEF\xBB\xBFid;x"), b"id;x");
        assert_eq!(strip_bom(b"id;x"), b"id;x");
    }

    #[test]
    fn the_delimiter_is_the_most_frequent_outside_quotes() {
        assert_eq!(sniff_delimiter(b"id;nama;nilai\n1,5;a;b"), b';');
        assert_eq!(sniff_delimiter(b"id,nama,nilai\n"), b',');
        assert_eq!(sniff_delimiter(b"id\tnama\tnilai"), b'\t');
        assert_eq!(sniff_delimiter(b"id|nama|nilai"), b'|');
        // The commas inside the quoted name are not delimiters.
        assert_eq!(sniff_delimiter(b"\"kode, nama, ket\";nilai\n"), b';');
        // A quoted header cell holding a line break is still the header line.
        assert_eq!(sniff_delimiter(b"\"a\nb\";c;d\n1,2,3,4,5"), b';');
        assert_eq!(sniff_delimiter(b"nama\n"), b',');
        assert_eq!(sniff_delimiter(b""), b',');
    }

    #[test]
    fn numbers_written_with_a_decimal_comma() {
        assert_eq!(comma_number("12,5").as_deref(), Some("12.5"));
        assert_eq!(comma_number("1.234,5").as_deref(), Some("1234.5"));
        assert_eq!(
            comma_number("-1.234.567,25").as_deref(),
            Some("-1234567.25")
        );
        assert_eq!(comma_number("1.234").as_deref(), Some("1234"));
        assert_eq!(comma_number("42").as_deref(), Some("42"));
        for not in [
            "35.03",
            "35.03.08",
            "1.2.3",
            "12,",
            ",5",
            "1234.567,5",
            "a,b",
            "",
        ] {
            assert_eq!(comma_number(not), None, "{not}");
        }
    }

    #[test]
    fn a_column_uses_a_comma_when_its_numbers_do() {
        let mark = |cells: &[&str]| column_mark(cells.iter().copied());
        assert_eq!(mark(&["12,5", "7", "", "1.234,5"]), DecimalMark::Comma);
        assert_eq!(mark(&["12.5", "7"]), DecimalMark::Point);
        // A decimal point anywhere keeps the column as written.
        assert_eq!(mark(&["12,5", "10.29"]), DecimalMark::Point);
        // Thousands alone read either way; text with commas is not a number.
        assert_eq!(mark(&["1.234", "2.000"]), DecimalMark::Point);
        assert_eq!(mark(&["Watulimo, Prigi", "35.03.08"]), DecimalMark::Point);
    }

    #[test]
    fn cells_under_a_decimal_comma() {
        let c = |t| cell_with(t, DecimalMark::Comma);
        assert_eq!(c("12,5"), Value::from(12.5));
        assert_eq!(c("1.234,5"), Value::from(1234.5));
        assert_eq!(c("1.234"), Value::from(1234));
        assert_eq!(c("-0,25"), Value::from(-0.25));
        assert_eq!(c("0,5"), Value::from(0.5));
        assert_eq!(c("42"), Value::from(42));
        // Codes stay text, as under a decimal point.
        assert_eq!(c("0351"), Value::from("0351"));
        assert_eq!(c("012,5"), Value::from("012,5"));
        assert_eq!(c("35.03"), Value::from("35.03"));
        assert_eq!(c("35.03.08"), Value::from("35.03.08"));
        assert_eq!(c("Prigi"), Value::from("Prigi"));
        assert_eq!(c(" "), Value::Null);
    }
}
