//! ACL users, as Redis 7.0 has them: each connection runs as a user (`default` until AUTH),
//! and a user may run the commands its rules allow (`+get`, `-@dangerous`, `+config|get`,
//! `+select|0`), on the keys its patterns allow (`~cache:*` for both, `%R~`/`%W~` for reading
//! or writing only), and publish or subscribe on the channels its patterns allow (`&news.*`).
//! Passwords are kept as SHA-256 digests and compared in constant time. Denials are answered
//! with Redis's `-NOPERM` errors and kept in the ACL LOG.
//!
//! The command universe is Redis 7.0.15's own table (`command_info.tsv`), with its ACL
//! categories, so `+@read` allows what it allows in Redis. Not done: selectors (`(…)` rules).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::command_info;

/// Redis's categories, in its order (ACL CAT lists them so; ACL LIST tries them so).
pub(crate) const CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// The most entries the ACL LOG keeps (Redis's `acllog-max-len` default).
const LOG_MAX: usize = 128;
/// Denials this close in time (and alike) are counted in one log entry, as Redis does.
const LOG_GROUPING_MS: u64 = 60_000;

/// A key pattern's permissions.
const READ: u8 = 1;
const WRITE: u8 = 2;

/// One command of the universe.
struct Command {
    /// `get`, or `config|get`.
    name: &'static str,
    /// Bit `i` set: in `CATEGORIES[i]`.
    categories: u32,
    /// The subcommands' ids.
    subs: Vec<usize>,
}

/// Every command and subcommand Redis 7.0.15 has, in its table's order; a command's id is
/// its place.
struct Universe {
    commands: Vec<Command>,
    by_name: HashMap<&'static str, usize>,
    /// Top-level commands, in order.
    top: Vec<usize>,
}

fn universe() -> &'static Universe {
    static U: OnceLock<Universe> = OnceLock::new();
    U.get_or_init(|| {
        let infos = command_info::table();
        let mut commands: Vec<Command> = infos
            .iter()
            .map(|c| Command {
                name: c.name,
                categories: c
                    .categories
                    .iter()
                    .filter_map(|cat| category(cat.trim_start_matches('@')))
                    .fold(0, |acc, bit| acc | bit),
                subs: Vec::new(),
            })
            .collect();
        let by_name: HashMap<&'static str, usize> = commands
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name, i))
            .collect();
        let mut top = Vec::new();
        for i in 0..commands.len() {
            match commands[i].name.split_once('|') {
                Some((parent, _)) => {
                    if let Some(&p) = by_name.get(parent) {
                        commands[p].subs.push(i);
                    }
                }
                None => top.push(i),
            }
        }
        Universe {
            commands,
            by_name,
            top,
        }
    })
}

/// The bit of category `name`.
fn category(name: &str) -> Option<u32> {
    CATEGORIES
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

/// The id of command `name` (`get`, `config|get`), if Redis has it.
pub(crate) fn command_id(name: &str) -> Option<usize> {
    universe().by_name.get(name).copied()
}

/// The commands of category `name` (ACL CAT), or `None` if there is no such category.
pub(crate) fn category_commands(name: &str) -> Option<Vec<&'static str>> {
    let bit = category(name)?;
    let u = universe();
    Some(
        u.commands
            .iter()
            .filter(|c| c.categories & bit != 0)
            .map(|c| c.name)
            .collect(),
    )
}

/// One bit per command of the universe.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
struct Bits([u64; 8]);

