//! What redis-server 7.0 says of each command in COMMAND INFO (flags, ACL categories, tips,
//! key specs), kept in `command_info.tsv` (written by `scripts/gen-command-info.py` from the
//! reference server), and the key-spec interpreter COMMAND GETKEYS uses, as Redis 7.0 finds
//! keys.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Where a key spec starts looking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// At this argument.
    Index(i64),
    /// After this keyword, searched from `startfrom` (negative: from the end, backwards).
    Keyword(&'static str, i64),
    Unknown,
}

/// How a key spec finds its keys from where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Find {
    /// Keys up to `lastkey` (relative; negative: from the end), every `keystep`; `limit`
    /// divides what is left when `lastkey` is -1.
    Range {
        lastkey: i64,
        keystep: i64,
        limit: i64,
    },
    /// A count of keys at `keynumidx`, the first key `firstkey` after it, every `keystep`.
    Keynum {
        keynumidx: i64,
        firstkey: i64,
        keystep: i64,
    },
    Unknown,
}

/// One key spec.
#[derive(Debug, Clone)]
pub struct KeySpec {
    pub flags: Vec<&'static str>,
    pub begin: Begin,
    pub find: Find,
}

/// One command's (or subcommand's) COMMAND INFO.
#[derive(Debug, Clone)]
pub struct CommandInfo {
    /// `get`, or `config|get` for a subcommand.
    pub name: &'static str,
    pub arity: i64,
    pub flags: Vec<&'static str>,
    pub first: i64,
    pub last: i64,
    pub step: i64,
    pub categories: Vec<&'static str>,
    pub tips: Vec<&'static str>,
    pub specs: Vec<KeySpec>,
}

fn words(field: &'static str) -> Vec<&'static str> {
    if field == "-" {
        Vec::new()
    } else {
        field.split(' ').collect()
    }
}

fn parse_spec(text: &'static str) -> Option<KeySpec> {
    let mut parts = text.split(' ');
    let flags = parts.next()?;
    let begin = parts.next()?;
    let find = parts.next()?;
    let nums = |s: &str| -> Option<Vec<i64>> { s.split(':').map(|n| n.parse().ok()).collect() };
    let begin = match begin.split_once(':') {
        Some(("index", n)) => Begin::Index(n.parse().ok()?),
        Some(("keyword", rest)) => {
            let (word, from) = rest.rsplit_once(':')?;
            Begin::Keyword(word, from.parse().ok()?)
        }
        _ => Begin::Unknown,
    };
    let find = match find.split_once(':') {
        Some(("range", rest)) => match nums(rest)?[..] {
            [lastkey, keystep, limit] => Find::Range {
                lastkey,
                keystep,
                limit,
            },
            _ => return None,
        },
        Some(("keynum", rest)) => match nums(rest)?[..] {
            [keynumidx, firstkey, keystep] => Find::Keynum {
                keynumidx,
                firstkey,
                keystep,
            },
            _ => return None,
        },
        _ => Find::Unknown,
    };
    Some(KeySpec {
        flags: if flags == "-" {
            Vec::new()
        } else {
            flags.split(',').collect()
        },
        begin,
        find,
    })
}

fn parse_line(line: &'static str) -> Option<CommandInfo> {
    let f: Vec<&'static str> = line.split('\t').collect();
    let [name, arity, flags, first, last, step, cats, tips, specs] = f[..] else {
        return None;
    };
    Some(CommandInfo {
        name,
        arity: arity.parse().ok()?,
        flags: words(flags),
        first: first.parse().ok()?,
        last: last.parse().ok()?,
        step: step.parse().ok()?,
        categories: words(cats),
        tips: words(tips),
        specs: if specs == "-" {
            Vec::new()
        } else {
            specs.split(" ; ").map(parse_spec).collect::<Option<_>>()?
        },
    })
}

/// Every command and subcommand of the table, by name, with its line number.
fn all() -> &'static HashMap<&'static str, (usize, CommandInfo)> {
    static ALL: OnceLock<HashMap<&'static str, (usize, CommandInfo)>> = OnceLock::new();
    ALL.get_or_init(|| {
        include_str!("command_info.tsv")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(parse_line)
            .enumerate()
            .map(|(i, c)| (c.name, (i, c)))
            .collect()
    })
}

/// Whether `name` has subcommands (`config`, `client`…).
pub fn is_container(name: &str) -> bool {
    static CONTAINERS: OnceLock<std::collections::HashSet<&'static str>> = OnceLock::new();
    CONTAINERS
        .get_or_init(|| {
            all()
                .keys()
                .filter_map(|n| n.split_once('|').map(|(parent, _)| parent))
                .collect()
        })
        .contains(name)
}

/// Every command and subcommand, in the table's order (redis-server's).
pub fn table() -> Vec<&'static CommandInfo> {
    let mut all: Vec<&(usize, CommandInfo)> = all().values().collect();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, c)| c).collect()
}

