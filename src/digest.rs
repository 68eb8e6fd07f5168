//! The one hex digest of the gateway: APQ hashes, persisted operations' ids, uploads'
//! `sha256`, and the dashboard's ETags are all `sha256_hex` of their bytes.

use sha2::{Digest, Sha256};

/// Lower-case hex of the sha256 of `bytes` (what the APQ protocol sends).
pub fn sha256_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        for nibble in [b >> 4, b & 0x0F] {
            if let Some(&d) = DIGITS.get(usize::from(nibble)) {
                out.push(char::from(d));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_is_the_apq_protocols_hex() {
        assert_eq!(
            super::sha256_hex(b"{__typename}"),
            "ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38"
        );
    }
}