impl Bits {
    fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn set(&mut self, i: usize, on: bool) {
        if let Some(w) = self.0.get_mut(i / 64) {
            if on {
                *w |= 1 << (i % 64);
            } else {
                *w &= !(1 << (i % 64));
            }
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    Command,
    /// The argument (by position) naming a key the user may not touch so.
    Key(usize),
    /// The argument naming a channel the user may not use.
    Channel(usize),
}

impl Denied {
    /// The NOPERM reply a client gets; `command` is the command's full name.
    pub fn reply(self, command: &str) -> String {
        match self {
            Denied::Command => {
                format!("NOPERM this user has no permissions to run the '{command}' command")
            }
            Denied::Key(_) => {
                "NOPERM this user has no permissions to access one of the keys used as arguments"
                    .into()
            }
            Denied::Channel(_) => "NOPERM this user has no permissions to access one of the \
                                   channels used as arguments"
                .into(),
        }
    }

    /// The error a script's call gets.
    pub fn script_reply(self) -> String {
        let why = match self {
            Denied::Command => "can't run this command or subcommand",
            Denied::Key(_) => {
                "can't access at least one of the keys mentioned in the command arguments"
            }
            Denied::Channel(_) => "can't publish to the channel mentioned in the command",
        };
        format!("The user executing the script {why}")
    }

    fn reason(self) -> &'static str {
        match self {
            Denied::Command => "command",
            Denied::Key(_) => "key",
            Denied::Channel(_) => "channel",
        }
    }
}

/// One user.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub name: Bytes,
    enabled: bool,
    nopass: bool,
    /// `sanitize-payload` (Some(true)) or `skip-sanitize-payload` (Some(false)), once given
    /// (or by `reset`); shown among the flags. RESTORE checks its payload whole either way.
    sanitize: Option<bool>,
    /// Lowercase hex SHA-256 digests, in the order they were added.
    passwords: Vec<String>,
    allowed: Bits,
    /// Set by `+@all`, cleared only by `-@all`: commands outside Redis's table (caskdb's own)
    /// are allowed.
    future: bool,
    /// `+@all` with nothing taken away since: no command is checked.
    all_commands: bool,
    /// Command id → the first arguments allowed although the command is not (`+select|0`).
    first_args: BTreeMap<usize, Vec<String>>,
    allkeys: bool,
    keys: Vec<(u8, Bytes)>,
    allchannels: bool,
    channels: Vec<Bytes>,
}

/// The error of a rule that cannot be applied.
type RuleError = &'static str;

const SYNTAX: RuleError = "Syntax error";
const UNKNOWN: RuleError = "Unknown command or category name in ACL";

impl User {
    /// A new user: off, no password, no command, no key, no channel (Redis 7.0's
    /// `acl-pubsub-default resetchannels`).
    pub fn new(name: Bytes) -> User {
        User {
            name,
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            allowed: Bits::default(),
            future: false,
            all_commands: false,
            first_args: BTreeMap::new(),
            allkeys: false,
            keys: Vec::new(),
            allchannels: false,
            channels: Vec::new(),
        }
    }

    /// The `default` user as a server starts it: everything, no password.
    pub fn default_user() -> User {
        let mut u = User::new(Bytes::from_static(b"default"));
        for op in ["+@all", "~*", "&*", "on", "nopass"] {
            let _ = u.apply(op.as_bytes());
        }
        u
    }

    /// Whether nothing is checked for this user.
    pub fn unrestricted(&self) -> bool {
        self.all_commands && self.allkeys && self.allchannels
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn nopass(&self) -> bool {
        self.nopass
    }

    /// Whether `password` is one of the user's (any is, for a `nopass` user). Compared in
    /// constant time per stored digest.
    pub fn password_matches(&self, password: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let digest = hash(password);
        let mut found = false;
        for p in &self.passwords {
            found |= constant_time_eq(p.as_bytes(), digest.as_bytes());
        }
        found
    }

    /// Applies one rule (Redis's ACLSetUser).
    pub fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        let is = |w: &str| op.eq_ignore_ascii_case(w.as_bytes());
        if is("on") {
            self.enabled = true;
        } else if is("off") {
            self.enabled = false;
        } else if is("skip-sanitize-payload") {
            self.sanitize = Some(false);
        } else if is("sanitize-payload") {
            self.sanitize = Some(true);
        } else if is("nopass") {
            self.nopass = true;
            self.passwords.clear();
        } else if is("resetpass") {
            self.nopass = false;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let digest = if op[0] == b'>' {
                hash(&op[1..])
            } else {
                valid_digest(&op[1..])?
            };
            if !self.passwords.contains(&digest) {
                self.passwords.push(digest);
            }
            self.nopass = false;
        } else if op[0] == b'<' || op[0] == b'!' {
            let digest = if op[0] == b'<' {
                hash(&op[1..])
            } else {
                valid_digest(&op[1..])?
            };
            let at = self
                .passwords
                .iter()
                .position(|p| *p == digest)
                .ok_or("The password you are trying to remove from the user does not exist")?;
            self.passwords.remove(at);
        } else if op[0] == b'(' && op.ends_with(b")") {
            return Err("Selectors are not supported by caskdb");
        } else if is("clearselectors") {
        } else if is("reset") {
            for r in [
                "resetpass",
                "resetkeys",
                "resetchannels",
                "off",
                "sanitize-payload",
                "-@all",
            ] {
                self.apply(r.as_bytes())?;
            }
        } else {
            self.apply_selector(op)?;
        }
        Ok(())
    }

