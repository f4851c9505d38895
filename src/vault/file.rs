//! An encrypted vault file with random access: `read_at`, `write_at`,
//! `set_len`, `sync`. Every byte returned has been authenticated; a chunk
//! that fails is reported as `Error::Corrupt` (EIO) naming the vault path.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use crate::crypto::{Cipher, NONCE_LEN, SecretKey, TAG_LEN};
use crate::error::{Error, Result};
use crate::format::chunk::{CHUNK_OVERHEAD, Geometry, chunk_aad};
use crate::format::header::{FileHeader, HEADER_LEN};

use super::backing::{self, Backing};
use super::growth::{self, Guard, Unguarded};
use super::keys::VaultKeys;
use super::sys;

/// How many plaintext bytes one batch of a large write seals before writing.
const BATCH_BYTES: u64 = 1 << 20;
/// From this many bytes on, one request's chunks are sealed/opened on all cores.
const PARALLEL_BYTES: usize = 128 * 1024;

/// Splits a buffer of sealed-chunk slots into one slice per chunk.
fn split_slots<'a>(mut buf: &'a mut [u8], lens: &[usize]) -> Vec<&'a mut [u8]> {
    let mut out = Vec::with_capacity(lens.len());
    for &l in lens {
        let (a, b) = std::mem::take(&mut buf).split_at_mut(l + CHUNK_OVERHEAD as usize);
        out.push(a);
        buf = b;
    }
    out
}

fn buf_len(lens: &[usize]) -> usize {
    lens.iter().sum()
}

pub struct SealedFile {
    file: Arc<dyn Backing>,
    dek: Cipher,
    file_id: [u8; 16],
    geo: Geometry,
    size: u64,
    /// Largest plaintext size the backing filesystem allows (found at the
    /// first growth; it does not change).
    max_size: Option<u64>,
    /// Ciphertext path (or inode) for error messages; never plaintext.
    label: String,
    /// A size change under way (old, new): set while one runs, so a request
    /// that panicked part-way can be undone (`recover_after_panic`).
    changing: Option<(u64, u64)>,
}

/// Why a header does not open when its config has not synced (yet).
pub(crate) const UNKNOWN_GENERATION: &str =
    "written with a master-key generation this config does not have (config not synced yet?)";

impl SealedFile {
    /// Initialises a freshly created, empty vault file: header + one empty final chunk.
    pub(crate) fn create(fd: OwnedFd, keys: &VaultKeys, label: String) -> Result<Self> {
        let (header, dek) = keys.new_file()?;
        let f = SealedFile {
            file: backing::wrap(File::from(fd)),
            dek,
            file_id: header.file_id,
            geo: keys.geometry,
            size: 0,
            max_size: None,
            label,
            changing: None,
        };
        let mut buf = header.encode().to_vec();
        f.seal_chunk_into(&mut buf, 0, &[], true)?;
        // The file was created empty (O_EXCL), so one write makes it whole.
        f.file.write_all_at(&buf, 0)?;
        Ok(f)
    }

    /// Whether `e`, from opening a vault file, is damage that emptying the
    /// file may replace (`recreate_empty`): anything that fails
    /// authentication or is malformed (cut short, a foreign or newer
    /// header), but not a header of a key generation this config lacks or
    /// a directory still syncing, which read fine once the config or the
    /// directory has synced.
    pub fn damage_to_empty(e: &Error) -> bool {
        matches!(e, Error::Corrupt(m) if !m.contains(UNKNOWN_GENERATION)) && !e.is_unsynced()
    }

    /// Empties the vault file `fd` whatever state its bytes are in, with a
    /// fresh header and file key. A truncate to zero needs none of the old
    /// bytes, so a file whose header or chunks fail authentication can be
    /// emptied and rewritten (`cp backup damaged`), as on a kernel
    /// filesystem; nothing unauthenticated is ever read.
    pub(crate) fn recreate_empty(fd: OwnedFd, keys: &VaultKeys, label: String) -> Result<Self> {
        super::sys::ftruncate(fd.as_fd(), 0)?;
        Self::create(fd, keys, label)
    }

