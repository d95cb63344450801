//! C's `strtod` as glibc reads a number (SORT converts its weights with it): how much of the
//! text it takes, the value, and whether it sets `ERANGE`.
//!
//! The grammar: leading blanks, a sign, then `inf`/`infinity`, `nan`/`nan(chars)`, a hexadecimal
//! float (`0x1.8p3`) or a decimal one (`1.5e3`, `.5`, `5.`); an exponent without digits is not
//! taken, nor is an `x` without hexadecimal digits after `0`. Nothing taken (no digits) means
//! 0 and no text used, blanks included.
//!
//! `ERANGE` as glibc sets it: on overflow to infinity, and on underflow: a result that is tiny
//! (below the smallest normal number once rounded to 53 bits with an unbounded exponent, which
//! is how x86 detects tininess) and inexact. So `1e-400` (0) and `1e-310` (subnormal, rounded)
//! set it, `0x1p-1074` (exact) does not.

use std::cmp::Ordering;

/// What `strtod` made of the start of a text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Parsed {
    /// The value (0 when nothing was taken).
    pub value: f64,
    /// How many bytes it took (`endptr - nptr`).
    pub used: usize,
    /// Whether `errno` would be `ERANGE`.
    pub erange: bool,
}

/// `strtod(s, &end)` in the C locale.
pub fn strtod(s: &[u8]) -> Parsed {
    let nothing = Parsed {
        value: 0.0,
        used: 0,
        erange: false,
    };
    let mut i = s
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .count();
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let rest = &s[i..];
    let (value, used, erange) = if starts_with_ci(rest, b"infinity") {
        (f64::INFINITY, 8, false)
    } else if starts_with_ci(rest, b"inf") {
        (f64::INFINITY, 3, false)
    } else if starts_with_ci(rest, b"nan") {
        // `nan(n-char-sequence)`: letters, digits and `_` between the parentheses.
        let mut n = 3;
        if rest.get(3) == Some(&b'(') {
            let inner = rest[4..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count();
            if rest.get(4 + inner) == Some(&b')') {
                n = 5 + inner;
            }
        }
        (f64::NAN, n, false)
    } else if rest.len() >= 2 && rest[0] == b'0' && rest[1] | 0x20 == b'x' {
        match hexadecimal(&rest[2..]) {
            Some((v, n, e)) => (v, 2 + n, e),
            // `0x` without digits: the `0` alone.
            None => (0.0, 1, false),
        }
    } else {
        match decimal(rest) {
            Some(r) => r,
            None => return nothing,
        }
    };
    Parsed {
        value: if neg { -value } else { value },
        used: i + used,
        erange,
    }
}

fn starts_with_ci(s: &[u8], word: &[u8]) -> bool {
    s.len() >= word.len() && s[..word.len()].eq_ignore_ascii_case(word)
}

/// An exponent's digits after `s[0]` (the `e` or `p`): its value (saturated far beyond any
/// double's range) and the bytes it takes, `None` if no digit follows the optional sign.
fn exponent(s: &[u8]) -> Option<(i64, usize)> {
    let mut j = 1;
    let neg = match s.get(j) {
        Some(b'-') => {
            j += 1;
            true
        }
        Some(b'+') => {
            j += 1;
            false
        }
        _ => false,
    };
    let digits = s[j..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut e: i64 = 0;
    for &d in &s[j..j + digits] {
        e = (e * 10 + i64::from(d - b'0')).min(1 << 40);
    }
    Some((if neg { -e } else { e }, j + digits))
}

/// An unsigned decimal float at the start of `s`: (value, bytes taken, `ERANGE`), or `None`
/// without a digit.
fn decimal(s: &[u8]) -> Option<(f64, usize, bool)> {
    let int = s.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut j = int;
    let mut frac = 0;
    if s.get(j) == Some(&b'.') {
        frac = s[j + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
        j += 1 + frac;
    }
    if int + frac == 0 {
        return None;
    }
    let mut exp = 0;
    if s.get(j).is_some_and(|b| b | 0x20 == b'e')
        && let Some((e, n)) = exponent(&s[j..])
    {
        exp = e;
        j += n;
    }
    // Rust's parser rounds correctly, as glibc does; the text is plain ASCII by construction.
    let value: f64 = std::str::from_utf8(&s[..j]).ok()?.parse().ok()?;
    let int_digits = &s[..int];
    let frac_digits = if frac > 0 {
        &s[int + 1..int + 1 + frac]
    } else {
        &[][..]
    };
    let erange = if value.is_infinite() {
        true
    } else if value == 0.0 {
        int_digits.iter().chain(frac_digits).any(|&d| d != b'0')
    } else if value < f64::MIN_POSITIVE {
        // Subnormal: tiny; inexact unless the text is exactly its value.
        let text = Decimal::of_text(int_digits, frac_digits, exp);
        let bits = value.to_bits();
        text.cmp(&Decimal::of_binary(bits, 1074)) != Ordering::Equal
    } else if value == f64::MIN_POSITIVE {
        // Rounded up to the smallest normal: tiny (and inexact) if below 2^-1022 - 2^-1076,
        // where rounding to 53 bits stays under 2^-1022.
        let text = Decimal::of_text(int_digits, frac_digits, exp);
        text.cmp(&Decimal::of_binary((1 << 54) - 1, 1076)) == Ordering::Less
    } else {
        false
    };
    Some((value, j, erange))
}

/// A positive decimal number as its significant digits (no leading or trailing zeros) and the
/// place of the point: 0.d1d2d3… × 10^point. Compared exactly, for the few texts near the
/// bottom of the range.
#[derive(PartialEq, Eq)]
struct Decimal {
    digits: Vec<u8>,
    point: i64,
}

impl Decimal {
    /// `int.frac × 10^exp` (digits as ASCII); not all zeros.
    fn of_text(int: &[u8], frac: &[u8], exp: i64) -> Decimal {
        let all: Vec<u8> = int.iter().chain(frac).map(|d| d - b'0').collect();
        let lead = all.iter().take_while(|&&d| d == 0).count();
        let mut digits = all[lead..].to_vec();
        while digits.last() == Some(&0) {
            digits.pop();
        }
        let point = (all.len() - lead) as i64 + exp - frac.len() as i64;
        Decimal { digits, point }
    }

    /// `k × 2^-q` exactly (`k > 0`): `k × 5^q`, with the point `q` places from its end.
    fn of_binary(k: u64, q: u32) -> Decimal {
        // Little-endian limbs of nine decimal digits.
        const BASE: u64 = 1_000_000_000;
        let mut limbs = vec![k % BASE, (k / BASE) % BASE, k / BASE / BASE];
        let mut left = q;
        while left > 0 {
            // 5^13 < 2^31: one pass multiplies by up to 5^13.
            let step = left.min(13);
            let factor = 5u64.pow(step);
            let mut carry = 0;
            for limb in &mut limbs {
                let v = *limb * factor + carry;
                *limb = v % BASE;
                carry = v / BASE;
            }
            while carry > 0 {
                limbs.push(carry % BASE);
                carry /= BASE;
            }
            left -= step;
        }
        while limbs.len() > 1 && limbs.last() == Some(&0) {
            limbs.pop();
        }
        let mut text = String::new();
        for (i, limb) in limbs.iter().rev().enumerate() {
            if i == 0 {
                text.push_str(&limb.to_string());
            } else {
                text.push_str(&format!("{limb:09}"));
            }
        }
        let mut digits: Vec<u8> = text.bytes().map(|d| d - b'0').collect();
        let point = digits.len() as i64 - i64::from(q);
        while digits.last() == Some(&0) {
            digits.pop();
        }
        Decimal { digits, point }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        // Both positive with a non-zero first digit: the point decides, then the digits (a
        // longer one that starts with the other has more non-zero digits after).
        self.point
            .cmp(&other.point)
            .then_with(|| self.digits.cmp(&other.digits))
    }
}

/// An unsigned hexadecimal float after `0x`: (value, bytes taken, `ERANGE`), or `None` without
/// a hexadecimal digit.
fn hexadecimal(s: &[u8]) -> Option<(f64, usize, bool)> {
    let int = s.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let mut j = int;
    let mut frac = 0;
    if s.get(j) == Some(&b'.') {
        frac = s[j + 1..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        j += 1 + frac;
    }
    if int + frac == 0 {
        return None;
    }
    // The first 60-odd significant bits, exactly, and whether any bit after them is set:
    // value = mant × 2^exp2 (+ the sticky tail).
    let (mut mant, mut sticky, mut exp2) = (0u64, false, 0i64);
    let digits = s[..int].iter().map(|d| (d, false));
    let digits = digits.chain(s[int..j].iter().skip(1).map(|d| (d, true)));
    for (d, fractional) in digits {
        let v = u64::from(hex_value(*d));
        if mant >> 60 == 0 {
            mant = mant * 16 + v;
            if fractional {
                exp2 -= 4;
            }
        } else {
            sticky |= v != 0;
            if !fractional {
                exp2 += 4;
            }
        }
    }
    if s.get(j).is_some_and(|b| b | 0x20 == b'p')
        && let Some((e, n)) = exponent(&s[j..])
    {
        exp2 += e;
        j += n;
    }
    let (value, erange) = round_binary(mant, sticky, exp2);
    Some((value, j, erange))
}

fn hex_value(d: u8) -> u8 {
    match d {
        b'0'..=b'9' => d - b'0',
        _ => (d | 0x20) - b'a' + 10,
    }
}

/// `wide >> shift`, rounded to nearest, ties to even (`sticky`: bits below `wide` are set);
/// and whether anything was lost.
fn round_shifted(wide: u128, sticky: bool, shift: i64) -> (u128, bool) {
    if shift <= 0 {
        return (wide << (-shift), sticky);
    }
    if shift > 100 {
        // Far below half of the last place kept.
        return (0, wide != 0 || sticky);
    }
    let kept = wide >> shift;
    let rem = wide & ((1u128 << shift) - 1);
    let half = 1u128 << (shift - 1);
    let up = rem > half || (rem == half && (sticky || kept & 1 == 1));
    (kept + u128::from(up), rem != 0 || sticky)
}

/// `mant × 2^exp2` (plus a non-zero tail if `sticky`) rounded to a double, and `ERANGE`.
fn round_binary(mant: u64, sticky: bool, exp2: i64) -> (f64, bool) {
    if mant == 0 {
        return (0.0, false);
    }
    let top = 63 - i64::from(mant.leading_zeros());
    let e_top = exp2 + top;
    if e_top > 1023 {
        return (f64::INFINITY, true);
    }
    // The weight of the last bit kept: 53 bits for a normal result, 2^-1074 below.
    let mut low = if e_top >= -1022 { e_top - 52 } else { -1074 };
    let (mut kept, inexact) = round_shifted(u128::from(mant), sticky, low - exp2);
    if kept >> 53 != 0 {
        kept >>= 1;
        low += 1;
        if low + 52 > 1023 {
            return (f64::INFINITY, true);
        }
    }
    let bits = if kept >> 52 != 0 {
        (((low + 52 + 1023) as u64) << 52) | (kept as u64 & ((1 << 52) - 1))
    } else {
        kept as u64
    };
    // Tiny: under 2^-1022 once rounded to 53 bits with an unbounded exponent.
    let tiny = e_top < -1023
        || (e_top == -1023 && {
            let (r, _) = round_shifted(u128::from(mant), sticky, e_top - 52 - exp2);
            r >> 53 == 0
        });
    (f64::from_bits(bits), tiny && inexact)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> (f64, usize, bool) {
        let r = strtod(s.as_bytes());
        (r.value, r.used, r.erange)
    }

    #[test]
    fn grammar_as_glibc() {
        assert_eq!(p(""), (0.0, 0, false));
        assert_eq!(p("   "), (0.0, 0, false));
        assert_eq!(p("+"), (0.0, 0, false));
        assert_eq!(p("."), (0.0, 0, false));
        assert_eq!(p(" \t\n\x0b\x0c\r12"), (12.0, 8, false));
        assert_eq!(p("1 "), (1.0, 1, false));
        assert_eq!(p(".5"), (0.5, 2, false));
        assert_eq!(p("5."), (5.0, 2, false));
        assert_eq!(p("-5.e1"), (-50.0, 5, false));
        assert_eq!(p("1e"), (1.0, 1, false));
        assert_eq!(p("1e+"), (1.0, 1, false));
        assert_eq!(p("1E+05x"), (1e5, 5, false));
        assert_eq!(p("0x"), (0.0, 1, false));
        assert_eq!(p("0x10"), (16.0, 4, false));
        assert_eq!(p("0X1p4"), (16.0, 5, false));
        assert_eq!(p("0x1.8p1"), (3.0, 7, false));
        assert_eq!(p("0x.8"), (0.5, 4, false));
        assert_eq!(p("0x.p1"), (0.0, 1, false));
        assert_eq!(p("0x1p"), (1.0, 3, false));
        assert_eq!(p("-0x1P-2"), (-0.25, 7, false));
        assert_eq!(p("inf"), (f64::INFINITY, 3, false));
        assert_eq!(p("-Infinity"), (f64::NEG_INFINITY, 9, false));
        assert_eq!(p("infin"), (f64::INFINITY, 3, false));
        let n = strtod(b"nan(abc_1)x");
        assert!(n.value.is_nan() && n.used == 10);
        let n = strtod(b"nan(abc");
        assert!(n.value.is_nan() && n.used == 3);
        assert_eq!(p("1\u{0}2"), (1.0, 1, false));
    }

    #[test]
    fn erange_as_glibc() {
        for (text, erange) in [
            ("1e400", true),
            ("-1e400", true),
            ("1.7976931348623157e308", false),
            ("1.7976931348623159e308", true),
            ("1e-400", true),
            ("0e999999", false),
            ("0.000e-99999999999999999999", false),
            ("1e-310", true),
            ("4.9e-324", true),
            ("1e-320", true),
            ("2.2250738585072014e-308", false),
            ("2.2250738585072012e-308", true),
            ("2.2250738585072011e-308", true),
            ("2.22507385850720138e-308", false),
            ("0x1p-1074", false),
            ("0x1.8p-1074", true),
            ("0x1p-1080", true),
            ("0x1p1023", false),
            ("0x1p1024", true),
            ("0x1.fffffffffffff8p1023", true),
            ("0x1.fffffffffffffp1023", false),
            ("0x0.fffffffffffffp-1022", false),
            ("0x0.fffffffffffff8p-1022", true),
        ] {
            assert_eq!(strtod(text.as_bytes()).erange, erange, "{text}");
        }
        // A subnormal written out exactly is not inexact: 2^-1074.
        let exact = Decimal::of_binary(1, 1074);
        let mut text = String::from("0.");
        text.push_str(&"0".repeat((-exact.point) as usize));
        text.extend(exact.digits.iter().map(|d| char::from(b'0' + d)));
        let r = strtod(text.as_bytes());
        assert_eq!((r.value, r.erange), (f64::from_bits(1), false));
        text.push('1');
        assert!(strtod(text.as_bytes()).erange);
    }

    #[test]
    fn hexadecimal_rounds_to_nearest_even() {
        assert_eq!(p("0x1.00000000000008p0").0, 1.0);
        assert_eq!(p("0x1.00000000000018p0").0, 1.0 + 2.0 * f64::EPSILON);
        assert_eq!(p("0x1.000000000000080000000001p0").0, 1.0 + f64::EPSILON);
        assert_eq!(
            p("0x123456789abcdef0123p0").0,
            0x0123_4567_89ab_cdef_0123_u128 as f64
        );
        assert_eq!(p("0x1p-1074").0, f64::from_bits(1));
        assert_eq!(p("0x0.fffffffffffff8p-1022").0, f64::MIN_POSITIVE);
    }
}
