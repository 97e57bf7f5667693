//! The address parser over arbitrary strings: it never panics, and an address it accepts
//! prints back to a string that parses to the same address (the canonical form is stable).
// Shared by the fuzz target and the corpus replay test (crates/ipcx/tests).

/// Run one input; panics on any violation.
pub fn check(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(a) = ipcx::Address::parse(s) {
        let printed = a.to_string();
        let again = ipcx::Address::parse(&printed)
            .unwrap_or_else(|e| panic!("{s:?} printed as {printed:?}, which does not parse: {e}"));
        assert_eq!(a, again, "{s:?} -> {printed:?} changed meaning");
        assert_eq!(again.to_string(), printed, "printing is not stable");
        // The typed getters never panic on what the parser accepted.
        let _ = a.mode();
        let _ = a.framing();
        for key in [
            "max", "maxmsg", "msgsize", "capacity", "segment", "retain", "atomic", "type", "prio",
            "proj",
        ] {
            let _ = a.param_u64(key);
            let _ = a.param_i64(key);
        }
        let _ = ipcx::address::target_path(a.target());
    }
}