    /// Reads and opens the header of the vault file `file`: its file id and
    /// DEK. A header of a generation the keys lack says so.
    fn open_header(
        file: &dyn Backing,
        keys: &VaultKeys,
        label: &str,
    ) -> Result<([u8; 16], SecretKey)> {
        let mut hb = [0u8; HEADER_LEN];
        let n = read_full_at(file, &mut hb, 0)?;
        let corrupt = |why: &str| Error::Corrupt(format!("{label}: {why}"));
        if n < HEADER_LEN {
            return Err(corrupt(
                "shorter than a sealfs header (not a sealfs file, or truncated)",
            ));
        }
        let header = FileHeader::decode(&hb).map_err(|e| corrupt(&format!("header: {e:?}")))?;
        if !keys.generations().any(|g| g == header.generation) {
            return Err(corrupt(&format!(
                "{UNKNOWN_GENERATION} ({})",
                header.generation
            )));
        }
        let dek = keys.unwrap_dek(&header).ok_or_else(|| {
            corrupt("file key failed authentication (tampered header or foreign file)")
        })?;
        Ok((header.file_id, dek))
    }

    /// Opens an existing vault file: parses the header, unwraps the DEK and
    /// checks that the length is one a well-formed file can have.
    pub(crate) fn open(fd: OwnedFd, keys: &VaultKeys, label: String) -> Result<Self> {
        let file = backing::wrap(File::from(fd));
        let (file_id, dek) = Self::open_header(&*file, keys, &label)?;
        let len = file.byte_len()?;
        let size = keys.geometry.plain_size(len).ok_or_else(|| {
            Error::Corrupt(format!(
                "{label}: length is not that of a complete sealfs file (truncated?)"
            ))
        })?;
        let f = Self::assemble(file, &dek, file_id, keys.geometry, size, label);
        // The final chunk carries the `last` mark: authenticating it here
        // catches truncation to any chunk boundary (even to an "empty" file)
        // before a reader or a stat-only open believes the size.
        f.read_chunk(f.geo.last_chunk(size), size)?;
        Ok(f)
    }

    /// The size a mount shows for a vault file of `sealed` bytes that is not
    /// open (see `Geometry::shown_size`). A file of an empty file's length is
    /// opened (`open`) and its one chunk authenticated first: one cut to that
    /// length would otherwise show as a valid empty file, and no read would
    /// ever check it. One that fails shows one byte, so a reader gets EIO.
    pub fn shown_size(
        keys: &VaultKeys,
        sealed: u64,
        open: impl FnOnce() -> Result<OwnedFd>,
        label: impl FnOnce() -> String,
    ) -> u64 {
        let n = keys.geometry.shown_size(sealed);
        if n != 0 {
            return n;
        }
        let label = label();
        match open().and_then(|fd| Self::open(fd, keys, label.clone())) {
            Ok(_) => 0,
            Err(e) => {
                super::warn_once(&label, &format!("not readable: {e}"));
                1
            }
        }
    }

    /// Opens a vault file for checking: the header must open, nothing else
    /// is assumed (see `check_chunk`). Returns the file and its length.
    pub(crate) fn open_for_check(
        fd: OwnedFd,
        keys: &VaultKeys,
        label: String,
    ) -> Result<(Self, u64)> {
        let file = backing::wrap(File::from(fd));
        let (file_id, dek) = Self::open_header(&*file, keys, &label)?;
        let len = file.byte_len()?;
        let size = keys.geometry.plain_size_for_stat(len);
        Ok((
            Self::assemble(file, &dek, file_id, keys.geometry, size, label),
            len,
        ))
    }

    fn assemble(
        file: Arc<dyn Backing>,
        dek: &SecretKey,
        file_id: [u8; 16],
        geo: Geometry,
        size: u64,
        label: String,
    ) -> Self {
        SealedFile {
            file,
            dek: Cipher::new(dek),
            file_id,
            geo,
            size,
            max_size: None,
            label,
            changing: None,
        }
    }

