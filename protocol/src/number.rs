//! Redis's number rules in one place: strict integer parsing (`string2ll`), float parsing
//! (`strtold` without NaN), and float formatting as Redis prints it.

/// Parses a signed 64-bit integer exactly as Redis's `string2ll`: no spaces, no `+`,
/// no leading zeros, nothing trailing.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = if s[0] == b'-' {
        (true, &s[1..])
    } else {
        (false, s)
    };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > (i64::MAX as u64) + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

/// Parses a non-negative integer (u64) with the same strictness as [`parse_i64`].
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    parse_i64(s).and_then(|v| u64::try_from(v).ok())
}

/// Parses a double as Redis does for scores and INCRBYFLOAT: decimal or scientific,
/// `inf`/`-inf`/`+inf` (any case), no surrounding spaces, never NaN.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s.len() > 5000 {
        return None;
    }
    if s[0].is_ascii_whitespace() || s[s.len() - 1].is_ascii_whitespace() {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let lower = text.to_ascii_lowercase();
    let v = match lower.as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => {
            // Rust accepts "nan", "inf" spelled differently, and "1_0"? (no); reject letters
            // other than the exponent marker to stay within strtod's grammar.
            if lower
                .bytes()
                .any(|c| !(c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'-' | b'+')))
            {
                return None;
            }
            lower.parse::<f64>().ok()?
        }
    };
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

/// Formats a double the way Redis 7.0 replies with scores (`addReplyDouble`): C's `%.17g`
/// (17 significant digits, trailing zeros trimmed, exponent form below 1e-4 or from 1e17),
/// `inf`/`-inf`.
pub fn format_f64(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // 17 significant digits, correctly rounded: "d.dddddddddddddddde<exp>".
    let sci = format!("{:.16e}", v.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if v < 0.0 { "-" } else { "" };
    if !(-4..17).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let rest = rest.trim_end_matches('0');
        let dot = if rest.is_empty() { "" } else { "." };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}{rest}e{esign}{:02}", exp.abs());
    }
    let (int_part, frac) = if exp >= 0 {
        let (i, f) = digits.split_at((exp as usize + 1).min(digits.len()));
        (i.to_string(), f.to_string())
    } else {
        ("0".to_string(), "0".repeat((-exp - 1) as usize) + &digits)
    };
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{sign}{int_part}")
    } else {
        format!("{sign}{int_part}.{frac}")
    }
}

/// Formats the result of INCRBYFLOAT / HINCRBYFLOAT: plain decimal, never an exponent,
/// no trailing zeros (Redis uses `%.17Lf` and trims).
pub fn format_f64_plain(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let s = format!("{}", v);
    if s == "-0" {
        "0".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_strict() {
        assert_eq!(parse_i64(b"123"), Some(123));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"012"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b" 1"), None);
        assert_eq!(parse_i64(b"1a"), None);
        assert_eq!(parse_i64(b"-0"), None);
    }

    #[test]
    fn floats() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(format_f64(1.5), "1.5");
        assert_eq!(format_f64(3.0), "3");
        assert_eq!(format_f64(1e21), "1e+21");
        assert_eq!(format_f64(f64::INFINITY), "inf");
        // Redis 7.0's %.17g.
        assert_eq!(format_f64(0.1), "0.10000000000000001");
        assert_eq!(format_f64(-1.1), "-1.1000000000000001");
        assert_eq!(format_f64(1e-5), "1.0000000000000001e-05");
        assert_eq!(format_f64(0.0001), "0.0001");
        assert_eq!(format_f64(1e16), "10000000000000000");
        assert_eq!(format_f64(1e17), "1e+17");
        assert_eq!(format_f64(1.2345678901234568e17), "1.2345678901234568e+17");
        assert_eq!(format_f64(1e300), "1.0000000000000001e+300");
        assert_eq!(format_f64(169.1), "169.09999999999999");
        assert_eq!(format_f64(0.123), "0.123");
        assert_eq!(format_f64(-0.0), "-0");
        assert_eq!(format_f64_plain(10.5), "10.5");
        assert_eq!(format_f64_plain(5000.0), "5000");
    }
}
