//! Builds thick-bundle archives for tests, including hostile ones that `tar::Builder` would
//! refuse to write (names are written into the header by hand).

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

pub enum Entry {
    File(&'static str, Vec<u8>),
    Dir(&'static str),
    Symlink(&'static str, &'static str),
    Hardlink(&'static str, &'static str),
    CharDevice(&'static str),
    Fifo(&'static str),
}

/// A gzipped tar of `entries`, with names written verbatim.
pub fn tgz(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(0);
        let (name, data): (&str, &[u8]) = match e {
            Entry::File(n, d) => {
                h.set_entry_type(tar::EntryType::Regular);
                (n, d)
            }
            Entry::Dir(n) => {
                h.set_entry_type(tar::EntryType::Directory);
                (n, &[])
            }
            Entry::Symlink(n, target) | Entry::Hardlink(n, target) => {
                h.set_entry_type(if matches!(e, Entry::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                h.set_link_name_literal(target).unwrap();
                (n, &[])
            }
            Entry::CharDevice(n) => {
                h.set_entry_type(tar::EntryType::Char);
                (n, &[])
            }
            Entry::Fifo(n) => {
                h.set_entry_type(tar::EntryType::Fifo);
                (n, &[])
            }
        };
        h.set_size(data.len() as u64);
        if name.len() > 100 {
            // benign long names get a GNU long-name entry, as real archivers write them
            builder.append_data(&mut h, name, data).unwrap();
            continue;
        }
        let raw = &mut h.as_old_mut().name;
        raw.fill(0);
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        builder.append(&h, data).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}
