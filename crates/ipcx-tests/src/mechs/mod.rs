//! The mechanisms the conformance suite runs, one file each.

mod fifo;
mod mmap;
mod pipe;

use crate::conformance::Mech;

/// Every mechanism under test.
pub fn all() -> Vec<Box<dyn Mech>> {
    vec![Box::new(pipe::Pipe), Box::new(fifo::Fifo), Box::new(mmap::MmapLog)]
}