    /// Opens chunk `index` of a file `len` bytes long as it is on disk,
    /// whichever "last" mark it carries: its plaintext and that mark.
    pub(crate) fn check_chunk(&self, index: u64, len: u64) -> Result<(Vec<u8>, bool)> {
        let off = self.geo.chunk_offset(index);
        let avail = len.saturating_sub(off).min(self.geo.sealed_chunk_len());
        let mut sealed = vec![0u8; avail as usize];
        if read_full_at(&*self.file, &mut sealed, off)? != sealed.len() {
            return Err(self.corrupt(index));
        }
        let mut copy = sealed.clone();
        if avail == self.geo.sealed_chunk_len() {
            if let Ok(p) = self.open_chunk(&mut copy, index, false) {
                return Ok((p.to_vec(), false));
            }
        }
        let p = self.open_chunk(&mut sealed, index, true)?;
        Ok((p.to_vec(), true))
    }

    /// Number of chunk positions in a file `len` bytes long (a partial tail counts).
    pub(crate) fn chunk_slots(&self, len: u64) -> u64 {
        len.saturating_sub(HEADER_LEN as u64)
            .div_ceil(self.geo.sealed_chunk_len())
    }

    /// Plaintext size.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.fd()
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// Re-reads the size from the ciphertext length (after an outside change).
    pub fn refresh_size(&mut self) -> Result<()> {
        let len = self.file.byte_len()?;
        self.size = self.geo.plain_size_for_stat(len);
        Ok(())
    }

    fn corrupt(&self, index: u64) -> Error {
        log::error!("authentication failed: {} chunk {index}", self.label);
        Error::Corrupt(format!("{}: chunk {index}", self.label))
    }

    /// Appends the sealed form of `plain` (chunk `index`) to `out`.
    fn seal_chunk_into(
        &self,
        out: &mut Vec<u8>,
        index: u64,
        plain: &[u8],
        last: bool,
    ) -> Result<()> {
        let start = out.len();
        out.resize(start + NONCE_LEN, 0);
        out.extend_from_slice(plain);
        out.resize(out.len() + TAG_LEN, 0);
        self.seal_slots(
            &mut out[start..],
            index,
            &[plain.len()],
            index + u64::from(!last),
        )
    }

    /// Seals consecutive chunk slots in place. `buf` holds, for each chunk
    /// from `first`, `nonce space || plaintext || tag space`, with plaintext
    /// lengths `lens`; `file_last` is the index of the file's final chunk.
    /// Nonces come from one call to the OS generator; large batches are
    /// sealed on all cores.
    fn seal_slots(&self, buf: &mut [u8], first: u64, lens: &[usize], file_last: u64) -> Result<()> {
        let mut nonces = vec![0u8; NONCE_LEN * lens.len()];
        crate::crypto::random_bytes(&mut nonces)?;
        let slots = split_slots(buf, lens);
        let seal = |(k, slot): (usize, &mut [u8])| -> Result<()> {
            let i = first + k as u64;
            let (nonce, rest) = slot.split_at_mut(NONCE_LEN);
            nonce.copy_from_slice(&nonces[k * NONCE_LEN..(k + 1) * NONCE_LEN]);
            let n: [u8; NONCE_LEN] = (&*nonce)
                .try_into()
                .map_err(|_| Error::errno(libc::EINVAL))?;
            let body_len = rest.len() - TAG_LEN;
            let (body, tag) = rest.split_at_mut(body_len);
            let t =
                self.dek
                    .seal_with_nonce(&n, &chunk_aad(&self.file_id, i, i == file_last), body)?;
            tag.copy_from_slice(&t);
            Ok(())
        };
        if buf_len(lens) >= PARALLEL_BYTES {
            use rayon::prelude::*;
            slots.into_par_iter().enumerate().try_for_each(seal)
        } else {
            slots.into_iter().enumerate().try_for_each(seal)
        }
    }

    /// Opens consecutive sealed chunks in place (layout as in `seal_slots`).
    fn open_slots(&self, buf: &mut [u8], first: u64, lens: &[usize], file_last: u64) -> Result<()> {
        let slots = split_slots(buf, lens);
        let open = |(k, slot): (usize, &mut [u8])| -> Result<()> {
            let i = first + k as u64;
            self.open_chunk(slot, i, i == file_last).map(drop)
        };
        if buf_len(lens) >= PARALLEL_BYTES {
            use rayon::prelude::*;
            slots.into_par_iter().enumerate().try_for_each(open)
        } else {
            slots.into_iter().enumerate().try_for_each(open)
        }
    }

