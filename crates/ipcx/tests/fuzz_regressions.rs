//! Every input a fuzz target (`fuzz/`) ever crashed on, kept as a test so the bug stays
//! fixed. Each test says which target found it and what was wrong.

use ipcx::Address;

/// The address property the `addr` fuzz target checks: an accepted address prints to a
/// string that parses back to the same address.
fn round_trips_or_is_refused(s: &str) {
    if let Ok(a) = Address::parse(s) {
        let printed = a.to_string();
        let again = Address::parse(&printed)
            .unwrap_or_else(|e| panic!("{s:?} printed as {printed:?}, which does not parse: {e}"));
        assert_eq!(a, again, "{s:?} -> {printed:?}");
    }
}

/// `addr`: a TCP host with a stray `[` (`tcp:[[x]:5`) was accepted as host `[x` and
/// printed as `tcp:[x:5`, which does not parse. Brackets inside a host are now refused.
#[test]
fn addr_stray_bracket_in_tcp_host() {
    let s = "tcp:[[ifoeee\u{2}\0\0\0\u{8}\u{0}2]:5?max=0x8";
    round_trips_or_is_refused(s);
    assert!(Address::parse("tcp:[[x]:5").is_err());
    assert!(Address::parse("tcp:a]b:5").is_err());
    round_trips_or_is_refused("tcp:[::1]:5");
    round_trips_or_is_refused("tcp:[localhost]:5");
}
