//! The mechanisms the conformance suite runs, one file each.

mod fifo;
mod mmap;
mod pipe;
mod posix_mq;
mod shm;
mod socket;
mod sysv_mq;

use crate::conformance::Mech;

/// Every mechanism under test.
pub fn all() -> Vec<Box<dyn Mech>> {
    vec![
        Box::new(pipe::Pipe),
        Box::new(fifo::Fifo),
        Box::new(sysv_mq::SysvMq),
        Box::new(posix_mq::PosixMq),
        Box::new(shm::Shm { label: "shm", spin: false, sysv: false }),
        Box::new(shm::Shm { label: "shm-spin", spin: true, sysv: false }),
        Box::new(shm::Shm { label: "sysv-shm", spin: false, sysv: true }),
        Box::new(socket::UNIX),
        Box::new(socket::SEQPACKET),
        Box::new(socket::TCP),
        Box::new(socket::Datagram),
        Box::new(mmap::MmapLog),
    ]
}
