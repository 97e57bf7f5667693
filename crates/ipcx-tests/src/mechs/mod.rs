//! The mechanisms the conformance suite runs, one file each.

mod fifo;
mod pipe;
mod socket;

use crate::conformance::Mech;

/// Every mechanism under test.
pub fn all() -> Vec<Box<dyn Mech>> {
    vec![
        Box::new(pipe::Pipe),
        Box::new(fifo::Fifo),
        Box::new(socket::UNIX),
        Box::new(socket::SEQPACKET),
        Box::new(socket::TCP),
        Box::new(socket::Datagram),
    ]
}
