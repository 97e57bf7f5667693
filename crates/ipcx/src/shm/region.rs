//! [`Region`]: the one place that touches memory another process may change at any time.
//!
//! This module is allowed `unsafe` because shared memory cannot be reached otherwise. It
//! upholds one rule: **no Rust reference to plain bytes of the region is ever formed**.
//! Bytes are copied in and out with `sys::copy_bytes` (`ptr::copy_nonoverlapping` in
//! 2 KiB pieces) between the region and the caller's own buffers, and shared words are
//! reached only as atomics (`AtomicU32`/`AtomicU64`, whose interior mutability makes
//! concurrent access by another process sound). Every offset is checked against the region's length first, so a bad
//! offset is an error, never an access outside the mapping.
//!
//! Copies race with a peer that writes at the same time only when the peer breaks the
//! protocol (the ring publishes bytes before the index that makes them visible with
//! release/acquire ordering); what such a peer can cause is garbage in the caller's buffer,
//! which the ring's checks turn into `Corrupted`, never an access out of bounds.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::sys::{self, shm::Mapping};

#[derive(Debug)]
enum Backing {
    Map(#[allow(dead_code)] Mapping),
    Heap(#[allow(dead_code)] Box<[AtomicU64]>),
}

/// A range of memory that may be shared with another process: a mapping, or (for tests,
/// fuzzing and model checking) a heap buffer with the same access rules.
#[derive(Debug, Clone)]
pub struct Region {
    ptr: *mut u8,
    len: usize,
    writable: bool,
    _backing: std::sync::Arc<Backing>,
}

// SAFETY: the region owns its backing memory; all access is by atomics or by copies that
// take `&self`/`&mut self` like any value, so moving it between threads is sound.
unsafe impl Send for Region {}
// SAFETY: shared access (`&Region`) only performs atomic operations and copies, which are
// sound however many threads (or processes) do them at once; see the module docs.
unsafe impl Sync for Region {}

/// Why an access was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The range does not lie inside the region (or is misaligned for an atomic).
    OutOfBounds,
    /// The region is mapped read-only.
    ReadOnly,
}

impl Region {
    /// A region over a mapping.
    pub fn from_mapping(map: Mapping, writable: bool) -> Region {
        Region {
            ptr: map.as_ptr(),
            len: map.len(),
            writable,
            _backing: std::sync::Arc::new(Backing::Map(map)),
        }
    }

    /// A zeroed heap region of `len` bytes (rounded up to 8), 8-byte aligned.
    pub fn heap(len: usize) -> Region {
        let words: Box<[AtomicU64]> = (0..len.div_ceil(8)).map(|_| AtomicU64::new(0)).collect();
        // Move the words to their final owner first, then derive the pointer from the
        // atomics' cells there: writes through it are writes to interior-mutable memory,
        // and no later move of the box invalidates it (Miri's Stacked Borrows found the
        // pointer taken before the move).
        let backing = std::sync::Arc::new(Backing::Heap(words));
        let ptr = match &*backing {
            Backing::Heap(w) => w.as_ptr() as *mut u8,
            Backing::Map(_) => unreachable!("built as a heap backing just above"),
        };
        Region { ptr, len, writable: true, _backing: backing }
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether writes are allowed.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    #[inline]
    fn check(&self, off: usize, n: usize) -> Result<(), Access> {
        match off.checked_add(n) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(Access::OutOfBounds),
        }
    }