    /// Opens one sealed chunk in place; returns the plaintext slice.
    fn open_chunk<'a>(&self, sealed: &'a mut [u8], index: u64, last: bool) -> Result<&'a [u8]> {
        if sealed.len() < CHUNK_OVERHEAD as usize {
            return Err(self.corrupt(index));
        }
        let (nonce, rest) = sealed.split_at_mut(NONCE_LEN);
        let body_len = rest.len() - TAG_LEN;
        let (body, tag) = rest.split_at_mut(body_len);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| self.corrupt(index))?;
        let tag: [u8; TAG_LEN] = (&*tag).try_into().map_err(|_| self.corrupt(index))?;
        if !self
            .dek
            .open(&nonce, &chunk_aad(&self.file_id, index, last), body, &tag)
        {
            return Err(self.corrupt(index));
        }
        Ok(body)
    }

    /// Reads and authenticates the plaintext of chunk `index` of the file as
    /// it is on disk, whose plaintext size is `size`.
    fn read_chunk(&self, index: u64, size: u64) -> Result<Vec<u8>> {
        let plen = self.geo.chunk_plain_len(size, index);
        let mut sealed = vec![0u8; (plen + CHUNK_OVERHEAD) as usize];
        if read_full_at(&*self.file, &mut sealed, self.geo.chunk_offset(index))? != sealed.len() {
            return Err(self.corrupt(index));
        }
        let last = index == self.geo.last_chunk(size);
        let plain = self.open_chunk(&mut sealed, index, last)?.to_vec();
        Ok(plain)
    }

    /// Reads up to `buf.len()` bytes at `offset`; returns the count (0 at end of file).
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let v = self.read_vec(offset, buf.len())?;
        buf[..v.len()].copy_from_slice(&v);
        Ok(v.len())
    }

    /// Reads up to `len` bytes at `offset` into a new buffer (empty at end of
    /// file). The chunks are read with one pread, opened in place (on all
    /// cores for large reads) and compacted in place, so the plaintext is
    /// never copied into a second buffer.
    pub fn read_vec(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        if offset >= self.size || len == 0 {
            return Ok(Vec::new());
        }
        let c = self.geo.chunk_size;
        let end = (offset + len as u64).min(self.size);
        let first = offset / c;
        let last = (end - 1) / c;
        let file_last = self.geo.last_chunk(self.size);
        let ct_start = self.geo.chunk_offset(first);
        let ct_end = self.geo.chunk_offset(last)
            + self.geo.chunk_plain_len(self.size, last)
            + CHUNK_OVERHEAD;
        let mut sealed = vec![0u8; (ct_end - ct_start) as usize];
        let got = read_full_at(&*self.file, &mut sealed, ct_start)?;
        if got != sealed.len() {
            return Err(self.corrupt(first + got as u64 / self.geo.sealed_chunk_len()));
        }
        let lens: Vec<usize> = (first..=last)
            .map(|i| self.geo.chunk_plain_len(self.size, i) as usize)
            .collect();
        self.open_slots(&mut sealed, first, &lens, file_last)?;
        // Move each chunk's wanted plaintext down over the nonces and tags.
        let mut src = 0usize;
        let mut dst = 0usize;
        for (k, i) in (first..=last).enumerate() {
            let cs = i * c;
            let from = (offset.max(cs) - cs) as usize;
            let to = (end.min(cs + c) - cs) as usize;
            let at = src + NONCE_LEN + from;
            sealed.copy_within(at..at + (to - from), dst);
            dst += to - from;
            src += lens[k] + CHUNK_OVERHEAD as usize;
        }
        sealed.truncate(dst);
        Ok(sealed)
    }

    /// Writes `data` at `offset`, growing the file (with zeros in any gap) as needed.
    pub fn write_at(&mut self, data: &[u8], offset: u64) -> Result<usize> {
        self.write_at_guarded(data, offset, &Unguarded)
    }

    /// `write_at` under a caller's `guard` (see `growth`).
    pub fn write_at_guarded(
        &mut self,
        data: &[u8],
        offset: u64,
        guard: &dyn Guard,
    ) -> Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(Error::errno(libc::EFBIG))?;
        self.modify(offset, end, Some(data), guard)?;
        Ok(data.len())
    }

    /// Overwrites `[offset, offset+len)` with zeros (punch hole, zero range), within the file only.
    pub fn zero_range(&mut self, offset: u64, len: u64) -> Result<()> {
        let end = offset.saturating_add(len).min(self.size);
        if offset >= end {
            return Ok(());
        }
        self.modify(offset, end, None, &Unguarded)
    }

    /// Truncates or extends (with zeros) to `size`.
    pub fn set_len(&mut self, size: u64) -> Result<()> {
        self.set_len_guarded(size, &Unguarded)
    }

    /// `set_len` under a caller's `guard` (see `growth`).
    pub fn set_len_guarded(&mut self, size: u64, guard: &dyn Guard) -> Result<()> {
        if size > i64::MAX as u64 {
            return Err(Error::errno(libc::EFBIG));
        }
        if size > self.size {
            return self.modify(self.size, size, None, guard);
        }
        if size == self.size {
            return Ok(());
        }
        let k = self.geo.last_chunk(size);
        let mut plain = if size == 0 {
            Vec::new()
        } else {
            self.read_chunk(k, self.size)?
        };
        plain.truncate((size - k * self.geo.chunk_size) as usize);
        self.changing = Some((self.size, size));
        self.write_final_chunk(k, &plain)?;
        self.size = size;
        self.changing = None;
        Ok(())
    }

    /// After a request panicked while it held this file (its lock is
    /// poisoned): finishes or undoes the size change it was making, so the
    /// size and the final chunk agree again, and logs it with the vault path.
    pub fn recover_after_panic(&mut self) {
        log::error!(
            "{}: a request panicked while changing this file; its state is reloaded from the vault",
            self.label
        );
        match self.changing.take() {
            Some((old, new)) if new > old => self.restore_after_failed_growth(old, new),
            Some((old, new)) => {
                // A cut: done if the new final chunk is in place, else untouched.
                let k = self.geo.last_chunk(new);
                if self.read_chunk(k, new).is_ok() {
                    let _ = self.file.set_len(self.geo.sealed_len(new));
                    self.size = new;
                } else {
                    self.size = old;
                }
            }
            None => {
                let _ = self.refresh_size();
            }
        }
    }

    /// Makes chunk `k` (holding `plain`) the file's final chunk: sealed with
    /// the `last` mark, written, and everything after it cut. New chunk
    /// first, then the cut: a crash in between leaves a final chunk followed
    /// by stale bytes (EIO at the tail), never a file that lost its only chunk.
    fn write_final_chunk(&self, k: u64, plain: &[u8]) -> Result<()> {
        let mut out = Vec::with_capacity(plain.len() + CHUNK_OVERHEAD as usize);
        self.seal_chunk_into(&mut out, k, plain, true)?;
        let off = self.geo.chunk_offset(k);
        self.file.write_all_at(&out, off)?;
        self.file.set_len(off + out.len() as u64)?;
        Ok(())
    }

    /// Rewrites the chunks covering `[min(offset, size), end)`: old bytes kept
    /// outside `[offset, end)`, `data` (or zeros) inside, zeros in any gap
    /// beyond the old end. Never shrinks.
    fn modify(
        &mut self,
        offset: u64,
        end: u64,
        data: Option<&[u8]>,
        guard: &dyn Guard,
    ) -> Result<()> {
        if end > i64::MAX as u64 {
            return Err(Error::errno(libc::EFBIG));
        }
        let c = self.geo.chunk_size;
        let old = self.size;
        let new = old.max(end);
        self.changing = (new > old).then_some((old, new));
        if new > old {
            let max = *self
                .max_size
                .get_or_insert_with(|| growth::max_plain_size(self.file.fd(), &self.geo));
            growth::admit(
                self.file.fd(),
                &self.geo,
                self.geo.sealed_len(old),
                new,
                max,
            )?;
        }
        let start = offset.min(old);
        let mut first = start / c;
        if new > old && old > 0 {
            // The old final chunk loses its `last` mark.
            first = first.min(self.geo.last_chunk(old));
        }
        let file_last = self.geo.last_chunk(new);
        // Chunks past the written range are untouched (when growing, the range
        // reaches the new end anyway).
        let last = (end - 1) / c;
        let batch = (BATCH_BYTES / c).max(1);
        let mut b0 = first;
        while b0 <= last {
            if new > old && b0 > first && !guard.keep_going() {
                self.restore_after_failed_growth(old, new);
                return Err(Error::errno(libc::EINTR));
            }
            let b1 = (b0 + batch - 1).min(last);
            let mut out =
                Vec::with_capacity(((b1 - b0 + 1) * self.geo.sealed_chunk_len()) as usize);
            let mut lens = Vec::with_capacity((b1 - b0 + 1) as usize);
            for i in b0..=b1 {
                let cs = i * c;
                let ce = (cs + c).min(new);
                let at = out.len() + NONCE_LEN;
                let (from, to) = (offset.max(cs), end.min(ce));
                if let (Some(d), true) = (data, from == cs && to == ce) {
                    // Whole chunk from the caller's data: copy once, no zero fill.
                    out.extend_from_slice(&[0u8; NONCE_LEN]);
                    out.extend_from_slice(&d[(from - offset) as usize..(to - offset) as usize]);
                    out.extend_from_slice(&[0u8; TAG_LEN]);
                    lens.push((ce - cs) as usize);
                    continue;
                }
                out.resize(at + (ce - cs) as usize + TAG_LEN, 0);
                let plain = &mut out[at..at + (ce - cs) as usize];
                // Old bytes of this chunk that the new data does not fully cover.
                let old_end = (cs + c).min(old);
                if cs < old && !(offset <= cs && end >= old_end) {
                    let old_plain = self.read_chunk(i, old)?;
                    plain[..old_plain.len()].copy_from_slice(&old_plain);
                }
                if from < to {
                    let dst = &mut plain[(from - cs) as usize..(to - cs) as usize];
                    match data {
                        Some(d) => dst
                            .copy_from_slice(&d[(from - offset) as usize..(to - offset) as usize]),
                        None => dst.fill(0),
                    }
                }
                lens.push((ce - cs) as usize);
            }
            if let Err(e) = self.seal_slots(&mut out, b0, &lens, file_last) {
                self.restore_after_failed_growth(old, new);
                return Err(e);
            }
            sys::crash_point();
            if let Err(e) = self.file.write_all_at(&out, self.geo.chunk_offset(b0)) {
                self.restore_after_failed_growth(old, new);
                return Err(e.into());
            }
            b0 = b1 + 1;
        }
        self.size = new;
        self.changing = None;
        Ok(())
    }

    /// After a growing write failed part-way (ENOSPC, I/O error), puts the
    /// file back to its old length with its old final chunk marked last, so
    /// the failure does not leave a tail that can never be read or appended.
    fn restore_after_failed_growth(&mut self, old: u64, new: u64) {
        self.changing = None;
        if new <= old {
            let _ = self.refresh_size();
            return;
        }
        let restore = || -> Result<()> {
            let k = self.geo.last_chunk(old);
            let mut plain = if old == 0 {
                Vec::new()
            } else {
                // Chunk k may already be resealed as a non-final chunk of the new size.
                self.read_chunk(k, new)
                    .or_else(|_| self.read_chunk(k, old))?
            };
            plain.truncate((old - k * self.geo.chunk_size) as usize);
            self.write_final_chunk(k, &plain)
        };
        match restore() {
            Ok(()) => self.size = old,
            Err(e) => {
                log::error!(
                    "{}: could not restore the file after a failed write: {e}",
                    self.label
                );
                let _ = self.refresh_size();
            }
        }
    }

    /// Flushes data (and with `!datasync`, metadata) to stable storage.
    pub fn sync(&self, datasync: bool) -> Result<()> {
        if datasync {
            self.file.sync(true)?;
        } else {
            self.file.sync(false)?;
        }
        Ok(())
    }
}

/// `pread` until `buf` is full or end of file; returns the bytes read.
fn read_full_at(f: &dyn Backing, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
