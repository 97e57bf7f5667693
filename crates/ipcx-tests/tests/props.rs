//! Arbitrary input never panics the decoders: the frame decoder over arbitrary bytes on a
//! real pipe, and the address parser over arbitrary strings.

use std::io::Write;

use ipcx::frame::{FdHolder, FdStream, StreamReceiver};
use ipcx::{Address, ErrorKind, Framing, Receiver};
use proptest::prelude::*;

fn decode_all(bytes: &[u8], framing: Framing) -> Vec<Vec<u8>> {
    let (r, w) = ipcx::sys::pipe().unwrap();
    let mut w = std::fs::File::from(w);
    w.write_all(bytes).unwrap(); // small inputs fit the pipe buffer
    drop(w);
    let mut rx =
        StreamReceiver::new(FdStream::new(FdHolder::Owned(r)).unwrap(), framing, "pipe:test");
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for _ in 0..bytes.len() + 2 {
        match rx.recv_into(&mut buf) {
            Ok(()) => out.push(buf.clone()),
            Err(e) => {
                assert!(
                    matches!(
                        e.kind(),
                        ErrorKind::Disconnected | ErrorKind::Corrupted | ErrorKind::TooLarge
                    ),
                    "unexpected error {e}"
                );
                break;
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn frame_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4096), n in 1usize..100) {
        for framing in [Framing::Length { max: 1000 }, Framing::Lines, Framing::Fixed(n), Framing::Raw] {
            decode_all(&bytes, framing);
        }
    }

    #[test]
    fn length_frames_round_trip(msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20)) {
        let mut wire = Vec::new();
        for m in &msgs {
            wire.extend_from_slice(&(m.len() as u32).to_le_bytes());
            wire.extend_from_slice(m);
        }
        prop_assert_eq!(decode_all(&wire, Framing::default()), msgs);
    }

    #[test]
    fn address_parser_never_panics(s in "\\PC{0,60}") {
        if let Ok(a) = Address::parse(&s) {
            // What parses prints back to something that parses to the same address.
            prop_assert_eq!(Address::parse(&a.to_string()).unwrap(), a);
        }
    }

    #[test]
    fn address_parser_on_scheme_like_input(
        scheme in prop::sample::select(vec!["pipe", "fifo", "sysv-mq", "posix-mq", "shm", "sysv-shm", "mmap", "unix", "unix-seqpacket", "unix-dgram", "tcp"]),
        body in "[/@a-z0-9:.\\[\\]=?&-]{0,40}",
    ) {
        let s = format!("{scheme}:{body}");
        match Address::parse(&s) {
            Ok(a) => prop_assert_eq!(Address::parse(&a.to_string()).unwrap(), a),
            Err(e) => prop_assert_eq!(e.kind(), ErrorKind::InvalidAddress),
        }
    }
}