/// Redis's COMMAND INFO of `name` (`config|get` for a subcommand).
pub fn get(name: &str) -> Option<&'static CommandInfo> {
    all().get(name).map(|(_, c)| c)
}

/// The subcommands of `name`, in the order redis-server lists them (the table's).
pub fn subcommands(name: &str) -> Vec<&'static CommandInfo> {
    let prefix = format!("{name}|");
    let mut subs: Vec<(usize, &CommandInfo)> = all()
        .values()
        .filter(|(_, c)| c.name.starts_with(&prefix))
        .map(|(i, c)| (*i, c))
        .collect();
    subs.sort_by_key(|(i, _)| *i);
    subs.into_iter().map(|(_, c)| c).collect()
}

/// A key COMMAND GETKEYS found: its position in the arguments (the command name is 0) and its
/// spec's flags.
pub type KeyAt = (usize, Vec<&'static str>);

/// The keys `args` name, found with `specs` as Redis 7.0's `getKeysUsingKeySpecs` does;
/// `None` when a spec cannot be applied (an unknown or incomplete spec, a bad key count, keys
/// past the arguments).
pub fn keys_by_specs(specs: &[KeySpec], args: &[&[u8]]) -> Option<Vec<KeyAt>> {
    let argc = args.len() as i64;
    let mut keys = Vec::new();
    for spec in specs {
        if spec.flags.contains(&"not_key") {
            continue;
        }
        let first = match &spec.begin {
            Begin::Index(pos) => *pos,
            Begin::Keyword(word, from) => {
                let start = if *from > 0 { *from } else { argc + from };
                let end = if *from > 0 { argc - 1 } else { 1 };
                let mut i = start;
                let mut found = None;
                while i != end {
                    if i >= argc || i < 1 {
                        break;
                    }
                    if args[i as usize].eq_ignore_ascii_case(word.as_bytes()) {
                        found = Some(i + 1);
                        break;
                    }
                    i += if start <= end { 1 } else { -1 };
                }
                match found {
                    Some(f) => f,
                    None => continue, // keyword absent: no keys from this spec
                }
            }
            Begin::Unknown => return None,
        };
        let (first, last, step) = match spec.find {
            Find::Range {
                lastkey,
                keystep,
                limit,
            } => {
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    first + ((argc - first) / limit + lastkey)
                };
                (first, last, keystep)
            }
            Find::Keynum {
                keynumidx,
                firstkey,
                keystep,
            } => {
                let at = first + keynumidx;
                if keynumidx >= argc || at >= argc {
                    return None;
                }
                let numkeys = std::str::from_utf8(args[at as usize])
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                    .filter(|n| *n >= 0)?;
                let first = first + firstkey;
                (first, first + numkeys - 1, keystep)
            }
            Find::Unknown => return None,
        };
        if last >= argc || last < first || first >= argc || step <= 0 {
            return None;
        }
        let mut i = first;
        while i <= last {
            keys.push((i as usize, spec.flags.clone()));
            i += step;
        }
        if spec.flags.contains(&"incomplete") {
            return None;
        }
    }
    Some(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<&[u8]> {
        s.split(' ').map(str::as_bytes).collect()
    }

    #[test]
    fn the_table_reads_whole() {
        let get = super::get("get").unwrap();
        assert_eq!((get.arity, get.first, get.last, get.step), (2, 1, 1, 1));
        assert_eq!(get.flags, ["readonly", "fast"]);
        assert!(!subcommands("config").is_empty());
        assert!(super::get("config|get").is_some());
    }

    #[test]
    fn keys_by_range_keynum_and_keyword() {
        let mset = &super::get("mset").unwrap().specs;
        let found = keys_by_specs(mset, &args("MSET a 1 b 2")).unwrap();
        assert_eq!(found.iter().map(|k| k.0).collect::<Vec<_>>(), [1, 3]);
        let zu = &super::get("zunionstore").unwrap().specs;
        let found = keys_by_specs(zu, &args("ZUNIONSTORE d 2 a b WEIGHTS 1 2")).unwrap();
        assert_eq!(found.iter().map(|k| k.0).collect::<Vec<_>>(), [1, 3, 4]);
        assert!(keys_by_specs(zu, &args("ZUNIONSTORE d x a")).is_none());
        assert!(keys_by_specs(zu, &args("ZUNIONSTORE d 5 a")).is_none());
    }
}
