//! Which command a request names, as redis-server 7.0's COMMAND INFO knows it (`get`, or
//! `config|get` for a subcommand), and which of its arguments are keys, with their key-spec
//! flags: found with the command's key specs, or by Redis's own key finders where the specs
//! cannot say (SORT's STORE, SET's flags with GET). For COMMAND GETKEYS, client tracking and
//! the ACL's key checks.

use bytes::Bytes;

use crate::command_info::{self, CommandInfo, KeyAt};

/// The command a full request names: `name`, or `name|subcommand` for a container; `None`
/// for a command (or subcommand) Redis does not have.
pub(crate) fn full_info(args: &[Bytes]) -> Option<&'static CommandInfo> {
    let name = String::from_utf8_lossy(args.first()?).to_lowercase();
    if command_info::is_container(&name) {
        let sub = String::from_utf8_lossy(args.get(1)?).to_lowercase();
        return command_info::get(&format!("{name}|{sub}"));
    }
    command_info::get(&name)
}

/// Whether the command takes keys at all.
pub(crate) fn has_keys(info: &CommandInfo) -> bool {
    info.specs.iter().any(|k| !k.flags.contains(&"not_key")) || info.flags.contains(&"movablekeys")
}

/// The keys of request `args` of command `info`, with their flags, as COMMAND GETKEYS finds
/// them; none if its arguments are off.
pub(crate) fn keys_of(info: &CommandInfo, args: &[Bytes]) -> Vec<KeyAt> {
    let raw: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
    let variable = info
        .specs
        .iter()
        .any(|k| k.flags.contains(&"variable_flags"));
    let by_specs = if variable {
        None
    } else {
        command_info::keys_by_specs(&info.specs, &raw)
    };
    by_specs
        .or_else(|| key_finder(info.name, &raw))
        .unwrap_or_default()
}

/// The keys of a request, with their flags (none for a command Redis does not have).
pub(crate) fn key_positions(args: &[Bytes]) -> Vec<KeyAt> {
    full_info(args).map_or_else(Vec::new, |info| keys_of(info, args))
}

/// The keys a request names.
pub(crate) fn request_keys(args: &[Bytes]) -> Vec<Bytes> {
    key_positions(args)
        .into_iter()
        .filter_map(|(at, _)| args.get(at).cloned())
        .collect()
}

/// Redis's own key finders, for the commands whose key specs are incomplete or whose flags
/// vary.
fn key_finder(name: &str, args: &[&[u8]]) -> Option<Vec<KeyAt>> {
    let is = |a: &[u8], w: &str| a.eq_ignore_ascii_case(w.as_bytes());
    match name {
        "sort_ro" => Some(vec![(1, vec!["RO", "access"])]),
        "sort" => {
            let mut keys = vec![(1, vec!["RO", "access"])];
            let mut store = None;
            let mut i = 2;
            while i < args.len() {
                if is(args[i], "limit") {
                    i += 2;
                } else if is(args[i], "store") && i + 1 < args.len() {
                    // The last STORE counts, as in SORT.
                    store = Some(i + 1);
                } else if is(args[i], "get") || is(args[i], "by") {
                    i += 1;
                }
                i += 1;
            }
            keys.extend(store.map(|at| (at, vec!["OW", "update"])));
            Some(keys)
        }
        "set" => {
            let get = args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get"));
            let flags = if get {
                vec!["RW", "access", "update"]
            } else {
                vec!["OW", "update"]
            };
            Some(vec![(1, flags)])
        }
        _ => None,
    }
}
