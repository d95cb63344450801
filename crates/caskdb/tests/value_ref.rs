//! Values located now and read later ([`ValueRef`]): they read as they were when located,
//! through overwrites and merges; they are checked again when read, and a damaged record never
//! hands out its last piece; small records are read at once.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use bytes::Bytes;
use caskdb::{Db, Error, Options, ValueRef};

fn big(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add((i % 251) as u8))
        .collect()
}

fn all_chunks(r: &ValueRef, step: usize) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    for piece in r.chunks(step) {
        let piece = piece?;
        assert!(!piece.is_empty() && piece.len() <= step.max(1));
        out.extend_from_slice(&piece);
    }
    Ok(out)
}

fn data_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_located_value_reads_as_it_was_through_overwrites_and_a_merge() {
    let dir = tempfile::tempdir().unwrap();
    let db = Options::default()
        .data_file_size(256 * 1024)
        .open(dir.path())
        .unwrap();
    let old = big(1, 300_000);
    db.put("k", &old).unwrap();
    let r = db.get_ref("k", 4096).unwrap().unwrap();
    assert!(!r.is_in_memory());
    assert_eq!(r.len(), 300_000);
    assert_eq!(r.head(), &old[..16]);
    // Overwrite it, fill a few files, and merge the old ones away.
    for i in 0..8u8 {
        db.put("k", big(10 + i, 100_000)).unwrap();
    }
    assert!(!r.is_retired());
    db.merge().unwrap();
    assert!(
        r.is_retired(),
        "the merge removed the file the value lies in"
    );
    assert_eq!(all_chunks(&r, 7_000).unwrap(), old);
    assert_eq!(r.read().unwrap(), old);
    // A part of it.
    let tail = r.skip(299_990);
    assert_eq!(tail.len(), 10);
    assert_eq!(tail.head(), b"", "only the value's first 16 bytes are kept");
    assert_eq!(r.skip(1).head(), &old[1..16]);
    assert_eq!(all_chunks(&tail, 3).unwrap(), &old[299_990..]);
    assert_eq!(db.get("k").unwrap().unwrap(), big(17, 100_000));
}

#[test]
fn small_records_are_read_at_once_and_pending_writes_come_from_memory() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.put("small", "hello").unwrap();
    let r = db.get_ref("small", 4096).unwrap().unwrap();
    assert!(r.is_in_memory());
    assert_eq!(r.read().unwrap(), "hello");
    assert_eq!(all_chunks(&r, 2).unwrap(), b"hello");
    assert_eq!(r.skip(1).head(), b"ello");
    assert!(db.get_ref("absent", 4096).unwrap().is_none());
    assert!(matches!(db.get_ref("", 1), Err(Error::KeyIsEmpty)));

    db.put("a", big(3, 50_000)).unwrap();
    db.put("b", "bee").unwrap();
    db.transaction(|tx| -> Result<(), Error> {
        tx.put("c", "pending").unwrap();
        tx.delete("b").unwrap();
        assert_eq!(
            tx.get_ref("c", 0).unwrap().unwrap().read().unwrap(),
            "pending"
        );
        assert!(tx.get_ref("b", 0).unwrap().is_none());
        let seen: Vec<(Bytes, Vec<u8>)> = tx
            .range_refs::<&str, _>(.., 1024)
            .map(|r| {
                let (k, v) = r.unwrap();
                (k, v.read().unwrap().to_vec())
            })
            .collect();
        let expected: Vec<(Bytes, Vec<u8>)> = vec![
            (Bytes::from("a"), big(3, 50_000)),
            (Bytes::from("c"), b"pending".to_vec()),
            (Bytes::from("small"), b"hello".to_vec()),
        ];
        assert_eq!(seen, expected);
        let back: Vec<Bytes> = tx
            .range_refs::<&str, _>(.., 1024)
            .rev()
            .map(|r| r.unwrap().0)
            .collect();
        assert_eq!(back, vec!["small", "c", "a"]);
        Ok(())
    })
    .unwrap();
}

/// Flips one bit of `path` in place (an open mapping sees it).
fn damage(path: &std::path::Path, offset: u64) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    f.write_all_at(&[b[0] ^ 0x20], offset).unwrap();
}

#[test]
fn a_value_damaged_after_it_was_located_never_hands_out_its_last_piece() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let v = big(5, 200_000);
    db.put("k", &v).unwrap();
    let r = db.get_ref("k", 0).unwrap().unwrap();
    let file = data_files(dir.path()).pop().unwrap();
    // A byte near the end of the value: the record starts after the 16-byte file header, and
    // its header, CRC to value length, takes 9 bytes here, then the 1-byte key.
    damage(&file, 16 + 9 + 1 + 199_990);
    let mut got = 0usize;
    let mut error = None;
    for piece in r.chunks(16 * 1024) {
        match piece {
            Ok(p) => got += p.len(),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    assert!(
        got < v.len(),
        "all {got} bytes of a damaged value were handed out"
    );
    match error {
        Some(Error::Corrupted {
            file: f, reason, ..
        }) => {
            assert_eq!(f, file);
            assert!(reason.contains("CRC"), "{reason}");
        }
        other => panic!("expected Corrupted, got {other:?}"),
    }
    assert!(matches!(r.read(), Err(Error::Corrupted { offset: 16, .. })));
    // Located again (only its header and key are read then), it fails when read; a get fails.
    let again = db.get_ref("k", 0).unwrap().unwrap();
    assert!(matches!(again.read(), Err(Error::Corrupted { .. })));
    assert!(again.chunks(1 << 20).any(|p| p.is_err()));
    assert!(matches!(db.get("k"), Err(Error::Corrupted { .. })));
    // A damaged header is found when locating.
    damage(&file, 16 + 4);
    assert!(matches!(
        db.get_ref("k", 0),
        Err(Error::Corrupted { offset: 16, .. })
    ));
}
