//! Redis's argument splitting (`sdssplitargs`), as its documentation and redis-cli describe it,
//! written for the tests without looking at the server's parser: the abuse test's framing model
//! splits inline requests with it, and the differential scripts are written in this syntax.
//!
//! - Arguments are separated by blanks; blanks before the first and after the last are skipped.
//! - `"double quotes"` take the escapes `\xHH`, `\n`, `\r`, `\t`, `\b`, `\a`, and `\` before any
//!   other byte stands for that byte.
//! - `'single quotes'` take only `\'`.
//! - Quotes may start in the middle of an argument (`a"b c"` is `ab c`); a closing quote ends the
//!   argument and must be followed by a blank or the end of the line.
//! - The line is a C string: a NUL byte ends it.

/// C's `isspace`: what is skipped between arguments and may follow a closing quote.
fn c_isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The bytes that end an unquoted argument (NUL too, but the line was cut at the first NUL).
fn separates(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The arguments of `line`, or `None` when its quotes are unbalanced (an open quote at the end,
/// or a closing quote followed by something other than a blank).
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut rest = line.split(|&b| b == 0).next().unwrap_or_default();
    let mut args = Vec::new();
    loop {
        while let [b, tail @ ..] = rest
            && c_isspace(*b)
        {
            rest = tail;
        }
        if rest.is_empty() {
            return Some(args);
        }
        let mut arg = Vec::new();
        rest = loop {
            match rest {
                [] => break rest,
                [b, tail @ ..] if separates(*b) => break tail,
                [b'"', tail @ ..] => break double_quoted(tail, &mut arg)?,
                [b'\'', tail @ ..] => break single_quoted(tail, &mut arg)?,
                [b, tail @ ..] => {
                    arg.push(*b);
                    rest = tail;
                }
            }
        };
        args.push(arg);
    }
}

/// The rest of a double-quoted part (after its opening quote) into `arg`; what follows the
/// closing quote, or `None` if unbalanced.
fn double_quoted<'a>(mut rest: &'a [u8], arg: &mut Vec<u8>) -> Option<&'a [u8]> {
    let hex = |d: u8| char::from(d).to_digit(16);
    loop {
        rest = match rest {
            [] => return None,
            [b'"', tail @ ..] => return after_closing_quote(tail),
            [b'\\', b'x', h, l, tail @ ..] if hex(*h).is_some() && hex(*l).is_some() => {
                arg.push((hex(*h)? * 16 + hex(*l)?) as u8);
                tail
            }
            [b'\\', e, tail @ ..] => {
                arg.push(match e {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 0x08,
                    b'a' => 0x07,
                    other => *other,
                });
                tail
            }
            [b, tail @ ..] => {
                arg.push(*b);
                tail
            }
        };
    }
}

/// The rest of a single-quoted part (after its opening quote) into `arg`; what follows the
/// closing quote, or `None` if unbalanced.
fn single_quoted<'a>(mut rest: &'a [u8], arg: &mut Vec<u8>) -> Option<&'a [u8]> {
    loop {
        rest = match rest {
            [] => return None,
            [b'\\', b'\'', tail @ ..] => {
                arg.push(b'\'');
                tail
            }
            [b'\'', tail @ ..] => return after_closing_quote(tail),
            [b, tail @ ..] => {
                arg.push(*b);
                tail
            }
        };
    }
}

fn after_closing_quote(rest: &[u8]) -> Option<&[u8]> {
    match rest {
        [b, ..] if !c_isspace(*b) => None,
        _ => Some(rest),
    }
}