    /// Applies a rule about commands, keys or channels (Redis's ACLSetSelector).
    fn apply_selector(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let is = |w: &str| op.eq_ignore_ascii_case(w.as_bytes());
        if is("allkeys") || op == b"~*" {
            self.allkeys = true;
            self.keys.clear();
        } else if is("resetkeys") {
            self.allkeys = false;
            self.keys.clear();
        } else if is("allchannels") || op == b"&*" {
            self.allchannels = true;
            self.channels.clear();
        } else if is("resetchannels") {
            self.allchannels = false;
            self.channels.clear();
        } else if is("allcommands") || is("+@all") {
            self.allowed = all_bits();
            self.future = true;
            self.all_commands = true;
            self.first_args.clear();
        } else if is("nocommands") || is("-@all") {
            self.allowed = Bits::default();
            self.future = false;
            self.all_commands = false;
            self.first_args.clear();
        } else if op[0] == b'~' || op[0] == b'%' {
            if self.allkeys {
                return Err(
                    "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid \
                     and does not have any effect. Try 'resetkeys' to start with an empty list \
                     of patterns",
                );
            }
            let (perm, at) = if op[0] == b'%' {
                let mut perm = 0;
                let mut at = None;
                for (i, &c) in op.iter().enumerate().skip(1) {
                    match c.to_ascii_uppercase() {
                        b'R' if perm & READ == 0 => perm |= READ,
                        b'W' if perm & WRITE == 0 => perm |= WRITE,
                        b'~' => {
                            at = Some(i + 1);
                            break;
                        }
                        _ => return Err(SYNTAX),
                    }
                }
                // (A `%RW` without `~` ends with an empty pattern, as Redis's does.)
                (perm, at.unwrap_or(op.len()))
            } else {
                (READ | WRITE, 1)
            };
            let pattern = &op[at..];
            if has_spaces(pattern) {
                return Err(SYNTAX);
            }
            match self.keys.iter_mut().find(|(_, p)| p[..] == *pattern) {
                Some((p, _)) => *p |= perm,
                None => self.keys.push((perm, Bytes::copy_from_slice(pattern))),
            }
        } else if op[0] == b'&' {
            if self.allchannels {
                return Err(
                    "Adding a pattern after the * pattern (or the 'allchannels' flag) is not \
                     valid and does not have any effect. Try 'resetchannels' to start with an \
                     empty list of channels",
                );
            }
            let pattern = &op[1..];
            if has_spaces(pattern) {
                return Err(SYNTAX);
            }
            if !self.channels.iter().any(|c| c[..] == *pattern) {
                self.channels.push(Bytes::copy_from_slice(pattern));
            }
        } else if op.len() > 1 && op[1] == b'@' && (op[0] == b'+' || op[0] == b'-') {
            let name = std::str::from_utf8(&op[2..]).map_err(|_| UNKNOWN)?;
            let bit = category(name).ok_or(UNKNOWN)?;
            self.set_category(bit, op[0] == b'+');
        } else if op[0] == b'+' || op[0] == b'-' {
            let name = String::from_utf8_lossy(&op[1..]).to_lowercase();
            if op[0] == b'-' || !name.contains('|') {
                let id = command_id(&name).ok_or(UNKNOWN)?;
                self.change(id, op[0] == b'+');
            } else {
                let (cmd, sub) = name.rsplit_once('|').ok_or(SYNTAX)?;
                let id = command_id(cmd).ok_or(UNKNOWN)?;
                if cmd.contains('|') {
                    return Err("Allowing first-arg of a subcommand is not supported");
                }
                if sub.is_empty() {
                    return Err(SYNTAX);
                }
                if universe().commands[id].subs.is_empty() {
                    let allowed = self.first_args.entry(id).or_default();
                    if !allowed.iter().any(|a| a.eq_ignore_ascii_case(sub)) {
                        allowed.push(sub.to_string());
                    }
                } else {
                    let id = command_id(&name).ok_or(UNKNOWN)?;
                    self.change(id, true);
                }
            }
        } else {
            return Err(SYNTAX);
        }
        Ok(())
    }

