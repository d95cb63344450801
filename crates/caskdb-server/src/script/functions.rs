//! FUNCTION's libraries: what each library holds (its code, its functions with their
//! descriptions and flags), and the checks of FUNCTION LOAD and RESTORE, with Redis's errors.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::ScriptFlags;
use super::vm::{BAD_NAME, Registered, valid_name};

/// A function of a library.
#[derive(Clone, Debug)]
pub struct FunctionInfo {
    pub name: String,
    pub description: Option<String>,
    pub flags: ScriptFlags,
}

/// A loaded library.
#[derive(Clone, Debug)]
pub struct Library {
    pub name: String,
    /// The whole code FUNCTION LOAD was given, shebang included (FUNCTION LIST WITHCODE,
    /// FUNCTION DUMP, and what the store keeps).
    pub code: Bytes,
    pub functions: Vec<FunctionInfo>,
}

/// The loaded libraries, and which library each function belongs to.
#[derive(Default)]
pub struct Registry {
    pub libraries: BTreeMap<String, Library>,
    pub owner: BTreeMap<String, String>,
}

/// A library's shebang: its name, and where its code starts (at the line feed, so that line
/// numbers are the user's). Redis's errors.
pub fn metadata(code: &[u8]) -> Result<(String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err("Invalid library metadata".into());
    };
    let line = String::from_utf8_lossy(&code[..end]);
    let mut parts = line.split_ascii_whitespace();
    let Some(engine) = parts.next() else {
        return Err("Invalid library metadata".into());
    };
    let mut name = None;
    for part in parts {
        match part.get(..5) {
            Some(p) if p.eq_ignore_ascii_case("name=") => {
                if name.is_some() {
                    return Err(
                        "Invalid metadata value, name argument was given multiple times".into(),
                    );
                }
                name = Some(part[5..].to_string());
            }
            _ => return Err(format!("Invalid metadata value given: {part}")),
        }
    }
    let name = name.ok_or("Library name was not given")?;
    if !valid_name(&name) {
        return Err(BAD_NAME.into());
    }
    let engine = &engine[2..];
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("Engine '{engine}' not found"));
    }
    Ok((name, end))
}

impl Registry {
    /// Checks that `registered` (a new library named `name`) can join, `replacing` a library of
    /// the same name or not: Redis's errors.
    pub fn check(
        &self,
        name: &str,
        registered: &[Registered],
        replacing: bool,
    ) -> Result<(), String> {
        if registered.is_empty() {
            return Err("No functions registered".into());
        }
        for f in registered {
            if let Some(owner) = self.owner.get(&f.name)
                && !(replacing && owner == name)
            {
                return Err(format!("Function {} already exists", f.name));
            }
        }
        Ok(())
    }

    /// Adds a checked library (replacing one of the same name); returns the functions it
    /// replaced.
    pub fn add(&mut self, lib: Library) -> Vec<String> {
        let gone = self
            .remove(&lib.name)
            .map(|l| l.functions)
            .unwrap_or_default();
        for f in &lib.functions {
            self.owner.insert(f.name.clone(), lib.name.clone());
        }
        self.libraries.insert(lib.name.clone(), lib);
        gone.into_iter().map(|f| f.name).collect()
    }

    /// Removes library `name`.
    pub fn remove(&mut self, name: &str) -> Option<Library> {
        let lib = self.libraries.remove(name)?;
        for f in &lib.functions {
            self.owner.remove(&f.name);
        }
        Some(lib)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebangs() {
        assert_eq!(metadata(b"#!lua name=lib\ncode"), Ok(("lib".into(), 14)));
        assert_eq!(metadata(b"#!LUA NAME=x\n").map(|m| m.0), Ok("x".into()));
        assert!(metadata(b"return 1").unwrap_err().contains("Missing"));
        assert!(
            metadata(b"#!lua name=x")
                .unwrap_err()
                .contains("Invalid library")
        );
        assert!(metadata(b"#!lua\n").unwrap_err().contains("not given"));
        assert!(
            metadata(b"#!lua name=a name=b\n")
                .unwrap_err()
                .contains("multiple")
        );
        assert!(metadata(b"#!lua foo=b\n").unwrap_err().contains("foo=b"));
        assert!(
            metadata(b"#!js name=a\n")
                .unwrap_err()
                .contains("'js' not found")
        );
        assert!(
            metadata(b"#!lua name=a-b\n")
                .unwrap_err()
                .contains("letters")
        );
    }
}
