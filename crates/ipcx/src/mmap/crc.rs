//! CRC-32C (Castagnoli), table-driven, eight bytes per step ("slicing by 8").
//!
//! Polynomial 0x1EDC6F41 (reflected 0x82F63B78), initial value 0xFFFFFFFF, input and
//! output reflected, final XOR 0xFFFFFFFF: the CRC of iSCSI, ext4 and SSE4.2's `crc32`
//! instruction. The check value of the ASCII string "123456789" is 0xE3069283.
//!
//! Where the CPU has SSE4.2, [`update`] uses its `crc32` instruction instead (same result,
//! several times faster); [`update_table`] is the portable code, always available. The
//! instruction takes three cycles to give its result but can start one a cycle, so long
//! inputs are cut into three interleaved streams whose CRCs are joined with the "shift by
//! N zero bytes" tables below (the method of Mark Adler's `crc32c.c`).

const POLY: u32 = 0x82f6_3b78;

const fn tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut s = 1;
        while s < 8 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            s += 1;
        }
        i += 1;
    }
    t
}

static T: [[u32; 256]; 8] = tables();

/// Bytes per stream of a long three-way block.
pub(crate) const LONG: usize = 8192;
/// Bytes per stream of a short three-way block.
pub(crate) const SHORT: usize = 256;

/// `mat` (a GF(2) 32x32 matrix, one column per bit) times `vec`.
const fn gf2_times(mat: &[u32; 32], mut vec: u32) -> u32 {
    let mut sum = 0;
    let mut i = 0;
    while vec != 0 {
        if vec & 1 != 0 {
            sum ^= mat[i];
        }
        vec >>= 1;
        i += 1;
    }
    sum
}

const fn gf2_square(mat: &[u32; 32]) -> [u32; 32] {
    let mut sq = [0u32; 32];
    let mut n = 0;
    while n < 32 {
        sq[n] = gf2_times(mat, mat[n]);
        n += 1;
    }
    sq
}

/// The operator that feeds `len` zero bytes (a power of two) through the CRC register,
/// laid out as four byte-indexed tables.
const fn zeros_tables(len: usize) -> [[u32; 256]; 4] {
    // One zero bit.
    let mut op = [0u32; 32];
    op[0] = POLY;
    let mut n = 1;
    while n < 32 {
        op[n] = 1 << (n - 1);
        n += 1;
    }
    // Square up to one zero byte (8 bits), then once per doubling of the length.
    op = gf2_square(&op);
    op = gf2_square(&op);
    op = gf2_square(&op);
    let mut l = len;
    while l > 1 {
        op = gf2_square(&op);
        l >>= 1;
    }
    let mut t = [[0u32; 256]; 4];
    let mut i = 0;
    while i < 256 {
        t[0][i] = gf2_times(&op, i as u32);
        t[1][i] = gf2_times(&op, (i as u32) << 8);
        t[2][i] = gf2_times(&op, (i as u32) << 16);
        t[3][i] = gf2_times(&op, (i as u32) << 24);
        i += 1;
    }
    t
}

static SHIFT_LONG: [[u32; 256]; 4] = zeros_tables(LONG);
static SHIFT_SHORT: [[u32; 256]; 4] = zeros_tables(SHORT);

fn shift(t: &[[u32; 256]; 4], c: u32) -> u32 {
    t[0][(c & 0xff) as usize]
        ^ t[1][((c >> 8) & 0xff) as usize]
        ^ t[2][((c >> 16) & 0xff) as usize]
        ^ t[3][(c >> 24) as usize]
}

/// The raw CRC register `c` advanced over [`LONG`] zero bytes.
pub(crate) fn shift_long(c: u32) -> u32 {
    shift(&SHIFT_LONG, c)
}

/// The raw CRC register `c` advanced over [`SHORT`] zero bytes.
pub(crate) fn shift_short(c: u32) -> u32 {
    shift(&SHIFT_SHORT, c)
}

/// Continue a CRC-32C over `data`; start with `update(0, ...)`.
pub fn update(crc: u32, data: &[u8]) -> u32 {
    crate::sys::mmap::crc32c_hw(crc, data).unwrap_or_else(|| update_table(crc, data))
}

/// [`update`] with the tables only, whatever the CPU.
pub fn update_table(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    let mut chunks = data.chunks_exact(8);
    for ch in &mut chunks {
        let lo = u32::from_le_bytes([ch[0], ch[1], ch[2], ch[3]]) ^ c;
        let hi = u32::from_le_bytes([ch[4], ch[5], ch[6], ch[7]]);
        c = T[7][(lo & 0xff) as usize]
            ^ T[6][((lo >> 8) & 0xff) as usize]
            ^ T[5][((lo >> 16) & 0xff) as usize]
            ^ T[4][(lo >> 24) as usize]
            ^ T[3][(hi & 0xff) as usize]
            ^ T[2][((hi >> 8) & 0xff) as usize]
            ^ T[1][((hi >> 16) & 0xff) as usize]
            ^ T[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        c = (c >> 8) ^ T[0][((c ^ u32::from(b)) & 0xff) as usize];
    }
    !c
}

/// The CRC-32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    update(0, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bitwise(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            }
        }
        !c
    }

    #[test]
    fn known_values() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0u8; 4]), 0x48674bc7);
    }

    #[test]
    fn sliced_equals_bitwise_and_update_chains() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 31 + 7) as u8).collect();
        for n in [0, 1, 7, 8, 9, 63, 64, 65, 999, 1000] {
            assert_eq!(crc32c(&data[..n]), bitwise(&data[..n]), "{n}");
            assert_eq!(update_table(0, &data[..n]), bitwise(&data[..n]), "{n}");
        }
        assert_eq!(update(crc32c(&data[..100]), &data[100..]), crc32c(&data));
    }

    #[test]
    fn three_way_blocks_equal_the_table() {
        // Lengths around the short (3 x 256) and long (3 x 8192) blocks, and odd starts.
        let data: Vec<u8> =
            (0..80_008u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for n in [767, 768, 769, 1024, 1028, 1543, 4096, 24_575, 24_576, 24_583, 65_536, 79_999] {
            for start in [0, 1, 5] {
                let d = &data[start..start + n];
                assert_eq!(crc32c(d), update_table(0, d), "len {n} from {start}");
                assert_eq!(update(0x1234_5678, d), update_table(0x1234_5678, d), "len {n}");
            }
        }
    }

    #[test]
    fn shift_tables_feed_zero_bytes() {
        // Shifting the register over N zeros is the same as running N zero bytes through it.
        for c in [1u32, 0xdead_beef, 0x8000_0000, 0xffff_ffff] {
            let by_bytes = |n: usize| !update_table(!c, &vec![0u8; n]);
            assert_eq!(shift_short(c), by_bytes(SHORT));
            assert_eq!(shift_long(c), by_bytes(LONG));
        }
    }
}