    /// Allows or forbids command `id` and its subcommands (Redis's ACLChangeSelectorPerm).
    fn change(&mut self, id: usize, allow: bool) {
        change(&mut self.allowed, id, allow);
        if !allow {
            self.all_commands = false;
        }
        self.first_args.remove(&id);
    }

    fn set_category(&mut self, bit: u32, allow: bool) {
        for (id, c) in universe().commands.iter().enumerate() {
            if c.categories & bit != 0 {
                self.change(id, allow);
            }
        }
    }

    /// What ACL LIST shows after the name: flags, passwords, keys, channels, commands.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for f in self.flags() {
            out.push_str(f);
            out.push(' ');
        }
        for p in &self.passwords {
            out.push('#');
            out.push_str(p);
            out.push(' ');
        }
        if self.allkeys {
            out.push_str("~* ");
        } else {
            for k in self.key_patterns() {
                out.push_str(&k);
                out.push(' ');
            }
        }
        if self.allchannels {
            out.push_str("&* ");
        } else {
            out.push_str("resetchannels ");
            for c in &self.channels {
                out.push('&');
                out.push_str(&String::from_utf8_lossy(c));
                out.push(' ');
            }
        }
        out.push_str(&self.describe_commands());
        out
    }

    /// The key patterns as rules (`~p`, `%R~p`, `%W~p`).
    fn key_patterns(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|(perm, p)| {
                let prefix = match *perm {
                    READ => "%R~",
                    WRITE => "%W~",
                    _ => "~",
                };
                format!("{prefix}{}", String::from_utf8_lossy(p))
            })
            .collect()
    }

    /// GETUSER's fields after `flags` and `passwords`.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.sanitize {
            Some(false) => f.push("skip-sanitize-payload"),
            Some(true) => f.push("sanitize-payload"),
            None => {}
        }
        f
    }

    pub fn passwords(&self) -> &[String] {
        &self.passwords
    }

    pub fn keys_rule(&self) -> String {
        if self.allkeys {
            "~*".into()
        } else {
            self.key_patterns().join(" ")
        }
    }

    pub fn channels_rule(&self) -> String {
        if self.allchannels {
            "&*".into()
        } else {
            self.channels
                .iter()
                .map(|c| format!("&{}", String::from_utf8_lossy(c)))
                .collect::<Vec<_>>()
                .join(" ")
        }
    }

    /// The command rules that rebuild this user's permissions: `+@all` or `-@all`, then the
    /// categories that fit best, then single commands (Redis's
    /// ACLDescribeSelectorCommandRules; Redis emits the single commands in its hash table's
    /// order, caskdb in its table's).
    pub fn describe_commands(&self) -> String {
        let u = universe();
        let additive = !self.future;
        let mut rules = String::from(if additive { "-@all " } else { "+@all " });
        let mut fake = if additive {
            Bits::default()
        } else {
            all_bits()
        };
        let mut temp = self.allowed;
        let mut applied = [false; CATEGORIES.len()];
        loop {
            let mut best = None;
            let (mut mindiff, mut maxsame) = (usize::MAX, 0);
            for (j, _) in CATEGORIES.iter().enumerate() {
                if applied[j] {
                    continue;
                }
                let (mut on, mut off) = (0, 0);
                for (id, c) in u.commands.iter().enumerate() {
                    if c.categories & (1 << j) != 0 {
                        if temp.get(id) {
                            on += 1;
                        } else {
                            off += 1;
                        }
                    }
                }
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some(j);
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some(j) = best else { break };
            for (id, c) in u.commands.iter().enumerate() {
                if c.categories & (1 << j) != 0 {
                    change(&mut fake, id, additive);
                    change(&mut temp, id, !additive);
                }
            }
            rules.push_str(if additive { "+@" } else { "-@" });
            rules.push_str(CATEGORIES[j]);
            rules.push(' ');
            applied[j] = true;
        }
        for &id in &u.top {
            self.describe_single(id, &mut fake, &mut rules);
        }
        rules.pop();
        rules
    }

    fn describe_single(&self, id: usize, fake: &mut Bits, rules: &mut String) {
        let u = universe();
        let mine = self.allowed.get(id);
        if mine != fake.get(id) {
            rules.push(if mine { '+' } else { '-' });
            rules.push_str(u.commands[id].name);
            rules.push(' ');
            change(fake, id, mine);
        }
        for &sub in &u.commands[id].subs {
            self.describe_single(sub, fake, rules);
        }
        if !mine && let Some(args) = self.first_args.get(&id) {
            for a in args {
                rules.push('+');
                rules.push_str(u.commands[id].name);
                rules.push('|');
                rules.push_str(a);
                rules.push(' ');
            }
        }
    }

    /// Whether this user may use `channel`: a channel by its patterns, a subscription pattern
    /// (PSUBSCRIBE's) only if one of them is that very pattern, as Redis.
    pub fn channel_allowed(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.allchannels
            || self.channels.iter().any(|c| {
                if is_pattern {
                    c[..] == *channel
                } else {
                    crate::glob::matches(c, channel)
                }
            })
    }

    /// Whether this user may run the request `args` (Redis's ACLSelectorCheckCmd). `command`
    /// is the command's full name; `no_auth` whether it is one anyone may run (AUTH, HELLO…);
    /// `keys` gives the request's keys with their key-spec flags, asked only when needed.
    pub fn check(
        &self,
        command: &str,
        no_auth: bool,
        args: &[Bytes],
        keys: impl FnOnce() -> Vec<(usize, Vec<&'static str>)>,
    ) -> Result<(), Denied> {
        if !self.all_commands && !no_auth {
            let allowed = match command_id(command) {
                Some(id) if self.allowed.get(id) => true,
                Some(id) => {
                    let arg = if command.contains('|') { 2 } else { 1 };
                    match (self.first_args.get(&id), args.get(arg)) {
                        (Some(list), Some(a)) => {
                            list.iter().any(|x| x.as_bytes().eq_ignore_ascii_case(a))
                        }
                        _ => false,
                    }
                }
                // Not a command of Redis's: allowed with `+@all` only.
                None => self.future,
            };
            if !allowed {
                return Err(Denied::Command);
            }
        }
        if !self.allkeys {
            for (at, flags) in keys() {
                let mut need = 0;
                for f in &flags {
                    match *f {
                        "access" => need |= READ,
                        "insert" | "delete" | "update" => need |= WRITE,
                        _ => {}
                    }
                }
                let key = &args[at];
                let ok = self
                    .keys
                    .iter()
                    .any(|(perm, p)| perm & need == need && crate::glob::matches(p, key));
                if !ok {
                    return Err(Denied::Key(at));
                }
            }
        }
        if !self.allchannels {
            let (from, pattern) = match command {
                "publish" | "spublish" => (1, false),
                "subscribe" | "ssubscribe" => (1, false),
                "psubscribe" => (1, true),
                _ => (args.len(), false),
            };
            let last = if matches!(command, "publish" | "spublish") {
                2.min(args.len())
            } else {
                args.len()
            };
            for (at, channel) in args.iter().enumerate().take(last).skip(from) {
                if !self.channel_allowed(channel, pattern) {
                    return Err(Denied::Channel(at));
                }
            }
        }
        Ok(())
    }
}

/// A user that may do anything, for the server's own work (serving blocked clients).
pub(crate) fn unrestricted() -> Arc<User> {
    static U: OnceLock<Arc<User>> = OnceLock::new();
    U.get_or_init(|| {
        let mut u = User::default_user();
        u.name = Bytes::from_static(b"(server)");
        Arc::new(u)
    })
    .clone()
}

/// Sets `id`'s bit and its subcommands' bits.
fn change(bits: &mut Bits, id: usize, allow: bool) {
    bits.set(id, allow);
    for &sub in &universe().commands[id].subs {
        bits.set(sub, allow);
    }
}

fn all_bits() -> Bits {
    let mut b = Bits::default();
    for id in 0..universe().commands.len() {
        b.set(id, true);
    }
    b
}

fn hash(password: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, password);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn valid_digest(hex: &[u8]) -> Result<String, RuleError> {
    if hex.len() != 64 || !hex.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(
            "The password hash must be exactly 64 characters and contain only lowercase \
             hexadecimal characters",
        );
    }
    Ok(String::from_utf8_lossy(hex).into_owned())
}

fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|c| c.is_ascii_whitespace() || *c == 0)
}

/// Compares without an early exit, so response time does not reveal a matching prefix.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for (i, &x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(!x);
    }
    diff == 0
}

/// One ACL LOG entry.
#[derive(Clone)]
pub(crate) struct LogEntry {
    pub count: u64,
    /// `command`, `key`, `channel` or `auth`.
    pub reason: &'static str,
    /// `toplevel`, `multi` or `lua`.
    pub context: &'static str,
    pub object: Bytes,
    pub username: Bytes,
    /// Milliseconds since the epoch of the last denial counted.
    pub at_ms: u64,
    pub client_info: String,
}

/// The users, and the log of denials.
pub(crate) struct Acl {
    users: RwLock<BTreeMap<Bytes, Arc<User>>>,
    /// Bumped by every change: connections refresh their user then.
    generation: AtomicU64,
    log: Mutex<VecDeque<LogEntry>>,
}

impl Acl {
    /// The `default` user alone, with `password` if `requirepass` is set.
    pub fn new(password: Option<&str>) -> Acl {
        let acl = Acl {
            users: RwLock::new(BTreeMap::new()),
            generation: AtomicU64::new(0),
            log: Mutex::new(VecDeque::new()),
        };
        acl.users.write().insert(
            Bytes::from_static(b"default"),
            Arc::new(User::default_user()),
        );
        acl.set_default_password(password);
        acl
    }