    /// Copy `out.len()` bytes from `off` into `out`.
    #[inline]
    pub fn copy_out(&self, off: usize, out: &mut [u8]) -> Result<(), Access> {
        self.check(off, out.len())?;
        // SAFETY: `off..off+len` lies inside the region (checked); `out` is the caller's
        // own memory, which cannot overlap a shared mapping or our heap buffer.
        unsafe { sys::copy_bytes(self.ptr.add(off), out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    /// Copy `out.len()` bytes from `off` into spare capacity of a vector and extend it.
    #[inline]
    pub fn copy_out_append(&self, off: usize, n: usize, out: &mut Vec<u8>) -> Result<(), Access> {
        self.check(off, n)?;
        // SAFETY: the source range lies inside the region (checked), never inside a
        // caller's vector.
        unsafe { sys::append_bytes(out, self.ptr.add(off), n) };
        Ok(())
    }

    /// Copy `data` into the region at `off`.
    #[inline]
    pub fn copy_in(&self, off: usize, data: &[u8]) -> Result<(), Access> {
        if !self.writable {
            return Err(Access::ReadOnly);
        }
        self.check(off, data.len())?;
        // SAFETY: the destination lies inside the writable region (checked); `data` is
        // caller memory that does not overlap it. The region's memory is only ever reached
        // through raw pointers and atomics, so no reference is invalidated.
        unsafe { sys::copy_bytes(data.as_ptr(), self.ptr.add(off), data.len()) };
        Ok(())
    }

    /// Fill `n` bytes at `off` with `byte`.
    pub fn fill(&self, off: usize, n: usize, byte: u8) -> Result<(), Access> {
        if !self.writable {
            return Err(Access::ReadOnly);
        }
        self.check(off, n)?;
        // SAFETY: as for `copy_in`.
        unsafe { std::ptr::write_bytes(self.ptr.add(off), byte, n) };
        Ok(())
    }

    /// Load the 4-byte aligned word at `off` (allowed on read-only regions).
    #[inline]
    pub fn load_u32(&self, off: usize, order: Ordering) -> Result<u32, Access> {
        Ok(self.atomic_u32(off)?.load(order))
    }

    /// Load the 8-byte aligned word at `off` (allowed on read-only regions).
    #[inline]
    pub fn load_u64(&self, off: usize, order: Ordering) -> Result<u64, Access> {
        Ok(self.atomic_u64(off)?.load(order))
    }

    /// The 4-byte aligned word at `off` as an atomic, for any operation (writable only:
    /// a store to a read-only mapping would fault).
    #[inline]
    pub fn u32_at(&self, off: usize) -> Result<&AtomicU32, Access> {
        if !self.writable {
            return Err(Access::ReadOnly);
        }
        self.atomic_u32(off)
    }

    /// The 8-byte aligned word at `off` as an atomic (writable only).
    #[inline]
    pub fn u64_at(&self, off: usize) -> Result<&AtomicU64, Access> {
        if !self.writable {
            return Err(Access::ReadOnly);
        }
        self.atomic_u64(off)
    }

    #[inline]
    fn atomic_u32(&self, off: usize) -> Result<&AtomicU32, Access> {
        self.check(off, 4)?;
        if (self.ptr as usize + off) % 4 != 0 {
            return Err(Access::OutOfBounds);
        }
        // SAFETY: the word lies inside the region and is aligned (checked); the region
        // outlives the returned reference; every access to shared words is atomic.
        Ok(unsafe { AtomicU32::from_ptr(self.ptr.add(off).cast()) })
    }

    #[inline]
    fn atomic_u64(&self, off: usize) -> Result<&AtomicU64, Access> {
        self.check(off, 8)?;
        if (self.ptr as usize + off) % 8 != 0 {
            return Err(Access::OutOfBounds);
        }
        // SAFETY: as for `u32_at`, with 8-byte alignment.
        Ok(unsafe { AtomicU64::from_ptr(self.ptr.add(off).cast()) })
    }
}

/// Plain data that may live in shared memory and be copied in and out of it.
///
/// # Safety
///
/// Implement only for `Copy` types that are `#[repr(C)]` (or primitive) with **no padding
/// bytes**, for which **every bit pattern is a valid value** (no `bool`, `char`, enums or
/// references), and which hold **no pointers or descriptors** (addresses and descriptor
/// numbers mean nothing in another process).
pub unsafe trait ShmSafe: Copy + 'static {}

macro_rules! shm_safe {
    ($($t:ty),*) => { $(
        // SAFETY: a primitive integer or float: no padding, every bit pattern valid.
        unsafe impl ShmSafe for $t {}
    )* };
}
shm_safe!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64);

// SAFETY: an array of padding-free, any-bit-pattern elements is itself such a type.
unsafe impl<T: ShmSafe, const N: usize> ShmSafe for [T; N] {}

impl Region {
    /// Copy a `T` out of the region at `off` (any alignment).
    pub fn read_value<T: ShmSafe>(&self, off: usize) -> Result<T, Access> {
        self.check(off, std::mem::size_of::<T>())?;
        // SAFETY: the range lies inside the region (checked); `ShmSafe` promises that any
        // bytes form a valid `T`; an unaligned read has no alignment requirement.
        Ok(unsafe { std::ptr::read_unaligned(self.ptr.add(off).cast::<T>()) })
    }

    /// Copy `v` into the region at `off` (any alignment).
    pub fn write_value<T: ShmSafe>(&self, off: usize, v: &T) -> Result<(), Access> {
        if !self.writable {
            return Err(Access::ReadOnly);
        }
        self.check(off, std::mem::size_of::<T>())?;
        // SAFETY: the range lies inside the writable region (checked); `v` is our own
        // value, which cannot overlap it.
        unsafe { std::ptr::write_unaligned(self.ptr.add(off).cast::<T>(), *v) };
        Ok(())
    }
}
