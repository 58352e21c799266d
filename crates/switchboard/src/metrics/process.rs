//! The process's resident memory, read when `/metrics` is scraped: the figure an operator
//! compares with the container's limit. Linux only (`/proc`); elsewhere it is not known.

use std::sync::OnceLock;

/// Resident set size in bytes: `/proc/self/statm` counts it in pages.
pub fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// The kernel's page size, from the auxiliary vector it handed the process (`AT_PAGESZ`); 4096,
/// the usual size, if that cannot be read. Read once.
fn page_size() -> u64 {
    static PAGE_SIZE: OnceLock<u64> = OnceLock::new();
    *PAGE_SIZE.get_or_init(|| {
        std::fs::read("/proc/self/auxv")
            .ok()
            .and_then(|auxv| auxv_value(&auxv, AT_PAGESZ))
            .filter(|&size| size > 0)
            .unwrap_or(4096)
    })
}

/// The auxiliary vector's key for the page size (`<elf.h>`).
const AT_PAGESZ: u64 = 6;

/// The value of `key` in an auxiliary vector: native-endian machine-word pairs (key, value).
fn auxv_value(auxv: &[u8], key: u64) -> Option<u64> {
    const WORD: usize = std::mem::size_of::<usize>();
    let word = |bytes: &[u8]| -> u64 {
        let mut buf = [0u8; WORD];
        buf.copy_from_slice(bytes);
        usize::from_ne_bytes(buf) as u64
    };
    auxv.chunks_exact(2 * WORD)
        .map(|pair| (word(&pair[..WORD]), word(&pair[WORD..])))
        .find(|&(k, _)| k == key)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auxv_value_finds_the_key_among_pairs() {
        let mut auxv = Vec::new();
        for (key, value) in [(3usize, 77usize), (6, 16384), (0, 0)] {
            auxv.extend_from_slice(&key.to_ne_bytes());
            auxv.extend_from_slice(&value.to_ne_bytes());
        }
        assert_eq!(auxv_value(&auxv, AT_PAGESZ), Some(16384));
        assert_eq!(auxv_value(&auxv, 99), None);
        assert_eq!(auxv_value(&auxv[..5], AT_PAGESZ), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn resident_memory_is_read_on_linux() {
        let bytes = resident_memory_bytes().expect("statm");
        assert!(bytes > 1 << 20, "{bytes}");
        assert_eq!(bytes % page_size(), 0);
    }
}