    /// The `default` user now.
    pub fn default_user(&self) -> Arc<User> {
        self.get(b"default").unwrap_or_else(unrestricted)
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn get(&self, name: &[u8]) -> Option<Arc<User>> {
        self.users.read().get(name).cloned()
    }

    pub fn users(&self) -> Vec<Arc<User>> {
        self.users.read().values().cloned().collect()
    }

    /// `requirepass`: the default user's only password (none: `nopass`).
    pub fn set_default_password(&self, password: Option<&str>) {
        let rules: Vec<Vec<u8>> = match password {
            Some(p) => vec![b"resetpass".to_vec(), [b">", p.as_bytes()].concat()],
            None => vec![b"nopass".to_vec()],
        };
        let rules: Vec<Bytes> = rules.into_iter().map(Bytes::from).collect();
        let _ = self.set_user(Bytes::from_static(b"default"), &rules);
    }

    /// ACL SETUSER: applies every rule to a copy of the user (a new one if absent), and
    /// stores it only if all applied.
    pub fn set_user(&self, name: Bytes, rules: &[Bytes]) -> Result<(), String> {
        let mut users = self.users.write();
        let mut user = match users.get(&name) {
            Some(u) => User::clone(u),
            None => User::new(name.clone()),
        };
        for r in rules {
            user.apply(r).map_err(|why| {
                format!(
                    "Error in ACL SETUSER modifier '{}': {why}",
                    String::from_utf8_lossy(r)
                )
            })?;
        }
        users.insert(name, Arc::new(user));
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// ACL DELUSER: how many of `names` existed (and are gone).
    pub fn delete(&self, names: &[Bytes]) -> usize {
        let mut users = self.users.write();
        let n = names.iter().filter(|n| users.remove(*n).is_some()).count();
        self.generation.fetch_add(1, Ordering::AcqRel);
        n
    }

    /// Replaces every user with `users` (ACL LOAD); `default` is added if missing.
    pub fn replace(&self, users: Vec<User>) {
        let mut map: BTreeMap<Bytes, Arc<User>> = users
            .into_iter()
            .map(|u| (u.name.clone(), Arc::new(u)))
            .collect();
        map.entry(Bytes::from_static(b"default"))
            .or_insert_with(|| Arc::new(User::default_user()));
        *self.users.write() = map;
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Notes a denial, counting it into a recent alike entry if there is one.
    pub fn log(&self, mut entry: LogEntry) {
        let mut log = self.log.lock();
        let alike = log.iter().take(10).position(|e| {
            e.reason == entry.reason
                && e.context == entry.context
                && e.object == entry.object
                && e.username == entry.username
                && e.at_ms.abs_diff(entry.at_ms) <= LOG_GROUPING_MS
        });
        if let Some(at) = alike
            && let Some(old) = log.remove(at)
        {
            entry.count = old.count + 1;
        }
        log.push_front(entry);
        log.truncate(LOG_MAX);
    }

    pub fn log_entries(&self, count: usize) -> Vec<LogEntry> {
        self.log.lock().iter().take(count).cloned().collect()
    }

    pub fn log_reset(&self) {
        self.log.lock().clear();
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it): the log's clock.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A denial's log entry for `reason` (`Denied::reason`, or `auth`).
pub(crate) fn entry(
    reason: &'static str,
    context: &'static str,
    object: Bytes,
    username: Bytes,
    client_info: String,
) -> LogEntry {
    LogEntry {
        count: 1,
        reason,
        context,
        object,
        username,
        at_ms: now_ms(),
        client_info,
    }
}

/// The log entry of denial `d` of a request.
pub(crate) fn denial_entry(
    d: Denied,
    command: &str,
    args: &[Bytes],
    context: &'static str,
    username: Bytes,
    client_info: String,
) -> LogEntry {
    let object = match d {
        Denied::Command => Bytes::copy_from_slice(command.as_bytes()),
        Denied::Key(at) | Denied::Channel(at) => args.get(at).cloned().unwrap_or_default(),
    };
    entry(d.reason(), context, object, username, client_info)
}

/// Reads an ACL file: one `user <name> <rule>…` per line (blank lines and `#` comments
/// skipped). All lines are checked first; any error fails the whole load.
pub(crate) fn parse_file(text: &str) -> Result<Vec<User>, String> {
    let mut users: Vec<User> = Vec::new();
    let mut errors = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        if words.first() != Some(&"user") || words.len() < 2 {
            errors.push(format!("/{}: line should start with user keyword", n + 1));
            continue;
        }
        let name = Bytes::copy_from_slice(words[1].as_bytes());
        if users.iter().any(|u| u.name == name) {
            errors.push(format!("{}: Duplicate user '{}' found", n + 1, words[1]));
            continue;
        }
        let mut user = User::new(name);
        for rule in &words[2..] {
            if let Err(why) = user.apply(rule.as_bytes()) {
                errors.push(format!("{}: {why}", n + 1));
                break;
            }
        }
        users.push(user);
    }
    if errors.is_empty() {
        Ok(users)
    } else {
        Err(errors.join(". "))
    }
}

/// An ACL file holding `users` (ACL SAVE).
pub(crate) fn render_file(users: &[Arc<User>]) -> String {
    users
        .iter()
        .map(|u| {
            format!(
                "user {} {}\n",
                String::from_utf8_lossy(&u.name),
                u.describe()
            )
        })
        .collect()
}
