//! Streaming reads of the gzipped tar. Entry names are normalised (`./` dropped) and checked:
//! anything that could point outside the archive (absolute paths, `..`, links, devices) or
//! be ambiguous (duplicates) makes the whole archive invalid.

use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::bufread::GzDecoder;
use tar::EntryType;

use super::error::ArchiveError;

/// The name of the bundle file, at the root or in the single top-level directory.
pub(crate) const BUNDLE_JSON: &str = "bundle.json";

/// What one pass over the archive saw.
#[derive(Debug, Default)]
pub(crate) struct ArchiveIndex {
    /// Regular files, normalised names, in archive order, with their sizes.
    pub files: Vec<(String, u64)>,
    /// First components of every entry (files and directories).
    pub top_level: BTreeSet<String>,
}

impl ArchiveIndex {
    /// The directory everything is relative to: "" when `bundle.json` is at the root, or
    /// "dir/" when the archive holds one top-level directory with `bundle.json` in it.
    pub fn root(&self) -> Option<String> {
        let has = |name: &str| self.files.iter().any(|(f, _)| f == name);
        if has(BUNDLE_JSON) {
            return Some(String::new());
        }
        match self.top_level.iter().collect::<Vec<_>>().as_slice() {
            [only] if has(&format!("{only}/{BUNDLE_JSON}")) => Some(format!("{only}/")),
            _ => None,
        }
    }
}

/// Streams every entry of the archive at `path`, calling `on_file(name, size, content)` for each
/// regular file; whatever `on_file` leaves unread is drained, so a truncated archive always fails.
pub(crate) fn scan_archive(
    path: &Path,
    mut on_file: impl FnMut(&str, u64, &mut dyn Read) -> io::Result<()>,
) -> Result<ArchiveIndex, ArchiveError> {
    let io_err = |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let mut archive = tar::Archive::new(GzipMembers::new(BufReader::with_capacity(1 << 20, file)));
    let mut index = ArchiveIndex::default();
    let mut seen = HashSet::new();
    for entry in archive.entries().map_err(io_err)? {
        let mut entry = entry.map_err(io_err)?;
        let raw_bytes = entry.path_bytes().into_owned();
        let raw_name = String::from_utf8_lossy(&raw_bytes).into_owned();
        let unsafe_entry = |reason: &str| ArchiveError::UnsafeEntry {
            path: path.to_path_buf(),
            entry: raw_name.clone(),
            reason: reason.to_string(),
        };
        let kind = entry.header().entry_type();
        match kind {
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink => continue,
            EntryType::Regular | EntryType::Continuous | EntryType::Directory => {}
            EntryType::Symlink | EntryType::Link => {
                return Err(unsafe_entry("links are not allowed in a thick bundle"))
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                return Err(unsafe_entry("device files and FIFOs are not allowed in a thick bundle"))
            }
            _ => {
                return Err(unsafe_entry(
                    "only regular files and directories are allowed in a thick bundle",
                ))
            }
        }
        if std::str::from_utf8(&raw_bytes).is_err() {
            return Err(unsafe_entry("the name is not UTF-8"));
        }
        let Some(name) = normalize_entry_name(&raw_name).map_err(unsafe_entry)? else {
            continue; // "./" itself
        };
        let top = name.split('/').next().unwrap_or_default().to_string();
        index.top_level.insert(top);
        if kind == EntryType::Directory {
            continue;
        }
        if !seen.insert(name.clone()) {
            return Err(ArchiveError::DuplicateEntry {
                path: path.to_path_buf(),
                entry: name,
            });
        }
        let size = entry.size();
        on_file(&name, size, &mut entry).map_err(io_err)?;
        io::copy(&mut entry, &mut io::sink()).map_err(io_err)?;
        index.files.push((name, size));
    }
    // Reading to the end checks the gzip trailer (CRC and length) of every member; a tar
    // without its end-of-archive blocks is complete when the gzip stream is.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(io_err)?;
    Ok(index)
}

/// The gzip members of a stream, decompressed one after another as gzip(1) does:
/// concatenated members are one stream, and zero bytes after the last member (padding some
/// writers add) are ignored. Anything else after a member is an error, and a member cut
/// short fails on its missing trailer.
struct GzipMembers<R: BufRead> {
    member: Option<GzDecoder<R>>,
}

impl<R: BufRead> GzipMembers<R> {
    fn new(input: R) -> Self {
        GzipMembers {
            member: Some(GzDecoder::new(input)),
        }
    }
}

impl<R: BufRead> Read for GzipMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(member) = self.member.as_mut() else {
                return Ok(0);
            };
            let n = member.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let mut input = self.member.take().expect("a member").into_inner();
            let next = input.fill_buf()?;
            if next.first() == Some(&0x1f) {
                self.member = Some(GzDecoder::new(input));
            } else {
                skip_zero_padding(&mut input)?;
                return Ok(0);
            }
        }
    }
}

/// Consumes the rest of `input`, which must be zero bytes only.
fn skip_zero_padding(input: &mut impl BufRead) -> io::Result<()> {
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok(());
        }
        if chunk.iter().any(|b| *b != 0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected data after the gzip stream",
            ));
        }
        let n = chunk.len();
        input.consume(n);
    }
}

/// Reads until `buf` is full or the input ends; the number of bytes read.
pub(crate) fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Drops `./` and empty components; refuses absolute paths and `..`.
/// `Ok(None)` is the archive root itself.
fn normalize_entry_name(raw: &str) -> Result<Option<String>, &'static str> {
    if raw.starts_with('/') {
        return Err("absolute paths are not allowed");
    }
    let parts: Vec<&str> = raw.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    if parts.contains(&"..") {
        return Err("'..' path components are not allowed");
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_names() {
        assert_eq!(normalize_entry_name("./bundle.json"), Ok(Some("bundle.json".into())));
        assert_eq!(normalize_entry_name("bundle.json"), Ok(Some("bundle.json".into())));
        assert_eq!(normalize_entry_name("./"), Ok(None));
        assert_eq!(normalize_entry_name("."), Ok(None));
        assert_eq!(normalize_entry_name("./a//b/./c/"), Ok(Some("a/b/c".into())));
        assert!(normalize_entry_name("/etc/passwd").is_err());
        assert!(normalize_entry_name("../x").is_err());
        assert!(normalize_entry_name("a/../../x").is_err());
    }
}
