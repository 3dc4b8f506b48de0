//! The read-only memory map under the decoded-data cache ([`cache`](crate::data::cache)).

use std::fs::File;

use memmap2::Mmap;

/// Maps a data-cache file read-only, so that loading the cache copies no pixels.
///
/// Only for the cache's files: [`cache`](crate::data::cache) replaces them by an atomic
/// rename and never writes one in place, which is what makes the mapping sound.
pub(crate) fn map_cache_file(file: &File) -> std::io::Result<Mmap> {
    // SAFETY: a cache file is only ever replaced by an atomic rename, never written in place,
    // so the mapped bytes do not change while the map lives.
    unsafe { Mmap::map(file) }
}
